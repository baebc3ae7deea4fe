package pebblerun

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func start(t *testing.T, cfg Config) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// get fetches u trusting only the PEM file roots.
func get(t *testing.T, roots, u string) (int, []byte) {
	t.Helper()
	b, err := os.ReadFile(roots)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatalf("no PEM in %s", roots)
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer c.CloseIdleConnections()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

// An in-process Pebble serves its ACME directory and management API over
// HTTPS that the APIRoots file verifies, writes the root it issues under,
// has placed no order, and leaves the process environment as it was.
func TestStart(t *testing.T) {
	t.Setenv("PEBBLE_AUTHZREUSE", "77")
	dir := t.TempDir()
	s := start(t, Config{Dir: dir, HTTPPort: 5002, TLSPort: 5001})
	code, body := get(t, s.APIRoots, s.Directory)
	if code != http.StatusOK || !strings.Contains(string(body), `"newOrder"`) {
		t.Fatalf("GET %s: %d %s", s.Directory, code, body)
	}
	code, body = get(t, s.APIRoots, s.Management+"/roots/0")
	file, err := os.ReadFile(s.IssuerRoots)
	if err != nil {
		t.Fatal(err)
	}
	if code != http.StatusOK || string(body) != string(file) {
		t.Fatalf("GET /roots/0: %d, %q; %s holds %q", code, body, s.IssuerRoots, file)
	}
	blk, _ := pem.Decode(file)
	if blk == nil {
		t.Fatalf("no PEM in %s", s.IssuerRoots)
	}
	root, err := x509.ParseCertificate(blk.Bytes)
	if err != nil || !root.IsCA {
		t.Fatalf("issuing root: %v", err)
	}
	if filepath.Dir(s.IssuerRoots) != dir || filepath.Dir(s.APIRoots) != dir {
		t.Errorf("files outside Dir: %s, %s", s.IssuerRoots, s.APIRoots)
	}
	if n := s.Orders(); n != 0 {
		t.Errorf("%d orders before any client", n)
	}
	if v := os.Getenv("PEBBLE_AUTHZREUSE"); v != "77" {
		t.Errorf("PEBBLE_AUTHZREUSE is %q after Start, want the caller's 77", v)
	}
	if _, ok := os.LookupEnv("PEBBLE_VA_NOSLEEP"); ok {
		t.Errorf("PEBBLE_VA_NOSLEEP left set after Start")
	}
	if !strings.Contains(s.Output(), "Disabling random VA sleeps") {
		t.Errorf("Pebble did not see PEBBLE_VA_NOSLEEP:\n%s", s.Output())
	}
	s.Close()
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	if resp, err := c.Get(s.Directory); err == nil {
		resp.Body.Close()
		t.Errorf("Pebble still answers after Close")
	}
}

// The compose demo's Pebble config runs as the compose stack's stand-in:
// its API key pair is the one in configs/compose/certs.
func TestStartFromBaseConfig(t *testing.T) {
	s := start(t, Config{Dir: t.TempDir(), Base: "../../configs/compose/pebble-config.json", CertDir: "../../configs/compose/certs"})
	if s.APIRoots != "../../configs/compose/certs/pebble-api-ca.pem" {
		t.Errorf("APIRoots = %s", s.APIRoots)
	}
	if code, body := get(t, s.APIRoots, s.Directory); code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", s.Directory, code, body)
	}
	if !strings.Contains(s.Output(), "7776000 seconds") {
		t.Errorf("the config's profile was not loaded:\n%s", s.Output())
	}
}

// A config Start cannot use is an error naming the file and the problem.
func TestStartBadConfig(t *testing.T) {
	dir := t.TempDir()
	for name, text := range map[string]string{
		"no-pebble.json": `{"other": {}}`,
		"unknown.json":   `{"pebble": {"listenAdress": "x"}}`,
		"keyalg.json":    `{"pebble": {"keyAlgorithm": "dsa"}}`,
	} {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Start(context.Background(), Config{Dir: dir, Base: f, CertDir: "../../configs/compose/certs"})
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		t.Logf("%s: %v", name, err)
	}
}
