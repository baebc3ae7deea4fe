package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/edgegate/edgegate/edge/accesslog"
	"github.com/edgegate/edgegate/internal/pki"
)

// The test binary doubles as the edgegate binary, so tests can run it as
// a real process and send it real signals.
func TestMain(m *testing.M) {
	if os.Getenv("EDGEGATE_TEST_RUN_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code = run(ctx, &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb}, args)
	return code, out.String(), errb.String()
}

// commandLines are every command and subcommand that has flags.
func commandLines() [][]string {
	var all [][]string
	for _, c := range commands() {
		switch c.name {
		case "help":
		case "logs":
			all = append(all, []string{"logs", "summary"}, []string{"logs", "report"})
		default:
			all = append(all, []string{c.name})
		}
	}
	return all
}

// Help is on stdout with exit status 0, however it is asked for; it shows
// no backquotes, and its Usage line shows every flag with its default.
func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"--help"}, {"-help"}, {"help"}} {
		code, stdout, stderr := runCmd(t, args...)
		if code != exitOK || stderr != "" || !strings.Contains(stdout, "Usage: edgegate COMMAND") {
			t.Errorf("edgegate %s: exit %d, stdout %q, stderr %q", args[0], code, stdout, stderr)
		}
	}
	for _, cl := range commandLines() {
		name := strings.Join(cl, " ")
		var helps []string
		for _, args := range [][]string{append(slices.Clone(cl), "-h"), append(slices.Clone(cl), "--help"), append([]string{"help"}, cl...)} {
			code, stdout, stderr := runCmd(t, args...)
			if code != exitOK || stderr != "" || !strings.HasPrefix(stdout, "Usage: edgegate "+name) || !strings.Contains(stdout, "Examples:") {
				t.Errorf("edgegate %s: exit %d, stderr %q, stdout:\n%s", strings.Join(args, " "), code, stderr, stdout)
			}
			helps = append(helps, stdout)
		}
		if helps[0] != helps[1] || helps[0] != helps[2] {
			t.Errorf("%s: -h, --help and help %s differ", name, name)
		}
		text := helps[0]
		if strings.Contains(text, "`") {
			t.Errorf("%s -h shows a backquote:\n%s", name, text)
		}
		usageLine, _, _ := strings.Cut(text, "\n")
		flags := helpFlags(text)
		if len(flags) == 0 && name != "version" {
			t.Errorf("%s -h lists no flags:\n%s", name, text)
		}
		for _, f := range flags {
			// The argument's name is a word in capitals, never a fragment
			// of the help text.
			if !regexp.MustCompile(`^([A-Z][A-Z:_|]*)?$`).MatchString(f.arg) {
				t.Errorf("%s -%s: argument shown as %q", name, f.name, f.arg)
			}
			want := "-" + f.name
			switch {
			case f.arg == "" && f.def == "true":
				want += "=true"
			case f.arg == "":
			case f.def != "":
				want += " " + f.def
			default:
				want += " " + f.arg
			}
			if !regexp.MustCompile(`[ \[]` + regexp.QuoteMeta(want) + `[ \]]`).MatchString(usageLine + " ") {
				t.Errorf("%s: the Usage line does not show %q: %s", name, want, usageLine)
			}
		}
	}
	for _, args := range [][]string{{"help", "logs"}, {"logs", "-h"}, {"logs", "help"}} {
		if code, stdout, stderr := runCmd(t, args...); code != exitOK || stderr != "" || !strings.Contains(stdout, "Usage: edgegate logs summary") {
			t.Errorf("edgegate %s: exit %d, stdout %q, stderr %q", strings.Join(args, " "), code, stdout, stderr)
		}
	}
	if code, stdout, stderr := runCmd(t, "help", "frobnicate"); code != exitUsage || stdout != "" || !strings.Contains(stderr, "unknown command") {
		t.Errorf("help frobnicate: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

type helpFlag struct{ name, arg, def string }

// helpFlags reads the flags back from a command's help, as a user sees
// them: "  -name ARG" lines, each followed by its help, which ends with
// "(default X)" when X is not the zero value.
func helpFlags(help string) []helpFlag {
	var flags []helpFlag
	head := regexp.MustCompile(`^  -(\S+)(?: (\S+))?$`)
	def := regexp.MustCompile(`\(default "?([^"]*)"?\)$`)
	for _, line := range strings.Split(help, "\n") {
		if m := head.FindStringSubmatch(line); m != nil {
			flags = append(flags, helpFlag{name: m[1], arg: m[2]})
		} else if m := def.FindStringSubmatch(line); m != nil && len(flags) > 0 {
			flags[len(flags)-1].def = m[1]
		}
	}
	return flags
}

// Usage errors go to stderr with the command's usage, exit status 2, and
// nothing on stdout.
func TestUsageErrors(t *testing.T) {
	cases := [][]string{{}, {"frobnicate"}, {"edge"}, {"origin"}, {"check"}, {"probe"}, {"health"}, {"logs"}, {"logs", "frobnicate"},
		{"logs", "summary"}, {"logs", "report", "x.log"}, {"demo", "-http", "0.0.0.0:80"}, {"demo", "extra"}, {"version", "extra"},
		{"edge", "-config", "x.yaml", "-log-level", "loud"}}
	for _, cl := range commandLines() {
		cases = append(cases, append(slices.Clone(cl), "-no-such-flag"))
	}
	for _, args := range cases {
		code, stdout, stderr := runCmd(t, args...)
		if code != exitUsage || stdout != "" || !strings.Contains(stderr, "Usage: edgegate") {
			t.Errorf("edgegate %s: exit %d (want 2), stdout %q, stderr:\n%s", strings.Join(args, " "), code, stdout, stderr)
		}
	}
}

// Exit statuses agree across commands: a file named on the command line
// that is not there is bad usage (2), whichever command is given it.
func TestExitStatuses(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nope")
	for _, args := range [][]string{
		{"check", "-config", missing + ".yaml"},
		{"edge", "-config", missing + ".yaml"},
		{"origin", "-config", missing + ".yaml"},
		{"logs", "summary", missing},
		{"logs", "report", "-o", missing + ".html", missing},
		{"probe", "-ca", missing + ".pem", "https://example.test/"},
	} {
		if code, _, stderr := runCmd(t, args...); code != exitUsage || !strings.Contains(stderr, missing) {
			t.Errorf("edgegate %s: exit %d (want 2), stderr %q", strings.Join(args, " "), code, stderr)
		}
	}
	// A runtime failure is 1: an origin that does not answer.
	if code, _, _ := runCmd(t, "health", "-timeout", "2s", "http://"+freeAddr(t)+"/"); code != exitFailure {
		t.Errorf("health of a closed port: exit %d, want 1", code)
	}
}

// version prints the Go version the binary was built with, its module
// version and VCS revision; -version is the same.
func TestVersion(t *testing.T) {
	code, stdout, stderr := runCmd(t, "version")
	if code != exitOK || stderr != "" || !strings.HasPrefix(stdout, "edgegate ") || !strings.Contains(stdout, runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH) {
		t.Fatalf("version: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if _, again, _ := runCmd(t, "-version"); again != stdout {
		t.Errorf("-version %q differs from version %q", again, stdout)
	}
	var b strings.Builder
	writeVersion(&b, &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.3"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.time", Value: "2026-11-30T09:00:00Z"}, {Key: "vcs.modified", Value: "true"}}})
	want := "edgegate v1.2.3\nrevision 0123abcd+modified (2026-11-30T09:00:00Z)\ngo1.26.8 " + runtime.GOOS + "/" + runtime.GOARCH + "\n"
	if b.String() != want {
		t.Errorf("writeVersion = %q, want %q", b.String(), want)
	}
}

