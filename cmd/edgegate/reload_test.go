package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// lockedBuffer collects a child's stderr while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startTier runs this test binary as `edgegate ARGS...`.
func startTier(t *testing.T, env []string, args ...string) (*exec.Cmd, *lockedBuffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), "EDGEGATE_TEST_RUN_MAIN=1"), env...)
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	return cmd, stderr
}

func waitLog(t *testing.T, stderr *lockedBuffer, what string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(stderr.String(), what) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the operational log:\n%s", what, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func stopTier(t *testing.T, cmd *exec.Cmd, stderr *lockedBuffer) {
	t.Helper()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("the process is gone: %v\n%s", err, stderr.String())
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no exit within 30s of SIGTERM")
	}
}

// SIGHUP (what logrotate, systemctl reload and a dropped SSH session send)
// reloads either tier and never ends it; SIGUSR1 reopens logs; `edgegate
// reload` does what SIGHUP does through the admin listener, with the token.
func TestSIGHUPReloadsEitherTier(t *testing.T) {
	const token = "cmd-test-admin-token"
	t.Setenv("EDGEGATE_ADMIN_TOKEN", token)
	env := []string{"EDGEGATE_ADMIN_TOKEN=" + token}

	t.Run("edge", func(t *testing.T) {
		f := newFixture(t)
		httpsAddr, adminAddr := freeAddr(t), freeAddr(t)
		cfg := filepath.Join(f.dir, "edge.yaml")
		write := func(location string) {
			text := fmt.Sprintf(`edge:
  location: %s
  listen: {http: "off", https: %q}
  certificates: {files: [{cert: %q, key: %q}]}
  logs: {dir: %q}
  admin: {listen: %q, token: "${EDGEGATE_ADMIN_TOKEN}"}
distributions:
  - aliases: [www.example.test]
    origins: [{id: alb, domain_name: alb.example.test, connect_to: %q, trusted_ca: %q}]
    default_behavior: {target: alb}
`, location, httpsAddr, f.certFile, f.keyFile, filepath.Join(f.dir, "logs"), adminAddr, f.origin, f.caFile)
			if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		write("HUP1")
		cmd, stderr := startTier(t, env, "edge", "-config", cfg)
		client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: f.ca.Pool(), ServerName: "www.example.test"},
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, "tcp", httpsAddr)
			},
		}}
		location := func() string {
			resp, err := client.Get("https://www.example.test/")
			if err != nil {
				return ""
			}
			resp.Body.Close()
			return resp.Header.Get("X-Edge-Location")
		}
		waitFor := func(want string) {
			t.Helper()
			deadline := time.Now().Add(15 * time.Second)
			for location() != want {
				if time.Now().After(deadline) {
					t.Fatalf("X-Edge-Location never became %s\n%s", want, stderr.String())
				}
				time.Sleep(20 * time.Millisecond)
			}
		}
		waitFor("HUP1")
		write("HUP2")
		if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitFor("HUP2")
		if err := cmd.Process.Signal(syscall.SIGUSR1); err != nil {
			t.Fatal(err)
		}
		waitLog(t, stderr, "standard log reopened")

		write("HUP3")
		if code, _, errOut := runCmd(t, "reload", "-admin", "http://"+adminAddr, "-token", "wrong"); code != exitFailure {
			t.Errorf("reload with a wrong token: exit %d, want 1: %s", code, errOut)
		}
		if code, out, errOut := runCmd(t, "reload", "-admin", "http://"+adminAddr); code != exitOK || !strings.Contains(out, "reloaded") {
			t.Errorf("edgegate reload: exit %d %s %s", code, out, errOut)
		}
		waitFor("HUP3")
		// A broken config: refused with its place, exit 2, the edge serves on.
		if err := os.WriteFile(cfg, []byte("edge:\n  locaton: X\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		code, _, errOut := runCmd(t, "reload", "-admin", "http://"+adminAddr)
		if code != exitUsage || !strings.Contains(errOut, cfg+":2") {
			t.Errorf("reload of a broken config: exit %d: %s", code, errOut)
		}
		waitFor("HUP3")
		stopTier(t, cmd, stderr)
		if n := strings.Count(stderr.String(), "edge config reloaded"); n != 2 {
			t.Errorf("%d reloads logged, want 2 (SIGHUP, edgegate reload)", n)
		}
	})

	t.Run("origin", func(t *testing.T) {
		dir := t.TempDir()
		httpAddr, adminAddr := freeAddr(t), freeAddr(t)
		host, port, _ := net.SplitHostPort(httpAddr)
		cfg := filepath.Join(dir, "origin.yaml")
		text := fmt.Sprintf(`origin:
  listeners:
    - {protocol: HTTP, address: %q, port: %s, default_action: {forward: app}}
  target_groups:
    - {name: app, protocol: HTTP, targets: ["127.0.0.1:1"]}
  admin: {listen: %q, token: "${EDGEGATE_ADMIN_TOKEN}"}
`, host, port, adminAddr)
		if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd, stderr := startTier(t, env, "origin", "-config", cfg)
		waitLog(t, stderr, `"listening"`)
		if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		waitLog(t, stderr, "origin config reloaded")
		if err := cmd.Process.Signal(syscall.SIGUSR1); err != nil {
			t.Fatal(err)
		}
		if code, out, errOut := runCmd(t, "reload", "-admin", "http://"+adminAddr); code != exitOK {
			t.Errorf("edgegate reload of the origin tier: exit %d %s %s", code, out, errOut)
		}
		stopTier(t, cmd, stderr)
	})
}
