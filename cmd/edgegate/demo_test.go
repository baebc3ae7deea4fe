package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgegate/edgegate/edge/accesslog"
	"github.com/edgegate/edgegate/internal/testpebble"
)

// demoBuffer is the demo's output, read while it runs.
type demoBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *demoBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *demoBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var curlLine = regexp.MustCompile(`curl --resolve ([^: ]+):(\d+):(\S+) --cacert (\S+) (https://\S+)`)

// demoPorts are free loopback ports for the demo's HTTP, HTTPS and admin
// listeners.
func demoPorts(t *testing.T) []string {
	t.Helper()
	var ports []string
	for range 3 {
		p, err := testpebble.FreePort("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		ports = append(ports, "127.0.0.1:"+strconv.Itoa(p))
	}
	return ports
}

// waitCurlLine waits for the demo's curl line in out; exited reports an
// early end.
func waitCurlLine(t *testing.T, out *demoBuffer, exited func() bool) []string {
	t.Helper()
	deadline := time.Now().Add(150 * time.Second)
	for {
		if m := curlLine.FindStringSubmatch(out.String()); m != nil {
			return m
		}
		if exited() {
			t.Fatalf("the demo exited before printing its curl line:\n%s", out.String())
		}
		if time.Now().After(deadline) {
			t.Fatalf("no curl line from the demo:\n%s", out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// curlAsPrinted makes the request of the demo's curl line m as curl would:
// the name resolved to the --resolve address, trusting only --cacert.
func curlAsPrinted(t *testing.T, m []string) (*http.Response, string) {
	t.Helper()
	name, port, ip, caFile, url := m[1], m[2], m[3], m[4], m[5]
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("%s holds no certificate", caFile)
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if addr != net.JoinHostPort(name, port) {
				return nil, errors.New("not the --resolve address")
			}
			var d net.Dialer
			return d.DialContext(ctx, network, net.JoinHostPort(ip, port))
		},
	}}
	defer client.CloseIdleConnections()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("the printed curl line fails: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "hello from app") {
		t.Fatalf("GET %s: %s %q", url, resp.Status, body)
	}
	if issuer := resp.TLS.PeerCertificates[0].Issuer.CommonName; !strings.Contains(issuer, "Pebble") {
		t.Errorf("certificate issued by %q, want Pebble", issuer)
	}
	return resp, string(body)
}

// The demo prints a curl line that works for a client trusting only the CA
// it names (the built-in ACME server's root: the certificate came over
// ACME), serves its admin listener, writes a standard log line for the
// request into the logs directory asked for, keeps that directory and
// stops cleanly when cancelled.
func TestDemo(t *testing.T) {
	ports := demoPorts(t)
	logs := filepath.Join(t.TempDir(), "demo-logs")
	t.Setenv("TMPDIR", t.TempDir())
	t.Setenv("EDGEGATE_ADMIN_TOKEN", "demo-test-token")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stdout, stderr demoBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, &env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr},
			[]string{"demo", "-http", ports[0], "-https", ports[1], "-admin", ports[2], "-logs", logs})
	}()
	m := waitCurlLine(t, &stdout, func() bool { return len(done) > 0 })
	curlAsPrinted(t, m)
	if stderr.String() != "" {
		t.Errorf("the demo wrote to stderr while it ran:\n%s", stderr.String())
	}
	if !strings.HasPrefix(stdout.String(), "Starting the demo") || strings.Contains(stdout.String(), `"level"`) {
		t.Errorf("the demo's output is not its friendly block:\n%s", stdout.String())
	}
	// The admin listener the block names answers with metrics that count
	// the request.
	metrics := "http://" + ports[2] + "/metrics"
	if !strings.Contains(stdout.String(), metrics) {
		t.Errorf("the demo does not name its admin listener %s:\n%s", metrics, stdout.String())
	}
	var body []byte
	for range 50 {
		resp, err := http.Get(metrics)
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(body), `result_type="Miss"`) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(string(body), `edgegate_edge_requests_total{`) || !strings.Contains(string(body), `result_type="Miss"`) {
		t.Errorf("GET %s: no Miss counted:\n%s", metrics, body)
	}
	// Invalidations, as the README posts them: with the token from
	// $EDGEGATE_ADMIN_TOKEN, and refused without.
	for _, tc := range []struct {
		token string
		ok    bool
	}{{"", false}, {"demo-test-token", true}} {
		req, _ := http.NewRequest(http.MethodPost, "http://"+ports[2]+"/invalidations", strings.NewReader(`{"paths": ["/*"]}`))
		req.Header.Set("Content-Type", "application/json")
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if (resp.StatusCode < 300) != tc.ok {
			t.Errorf("POST /invalidations with token %q: %s %s", tc.token, resp.Status, b)
		}
	}

	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("demo exited with %d after Ctrl-C:\n%s", code, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("demo did not stop within 30s of cancellation")
	}
	if left, _ := os.ReadDir(os.Getenv("TMPDIR")); len(left) != 0 {
		t.Errorf("the demo left %v in TMPDIR", left)
	}
	for _, f := range []string{"demo.log", "pebble.log", "origin"} {
		if _, err := os.Stat(filepath.Join(logs, f)); err != nil {
			t.Errorf("kept logs: %v", err)
		}
	}
	// The operational log is JSON lines, its durations with their units
	// (the origin tier's drain, certmagic's through its zap adapter).
	ops, err := os.ReadFile(filepath.Join(logs, "demo.log"))
	if err != nil {
		t.Fatal(err)
	}
	var drained, certmagic bool
	for _, line := range strings.Split(strings.TrimSpace(string(ops)), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("demo.log: %v: %s", err, line)
		}
		if m["message"] == "draining" {
			drained = true
			if m["grace"] != "5s" {
				t.Errorf("demo.log: grace %#v, want \"5s\": %s", m["grace"], line)
			}
		}
		if _, ok := m["logger"]; ok {
			certmagic = true
		}
		for k, v := range m {
			if f, ok := v.(float64); ok && f != math.Trunc(f) {
				t.Errorf("demo.log: %s is a fraction with no unit: %s", k, line)
			}
		}
	}
	if !drained || !certmagic {
		t.Errorf("demo.log lacks the origin tier's drain (%v) or certmagic's lines (%v):\n%s", drained, certmagic, ops)
	}
	files, _ := filepath.Glob(filepath.Join(logs, "edge", "*"))
	var found bool
	for _, f := range files {
		rc, err := accesslog.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		r := accesslog.NewReader(rc, f)
		for {
			rec, err := r.Next()
			if err != nil {
				break
			}
			if strings.Contains(rec.URIStem, "/hello") {
				found = true
			}
		}
		rc.Close()
	}
	if !found {
		t.Fatalf("no standard log line for /hello under %s/edge (files %v)", logs, files)
	}
}

