// Package integration runs edgegate as real processes against real parts
// (Pebble, redis-server, DNS on loopback): what one process cannot show,
// such as a cluster of edges sharing certificate state, or a restart.
package integration

import (
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/edgegate/edgegate/internal/pki"
	"github.com/edgegate/edgegate/internal/syncbuf"
)

// binaryPath is where TestMain builds edgegate, once per test binary.
func binaryPath() string {
	return filepath.Join(os.TempDir(), fmt.Sprintf("edgegate-integration-%d", os.Getpid()), "edgegate")
}

func TestMain(m *testing.M) {
	bin := binaryPath()
	build := exec.Command("go", "build", "-o", bin, "./cmd/edgegate")
	build.Dir = ".."
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "integration: build edgegate: %v\n", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(filepath.Dir(bin))
	os.Exit(code)
}

// execCmd is a running edgegate process.
type execCmd struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// startBinary runs edgegate with args, its stderr into w; the process is
// killed when the test ends if still running.
func startBinary(t *testing.T, w io.Writer, args ...string) *execCmd {
	t.Helper()
	return startBinaryEnv(t, w, nil, args...)
}

// startBinaryEnv is startBinary with env (NAME=value) added to the
// process's environment.
func startBinaryEnv(t *testing.T, w io.Writer, env []string, args ...string) *execCmd {
	t.Helper()
	cmd := exec.Command(binaryPath(), args...)
	cmd.Env = append(os.Environ(), env...)
	return startCommand(t, w, cmd)
}

// startCommand starts cmd with its output into w; it is killed when the
// test ends if still running.
func startCommand(t *testing.T, w io.Writer, cmd *exec.Cmd) *execCmd {
	t.Helper()
	c := &execCmd{cmd: cmd, done: make(chan struct{})}
	c.cmd.Stdout, c.cmd.Stderr = w, w
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", cmd.Args, err)
	}
	go func() {
		_ = c.cmd.Wait()
		close(c.done)
	}()
	t.Cleanup(func() { c.stop(syscall.SIGKILL, 10*time.Second) })
	return c
}

func (c *execCmd) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// stop sends sig and waits up to d for the exit, then kills.
func (c *execCmd) stop(sig syscall.Signal, d time.Duration) {
	if c.exited() {
		return
	}
	_ = c.cmd.Process.Signal(sig)
	select {
	case <-c.done:
	case <-time.After(d):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}

// waitListening waits until addr accepts connections, or the process ends.
func waitListening(t *testing.T, addr string, p *execCmd, out *syncbuf.Buffer) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && !p.exited() {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return
		}
		time.Sleep(100 * time.Millisecond) // polling a port, bounded by the deadline
	}
	t.Fatalf("%s not listening:\n%s", addr, out.String())
}

// testCA is a private CA for one test, its certificate written to dir.
type testCA struct {
	t    *testing.T
	dir  string
	ca   *pki.Authority
	File string // the CA certificate's PEM file
}

// newTestCA makes a CA called name and writes its certificate into dir.
func newTestCA(t *testing.T, dir, name string) *testCA {
	t.Helper()
	ca, err := pki.NewAuthority(name)
	if err != nil {
		t.Fatal(err)
	}
	c := &testCA{t: t, dir: dir, ca: ca, File: filepath.Join(dir, "ca.pem")}
	if err := ca.WriteFile(c.File); err != nil {
		t.Fatal(err)
	}
	return c
}

// Pool is a pool with the CA's certificate alone.
func (c *testCA) Pool() *x509.CertPool { return c.ca.Pool() }

// issue writes a leaf certificate for names and its key into the CA's
// directory under file, returning their paths.
func (c *testCA) issue(file string, names ...string) (cert, key string) {
	c.t.Helper()
	leaf, err := c.ca.Issue(pki.LeafOptions{Names: names})
	if err != nil {
		c.t.Fatal(err)
	}
	cert, key, err = leaf.WriteFiles(c.dir, file)
	if err != nil {
		c.t.Fatal(err)
	}
	return cert, key
}