func TestCheck(t *testing.T) {
	var configs []string
	err := filepath.WalkDir("../../configs", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && filepath.Ext(path) == ".yaml" {
			configs = append(configs, path)
		}
		return err
	})
	if err != nil || len(configs) < 6 {
		t.Fatalf("example configs: %v %v", configs, err)
	}
	// Every sample config passes check as shipped, the files it names
	// included (configs/certs and configs/compose/certs).
	for _, c := range configs {
		if code, stdout, stderr := runCmd(t, "check", "-config", c); code != exitOK || !strings.Contains(stdout, c+": ok") {
			t.Errorf("check %s: exit %d\n%s%s", c, code, stdout, stderr)
		}
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte("edge:\n  location: X\n  colour: blue\ndistributions: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCmd(t, "check", "-config", bad)
	if code != exitUsage || !strings.Contains(stderr, bad+":3: edge.colour: unknown key") {
		t.Fatalf("check of a bad config: exit %d, stderr %q", code, stderr)
	}
	// With file checks on, a missing CA is named at its line; -files=false
	// checks the config alone.
	moved := filepath.Join(t.TempDir(), "origin.yaml")
	if b, err := os.ReadFile("../../configs/origin.yaml"); err != nil || os.WriteFile(moved, b, 0o644) != nil {
		t.Fatal(err)
	}
	code, _, stderr = runCmd(t, "check", "-config", moved)
	if code != exitUsage || !strings.Contains(stderr, "origin.yaml:22:") || !strings.Contains(stderr, "trust store") {
		t.Fatalf("check with missing files: exit %d, stderr %q", code, stderr)
	}
	if code, _, stderr = runCmd(t, "check", "-files=false", "-config", moved); code != exitOK {
		t.Fatalf("check -files=false: exit %d, stderr %q", code, stderr)
	}
}

// fixture is a CA, an HTTPS origin whose certificate is for
// alb.example.test, and a viewer certificate for www.example.test.
type fixture struct {
	dir, caFile, certFile, keyFile string
	ca                             *pki.Authority
	origin                         string
	// Requests for /slow/... wait at the origin until slow is closed;
	// slowIn counts those that arrived.
	slow    chan struct{}
	slowIn  atomic.Int64
	release func()
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{dir: t.TempDir(), slow: make(chan struct{})}
	var once sync.Once
	f.release = func() { once.Do(func() { close(f.slow) }) }
	var err error
	if f.ca, err = pki.NewAuthority("cmd test CA"); err != nil {
		t.Fatal(err)
	}
	f.caFile = filepath.Join(f.dir, "ca.pem")
	if err := f.ca.WriteFile(f.caFile); err != nil {
		t.Fatal(err)
	}
	viewer, err := f.ca.Issue(pki.LeafOptions{Names: []string{"www.example.test"}})
	if err != nil {
		t.Fatal(err)
	}
	if f.certFile, f.keyFile, err = viewer.WriteFiles(f.dir, "viewer"); err != nil {
		t.Fatal(err)
	}
	originCert, err := f.ca.Issue(pki.LeafOptions{Names: []string{"alb.example.test"}})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasPrefix(r.URL.Path, "/slow/") {
				f.slowIn.Add(1)
				select {
				case <-f.slow:
				case <-r.Context().Done():
				}
			}
			time.Sleep(2 * time.Millisecond)
			fmt.Fprintf(w, "hello from alb: %s\n", r.URL.Path)
		}),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{originCert.TLS()}},
		ReadHeaderTimeout: 5 * time.Second,
	}
	go func() { _ = srv.ServeTLS(l, "", "") }()
	t.Cleanup(func() { srv.Close() })
	t.Cleanup(f.release) // runs first: no handler outlives a failed test
	f.origin = l.Addr().String()
	return f
}

