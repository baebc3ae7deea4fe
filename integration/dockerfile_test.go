package integration

import (
	"debug/elf"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// No Docker engine runs where the tests run, so the Dockerfile is checked
// the way it can be: its instructions are read stage by stage, and the
// build stage's own `go build` lines are run to show that they give static
// binaries, which the runtime image (no libc, no shell) needs.

// dockerStage is one FROM ... AS name section of a Dockerfile.
type dockerStage struct {
	name, base string
	env        []string // ENV NAME=value, in order
	lines      []string // every instruction, continuation lines joined
}

// instruction returns the instructions of the stage whose keyword is kw.
func (s *dockerStage) instruction(kw string) []string {
	var out []string
	for _, l := range s.lines {
		if k, rest, _ := strings.Cut(l, " "); strings.EqualFold(k, kw) {
			out = append(out, strings.TrimSpace(rest))
		}
	}
	return out
}

// readDockerfile splits the Dockerfile into its stages.
func readDockerfile(t *testing.T, path string) (args map[string]string, stages []*dockerStage) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	args = map[string]string{}
	var cur strings.Builder
	var lines []string
	for _, l := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(l)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if strings.HasPrefix(trimmed, "#") {
			continue // a comment inside a continued instruction
		}
		if body, ok := strings.CutSuffix(trimmed, `\`); ok {
			cur.WriteString(body)
			cur.WriteByte(' ')
			continue
		}
		cur.WriteString(trimmed)
		lines = append(lines, strings.Join(strings.Fields(cur.String()), " "))
		cur.Reset()
	}
	from := regexp.MustCompile(`(?i)^FROM\s+(\S+)(?:\s+AS\s+(\S+))?$`)
	for _, l := range lines {
		if m := from.FindStringSubmatch(l); m != nil {
			stages = append(stages, &dockerStage{name: m[2], base: m[1]})
			continue
		}
		k, rest, _ := strings.Cut(l, " ")
		if len(stages) == 0 {
			if strings.EqualFold(k, "ARG") {
				name, val, _ := strings.Cut(rest, "=")
				args[name] = val
			}
			continue
		}
		s := stages[len(stages)-1]
		s.lines = append(s.lines, l)
		if strings.EqualFold(k, "ENV") {
			s.env = append(s.env, strings.Fields(rest)...)
		}
	}
	return args, stages
}

func TestDockerfile(t *testing.T) {
	args, stages := readDockerfile(t, "../Dockerfile")
	byName := map[string]*dockerStage{}
	for _, s := range stages {
		byName[s.name] = s
	}
	build := byName["build"]
	if len(stages) < 2 || build == nil {
		t.Fatalf("want a multi-stage Dockerfile with a build stage; stages: %v", stages)
	}

	// The Go the image is built with is the Go go.mod asks for.
	gomod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	want := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(gomod)
	if want == nil || args["GO_VERSION"] != string(want[1]) {
		t.Errorf("Dockerfile builds with Go %q, go.mod says %q", args["GO_VERSION"], want)
	}

	// Every stage compose.yaml builds is a minimal, non-root image whose
	// health check runs without a shell, with a binary the stage holds.
	p := loadCompose(t)
	targets := map[string]bool{}
	for _, s := range p.Services {
		if s.Build != nil {
			targets[s.Build.Target] = true
			// The image has no shell, so CMD-SHELL checks cannot run.
			if hc := s.HealthCheck; hc == nil || len(hc.Test) == 0 || hc.Test[0] != "CMD" {
				t.Errorf("service %s: health check %v must be exec form (CMD): the image has no shell", s.Name, hc)
			}
		}
	}
	if len(targets) == 0 {
		t.Fatal("compose.yaml builds no image from the Dockerfile")
	}
	for target := range targets {
		s := byName[target]
		if s == nil {
			t.Errorf("compose.yaml builds target %s, which the Dockerfile lacks", target)
			continue
		}
		if !strings.HasPrefix(s.base, "gcr.io/distroless/static") {
			t.Errorf("stage %s runs on %s; want a distroless static base (no shell, no libc)", target, s.base)
		}
		users := s.instruction("USER")
		if len(users) == 0 || strings.HasPrefix(users[len(users)-1], "root") || strings.HasPrefix(users[len(users)-1], "0") {
			t.Errorf("stage %s runs as %v; want a non-root user", target, users)
		}
		hcs := s.instruction("HEALTHCHECK")
		if len(hcs) != 1 {
			t.Errorf("stage %s: %d HEALTHCHECK instructions, want 1", target, len(hcs))
			continue
		}
		_, form, ok := strings.Cut(hcs[0], " CMD ")
		var argv []string
		if !ok || json.Unmarshal([]byte(form), &argv) != nil || len(argv) == 0 {
			t.Errorf("stage %s: HEALTHCHECK %q is not exec form", target, hcs[0])
			continue
		}
		copied := false
		for _, c := range s.instruction("COPY") {
			f := strings.Fields(c)
			copied = copied || f[len(f)-1] == argv[0]
		}
		if !copied {
			t.Errorf("stage %s: the health check runs %s, which no COPY puts in the image", target, argv[0])
		}
	}

	// The build stage's go build lines, run as written, give static
	// executables.
	var builds []string
	for _, r := range build.instruction("RUN") {
		for _, part := range strings.Split(r, "&&") {
			if f := strings.Fields(part); slices.Contains(f, "go") && slices.Contains(f, "build") {
				builds = append(builds, strings.TrimSpace(part[strings.Index(part, "go build"):]))
			}
		}
	}
	if len(builds) != 2 {
		t.Fatalf("want the build stage to build edgegate and pebble, found %q", builds)
	}
	out := t.TempDir()
	for _, b := range builds {
		// Run by a shell, as RUN does, writing where the test can read.
		m := regexp.MustCompile(`-o /out/(\S+)`).FindStringSubmatch(b)
		if m == nil {
			t.Fatalf("%q does not write to /out/", b)
		}
		bin := filepath.Join(out, m[1])
		cmd := exec.Command("sh", "-c", strings.Replace(b, m[0], "-o "+bin, 1))
		cmd.Dir = ".."
		cmd.Env = append(os.Environ(), build.env...)
		if msg, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", b, err, msg)
		}
		if err := staticExecutable(bin); err != nil {
			t.Errorf("%s: %v; the runtime image has no libc", b, err)
		}
	}
}

// staticExecutable returns an error unless path is an ELF executable that
// needs no dynamic loader.
func staticExecutable(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP || prog.Type == elf.PT_DYNAMIC {
			return fmt.Errorf("%s is dynamically linked", path)
		}
	}
	return nil
}
