// Command mutants checks that the tests guard what they claim: it applies
// each hand-written mutation (a deliberate bug) to a copy of the module,
// runs the tests that claim the behaviour, and reports the mutation killed
// (a test failed) or survived (every test passed). `make mutants` runs it;
// it is not part of `make test`.
//
// The working tree is never edited: the module is copied to a temporary
// directory once, and each mutation is applied there and undone after its
// run, so an interrupt leaves nothing half-mutated behind. A mutation whose
// original snippet is no longer in its file fails the run loudly: the list
// must follow the code.
//
// Usage: go run ./internal/mutants [-run REGEXP] [-timeout 60s] [-race]
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"
)

func main() {
	run := flag.String("run", "", "only the mutations whose name matches this regexp")
	timeout := flag.Duration("timeout", time.Minute, "bound on one mutation's test run; a run cut at it counts as a hang")
	race := flag.Bool("race", false, "run the tests with -race (slower)")
	verbose := flag.Bool("v", false, "print the test output of every mutation, not only of survivors")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := mainErr(ctx, *run, *timeout, *race, *verbose, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "mutants:", err)
		os.Exit(1)
	}
}

func mainErr(ctx context.Context, only string, timeout time.Duration, race, verbose bool, out io.Writer) error {
	sel, err := regexp.Compile(only)
	if err != nil {
		return fmt.Errorf("-run: %w", err)
	}
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	var chosen []mutation
	for _, m := range mutations {
		if sel.MatchString(m.name) {
			chosen = append(chosen, m)
		}
	}
	if len(chosen) == 0 {
		return fmt.Errorf("no mutation matches %q", only)
	}
	// Check every snippet before spending minutes on tests.
	for _, m := range chosen {
		for _, e := range m.edits {
			src, err := os.ReadFile(filepath.Join(root, e.file))
			if err != nil {
				return fmt.Errorf("mutation %s: %w", m.name, err)
			}
			if n := bytes.Count(src, []byte(e.old)); n != 1 {
				return fmt.Errorf("mutation %s: %s: original snippet found %d times, want once (update the list): %q", m.name, e.file, n, e.old)
			}
		}
	}
	tmp, err := os.MkdirTemp("", "edgegate-mutants-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := copyModule(root, tmp); err != nil {
		return err
	}
	var bad []string
	for _, m := range chosen {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		res, took, output, err := m.try(ctx, tmp, timeout, race)
		if err != nil {
			return fmt.Errorf("mutation %s: %w", m.name, err)
		}
		fmt.Fprintf(out, "%-9s %-34s %6.1fs  %s\n", res, m.name, took.Seconds(), m.what)
		if res != killed {
			bad = append(bad, m.name)
		}
		if res != killed || verbose {
			fmt.Fprintf(out, "%s\n", indent(output))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%d of %d mutations not killed within %v: %s", len(bad), len(chosen), timeout, strings.Join(bad, ", "))
	}
	fmt.Fprintf(out, "all %d mutations killed\n", len(chosen))
	return nil
}

type result string

const (
	killed   result = "killed"
	survived result = "SURVIVED"
	hung     result = "HUNG"
)

// try applies m in the copy at dir, runs its tests and restores the files.
func (m mutation) try(ctx context.Context, dir string, timeout time.Duration, race bool) (res result, took time.Duration, output string, err error) {
	saved := map[string][]byte{}
	defer func() {
		// Restore the copy so the next mutation runs on the original; a
		// failed restore would make every later result meaningless.
		for f, src := range saved {
			if werr := os.WriteFile(f, src, 0o644); werr != nil && err == nil {
				err = fmt.Errorf("restore %s: %w", f, werr)
			}
		}
	}()
	for _, e := range m.edits {
		f := filepath.Join(dir, e.file)
		cur, err := os.ReadFile(f)
		if err != nil {
			return "", 0, "", err
		}
		if _, ok := saved[f]; !ok {
			saved[f] = cur
		}
		if !bytes.Contains(cur, []byte(e.old)) {
			return "", 0, "", fmt.Errorf("%s: original snippet not found: %q", e.file, e.old)
		}
		if err := os.WriteFile(f, bytes.Replace(cur, []byte(e.old), []byte(e.new), 1), 0o644); err != nil {
			return "", 0, "", err
		}
	}
	args := []string{"test", "-count=1", "-timeout", (timeout - 5*time.Second).String()}
	if race {
		args = append(args, "-race")
	}
	args = append(args, "-run", m.run, m.pkg)
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(cctx, "go", args...)
	cmd.Dir = dir
	// Kill the whole group: go test's test binary and whatever it started.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	start := time.Now()
	err = cmd.Run()
	took = time.Since(start)
	if ctx.Err() != nil {
		return "", took, buf.String(), ctx.Err()
	}
	var exit *exec.ExitError
	switch {
	case cctx.Err() != nil || strings.Contains(buf.String(), "panic: test timed out"):
		return hung, took, buf.String(), nil
	case err == nil:
		return survived, took, buf.String(), nil
	case errors.As(err, &exit) && strings.Contains(buf.String(), "--- FAIL"):
		return killed, took, buf.String(), nil
	case errors.As(err, &exit):
		// A mutation that does not compile is a broken list, not a kill.
		return "", took, buf.String(), fmt.Errorf("tests did not run:\n%s", indent(buf.String()))
	default:
		return "", took, buf.String(), err
	}
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside the module (run from the repository)")
	}
	return filepath.Dir(mod), nil
}

// copyModule copies the files git knows of (tracked and untracked, not
// ignored) from root to dst, so the copy is the working tree as it is.
func copyModule(root, dst string) error {
	cmd := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("git ls-files: %w", err)
	}
	for name := range strings.SplitSeq(strings.TrimRight(string(out), "\x00"), "\x00") {
		src := filepath.Join(root, name)
		fi, err := os.Lstat(src)
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted in the working tree
		}
		if err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			continue
		}
		data, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		d := filepath.Join(dst, name)
		if err := os.MkdirAll(filepath.Dir(d), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(d, data, fi.Mode().Perm()); err != nil {
			return err
		}
	}
	return nil
}

func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	if len(s) > 6000 { // a hang's goroutine dump: its start names the test
		s = s[:3000] + "\n...\n" + s[len(s)-3000:]
	}
	return "    | " + strings.ReplaceAll(s, "\n", "\n    | ")
}