// The classic case from the command line: probe names the names and the fix.
func TestProbeClassicCase(t *testing.T) {
	f := newFixture(t)
	code, stdout, _ := runCmd(t, "probe", "-connect", f.origin, "-ca", f.caFile, "https://lb-123.elb.example.test/")
	if code != exitFailure {
		t.Fatalf("probe of a mismatched name: exit %d, want 1\n%s", code, stdout)
	}
	for _, want := range []string{"alb.example.test", "lb-123.elb.example.test", "domain_name"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("probe output does not mention %q:\n%s", want, stdout)
		}
	}
	code, stdout, _ = runCmd(t, "probe", "-connect", f.origin, "-ca", f.caFile, "https://alb.example.test/")
	if code != exitOK {
		t.Fatalf("probe of the right name: exit %d\n%s", code, stdout)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// A SIGTERM during load loses no line: every response a viewer received
// has its line, and in-flight requests finish before the process exits.
func TestSIGTERMLosesNoLine(t *testing.T) {
	f := newFixture(t)
	httpsAddr, logDir := freeAddr(t), filepath.Join(f.dir, "logs")
	cfg := filepath.Join(f.dir, "edge.yaml")
	text := fmt.Sprintf(`edge:
  location: SIG1
  listen: {http: "off", https: %q}
  certificates: {files: [{cert: %q, key: %q}]}
  logs: {dir: %q, gzip: true}
distributions:
  - aliases: [www.example.test]
    origins: [{id: alb, domain_name: alb.example.test, connect_to: %q, trusted_ca: %q}]
    default_behavior: {target: alb}
`, httpsAddr, f.certFile, f.keyFile, logDir, f.origin, f.caFile)
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "edge", "-config", cfg)
	cmd.Env = append(os.Environ(), "EDGEGATE_TEST_RUN_MAIN=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: f.ca.Pool(), ServerName: "www.example.test"},
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", httpsAddr)
		},
		MaxIdleConnsPerHost: 32,
	}}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := client.Get("https://www.example.test/ready")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("edge did not come up: %v\n%s", err, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

	var mu sync.Mutex
	var ids []string
	stop := time.Now().Add(20 * time.Second) // bound, in case the edge never stops
	var wg sync.WaitGroup
	for w := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(stop); i++ {
				resp, err := client.Get(fmt.Sprintf("https://www.example.test/w%d/%d", w, i))
				if err != nil {
					return // the edge has closed its listener
				}
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if err == nil && resp.StatusCode == 200 {
					mu.Lock()
					ids = append(ids, resp.Header.Get("X-Edge-Request-Id"))
					mu.Unlock()
				}
			}
		}()
	}
	// Let the load build up (bounded), then signal in the middle of it.
	for ramp := time.Now().Add(15 * time.Second); time.Now().Before(ramp); time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		n := len(ids)
		mu.Unlock()
		if n >= 300 {
			break
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	select {
	case err := <-waitErr:
		if err != nil {
			t.Fatalf("edge exited with %v\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("edge did not exit within 30s of SIGTERM")
	}
	wg.Wait()

	logged := loggedRequestIDs(t, logDir)
	if len(ids) < 100 {
		t.Fatalf("only %d responses before SIGTERM; the load did not run", len(ids))
	}
	for _, id := range ids {
		if !logged[id] {
			t.Fatalf("response %s has no log line (%d responses, %d lines)", id, len(ids), len(logged))
		}
	}
	if !strings.Contains(stderr.String(), "edge stopped") {
		t.Errorf("no clean stop in the operational log:\n%s", stderr.String())
	}
}

// TestSIGTERMDrainsInFlight: requests the edge accepted before SIGTERM
// (they are waiting at the origin) all complete with their response, after
// the edge has begun shutting down, and each has its log line.
func TestSIGTERMDrainsInFlight(t *testing.T) {
	f := newFixture(t)
	httpsAddr, logDir := freeAddr(t), filepath.Join(f.dir, "logs")
	cfg := filepath.Join(f.dir, "edge.yaml")
	text := fmt.Sprintf(`edge:
  location: SIG2
  listen: {http: "off", https: %q}
  certificates: {files: [{cert: %q, key: %q}]}
  logs: {dir: %q}
distributions:
  - aliases: [www.example.test]
    origins: [{id: alb, domain_name: alb.example.test, connect_to: %q, trusted_ca: %q}]
    default_behavior: {target: alb}
`, httpsAddr, f.certFile, f.keyFile, logDir, f.origin, f.caFile)
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "edge", "-config", cfg)
	cmd.Env = append(os.Environ(), "EDGEGATE_TEST_RUN_MAIN=1")
	stderr := &lineWatcher{want: "edge shutting down", seen: make(chan struct{})}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: f.ca.Pool(), ServerName: "www.example.test"},
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", httpsAddr)
		},
	}}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := client.Get("https://www.example.test/ready")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("edge did not come up: %v\n%s", err, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	const inflight = 8
	type answer struct {
		id  string
		err error
	}
	answers := make(chan answer, inflight)
	for i := range inflight {
		go func() {
			resp, err := client.Get(fmt.Sprintf("https://www.example.test/slow/%d", i))
			if err != nil {
				answers <- answer{err: err}
				return
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil && (resp.StatusCode != 200 || !strings.Contains(string(body), "hello from alb")) {
				err = fmt.Errorf("status %d: %q", resp.StatusCode, body)
			}
			answers <- answer{resp.Header.Get("X-Edge-Request-Id"), err}
		}()
	}
	// All of them accepted by the edge and waiting at the origin.
	for until := time.Now().Add(15 * time.Second); f.slowIn.Load() < inflight; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(until) {
			t.Fatalf("only %d of %d requests reached the origin", f.slowIn.Load(), inflight)
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-stderr.seen:
	case <-time.After(15 * time.Second):
		t.Fatalf("edge did not start shutting down on SIGTERM:\n%s", stderr.String())
	}
	f.release()
	var ids []string
	var failed []string
	for range inflight {
		a := <-answers
		if a.err != nil {
			failed = append(failed, a.err.Error())
		} else {
			ids = append(ids, a.id)
		}
	}
	if len(failed) > 0 {
		t.Fatalf("%d of %d requests in flight at SIGTERM were cut instead of drained: %v\n%s", len(failed), inflight, failed, stderr.String())
	}
	select {
	case <-exited:
		if waitErr != nil {
			t.Fatalf("edge exited with %v\n%s", waitErr, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("edge did not exit within 30s of SIGTERM")
	}
	if strings.Contains(stderr.String(), "drain timed out") {
		t.Fatalf("drain timed out with requests in flight:\n%s", stderr.String())
	}
	logged := loggedRequestIDs(t, logDir)
	for _, id := range ids {
		if !logged[id] {
			t.Fatalf("drained response %s has no log line", id)
		}
	}
}

// lineWatcher collects a process's output and closes seen once want
// appears in it.
type lineWatcher struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	seen chan struct{}
	once sync.Once
}

func (w *lineWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.buf.Write(p)
	if bytes.Contains(w.buf.Bytes(), []byte(w.want)) {
		w.once.Do(func() { close(w.seen) })
	}
	return n, err
}

func (w *lineWatcher) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// check -probe connects to every origin as the edge would: exit 0 when all
// answer, 1 with the explanation when one does not.
func TestCheckProbe(t *testing.T) {
	f := newFixture(t)
	for _, tt := range []struct {
		domain string
		code   int
		want   string
	}{
		{"alb.example.test", exitOK, "origin alb: ok"},
		{"lb-123.elb.example.test", exitFailure, "alb.example.test"},
	} {
		cfg := filepath.Join(t.TempDir(), "edge.yaml")
		text := fmt.Sprintf(`edge:
  certificates: {files: [{cert: %q, key: %q}]}
distributions:
  - aliases: [www.example.test]
    origins: [{id: alb, domain_name: %s, connect_to: %q, trusted_ca: %q}]
    default_behavior: {target: alb}
`, f.certFile, f.keyFile, tt.domain, f.origin, f.caFile)
		if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		code, stdout, stderr := runCmd(t, "check", "-probe", "-config", cfg)
		if code != tt.code || !strings.Contains(stdout, tt.want) {
			t.Errorf("check -probe with domain_name %s: exit %d, want %d and %q in:\n%s%s", tt.domain, code, tt.code, tt.want, stdout, stderr)
		}
	}
}

// The shipped binary links no testing package (the demo's Pebble runner
// is not a test helper): go list -deps ./cmd/edgegate names no "testing".
func TestBinaryLinksNoTesting(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if pkg == "testing" || strings.HasSuffix(pkg, "/testpebble") {
			t.Errorf("edgegate links %s", pkg)
		}
	}
}

// loggedRequestIDs is the set of request ids in the standard log files
// (plain or gzipped) in dir.
func loggedRequestIDs(t *testing.T, dir string) map[string]bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	logged := map[string]bool{}
	for _, file := range files {
		rc, err := accesslog.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		r := accesslog.NewReader(rc, file)
		for {
			rec, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			logged[rec.RequestID] = true
		}
		rc.Close()
	}
	return logged
}
