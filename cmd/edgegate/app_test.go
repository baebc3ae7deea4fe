package main

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgegate/edgegate/internal/pki"
)

func TestHealth(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.Error(w, "draining", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := "http://" + ln.Addr().String() + "/healthz"
	ln.Close()

	ca, err := pki.NewAuthority("health test CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(pki.LeafOptions{Names: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	tlsSrv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	tlsSrv.TLS = &tls.Config{Certificates: []tls.Certificate{leaf.TLS()}}
	tlsSrv.StartTLS()
	defer tlsSrv.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, ca.CertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct {
		name string
		args []string
		code int
		want string // in stdout or stderr
	}{
		{"healthy", []string{srv.URL + "/healthz"}, exitOK, "200 OK"},
		{"unhealthy status", []string{srv.URL + "/other"}, exitFailure, "503 Service Unavailable"},
		{"nothing listening", []string{"-timeout", "2s", closed}, exitFailure, "connection refused"},
		{"https with the CA", []string{"-cacert", caFile, tlsSrv.URL}, exitOK, "200 OK"},
		{"https without the CA", []string{tlsSrv.URL}, exitFailure, "certificate"},
		{"no URL", nil, exitUsage, "want exactly one URL"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCmd(t, append([]string{"health"}, tt.args...)...)
			if code != tt.code || !strings.Contains(stdout+stderr, tt.want) {
				t.Fatalf("exit %d (want %d), output %q, want %q in it", code, tt.code, stdout+stderr, tt.want)
			}
		})
	}
}

func TestApp(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var stderr strings.Builder
	go func() {
		done <- run(ctx, &env{stdin: strings.NewReader(""), stdout: &strings.Builder{}, stderr: &stderr}, []string{"app", "-name", "app7", "-listen", addr, "-max-age", "90s"})
	}()
	// The app is up when its health check passes (bounded wait).
	var code int
	for i := 0; i < 100; i++ {
		if code, _, _ = runCmd(t, "health", "-timeout", "1s", "http://"+addr+"/healthz"); code == exitOK {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code != exitOK {
		t.Fatalf("app never became healthy")
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/some/path?q=1", nil)
	req.Header.Set("X-Forwarded-For", "192.0.2.7")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body := make([]byte, 512)
	n, _ := resp.Body.Read(body)
	resp.Body.Close()
	want := "hello from app7: GET /some/path?q=1 (Host: " + addr + ", X-Forwarded-For: 192.0.2.7)\n"
	if got := string(body[:n]); got != want || resp.Header.Get("X-App") != "app7" {
		t.Errorf("answer %q (X-App %q), want %q", got, resp.Header.Get("X-App"), want)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "max-age=90" {
		t.Errorf("Cache-Control %q, want max-age=90 from -max-age 90s", cc)
	}
	cancel()
	select {
	case c := <-done:
		if c != exitOK {
			t.Errorf("app exit %d after the signal: %s", c, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("app did not stop")
	}
	if code, _, stderr := runCmd(t, "app", "-listen", "127.0.0.1:bad"); code != exitFailure || !strings.Contains(stderr, "bad") {
		t.Errorf("app on a bad address: exit %d, %q", code, stderr)
	}
}