// The acceptance test of the shipped binary: copied alone into an empty
// directory and run with no Go toolchain on PATH, `edgegate demo` serves
// its printed curl line with 200 over a certificate from its built-in CA;
// after SIGINT it exits 0 and has left nothing behind, in its directory,
// TMPDIR or HOME.
func TestDemoCopiedBinary(t *testing.T) {
	dir, tmp, home, empty := t.TempDir(), t.TempDir(), t.TempDir(), t.TempDir()
	bin := filepath.Join(dir, "edgegate")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Setenv("PATH", empty)
	if p, err := exec.LookPath("go"); err == nil {
		t.Fatalf("go is still on PATH: %s", p)
	}
	ports := demoPorts(t)
	var out demoBuffer
	cmd := exec.Command("./edgegate", "demo", "-http", ports[0], "-https", ports[1], "-admin", ports[2])
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, &out, &out
	cmd.Env = []string{"PATH=" + empty, "TMPDIR=" + tmp, "HOME=" + home}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	defer func() { _ = cmd.Process.Kill() }()
	m := waitCurlLine(t, &out, func() bool { return len(waited) > 0 })
	curlAsPrinted(t, m)
	if !regexp.MustCompile(`bearer token [0-9a-f]{32} \(export EDGEGATE_ADMIN_TOKEN=`).MatchString(out.String()) {
		t.Errorf("no admin token of its own in the demo's block:\n%s", out.String())
	}
	if curl, err := exec.LookPath("/usr/bin/curl"); err == nil {
		// And with curl itself, as printed.
		args := strings.Fields(strings.TrimPrefix(m[0], "curl "))
		c := exec.Command(curl, append([]string{"-sS", "-o", "/dev/null", "-w", "%{http_code}"}, args...)...)
		c.Env = []string{"PATH=" + empty, "HOME=" + home}
		got, err := c.CombinedOutput()
		if err != nil || string(got) != "200" {
			t.Errorf("curl %s: %v %s", strings.Join(args, " "), err, got)
		}
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-waited:
		if err != nil {
			t.Fatalf("the demo exited with %v after SIGINT:\n%s", err, out.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the demo did not stop within 30s of SIGINT:\n%s", out.String())
	}
	for _, d := range []string{dir, tmp, home} {
		left, _ := os.ReadDir(d)
		var names []string
		for _, e := range left {
			if d != dir || e.Name() != "edgegate" {
				names = append(names, e.Name())
			}
		}
		if len(names) > 0 {
			t.Errorf("the demo left %v in %s", names, d)
		}
	}
	if !strings.Contains(out.String(), "demo: stopped") {
		t.Errorf("no word of the stop:\n%s", out.String())
	}
}
