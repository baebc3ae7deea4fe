package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// logsCmd runs `edgegate logs ARGS...` in-process with stdin.
func logsCmd(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code = runLogs(ctx, &env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb}, args)
	return code, out.String(), errb.String()
}

const realLogs = "../../logs/testdata"

func TestLogsSummary(t *testing.T) {
	code, out, errs := logsCmd(t, "", "summary", "-format", "json", "-top", "3", realLogs)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var s struct {
		Requests int64 `json:"requests"`
		Input    struct {
			Malformed int64 `json:"malformed"`
		} `json:"input"`
		Top struct {
			Hosts struct {
				Items []struct{ Key string } `json:"items"`
			} `json:"hosts"`
		} `json:"top"`
	}
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("not JSON: %v\n%.300s", err, out)
	}
	if s.Requests != 17 || s.Input.Malformed != 1 || len(s.Top.Hosts.Items) != 3 {
		t.Errorf("requests %d, malformed %d, %d top hosts", s.Requests, s.Input.Malformed, len(s.Top.Hosts.Items))
	}
	// The malformed line is not silent: stderr names its file and line.
	if !strings.Contains(errs, "cloudfront-2019-33fields.log:10: 31 fields") {
		t.Errorf("stderr does not point at the malformed line: %q", errs)
	}

	data, err := os.ReadFile(filepath.Join(realLogs, "cloudfront-2020-33fields.log"))
	if err != nil {
		t.Fatal(err)
	}
	code, out, errs = logsCmd(t, string(data), "summary", "-status", "2xx", "-")
	if code != exitOK || !strings.Contains(out, "OVERVIEW") || !strings.Contains(out, "2 records") {
		t.Errorf("table from stdin: exit %d\n%s%s", code, out, errs)
	}
	code, out, _ = logsCmd(t, "", "summary", "-format", "csv", "-result", "OriginDnsError", realLogs)
	if code != exitOK || !strings.Contains(out, "totals,,requests,2\n") {
		t.Errorf("csv with -result: exit %d\n%s", code, out)
	}
}

func TestLogsReport(t *testing.T) {
	out := filepath.Join(t.TempDir(), "report.html")
	code, _, errs := logsCmd(t, "", "report", "-o", out, "-title", "Old CloudFront files", realLogs)
	if code != exitOK || !strings.Contains(errs, "wrote "+out) {
		t.Fatalf("exit %d: %s", code, errs)
	}
	page, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(page, []byte("<title>Old CloudFront files</title>")) || !bytes.Contains(page, []byte("<svg")) {
		t.Errorf("report %.200s", page)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".*")); len(leftovers) != 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}

func TestLogsUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{nil, exitUsage, "Usage: edgegate logs"},
		{[]string{"-h"}, exitOK, "Examples:"},
		{[]string{"summary", "-h"}, exitOK, "Usage: edgegate logs summary"},
		{[]string{"report", "-h"}, exitOK, "-o"},
		{[]string{"frobnicate"}, exitUsage, "unknown subcommand"},
		{[]string{"summary"}, exitUsage, "at least one log file"},
		{[]string{"summary", "-format", "xml", realLogs}, exitUsage, "-format"},
		{[]string{"summary", "-top", "0", realLogs}, exitUsage, "-top"},
		{[]string{"summary", "-since", "last tuesday", realLogs}, exitUsage, "-since"},
		{[]string{"summary", "-status", "9xx9", realLogs}, exitUsage, "-status"},
		{[]string{"report", realLogs}, exitUsage, "-o is required"},
		{[]string{"summary", realLogs, "-format", "json"}, exitUsage, "put the flags first"},
		{[]string{"summary", "/nonexistent/edge.log"}, exitUsage, "/nonexistent/edge.log"},
		{[]string{"report", "-o", "/nonexistent/dir/r.html", realLogs}, exitFailure, "/nonexistent/dir/r.html"},
	} {
		code, out, errs := logsCmd(t, "", tc.args...)
		if code == exitOK {
			errs = out // help is on stdout
		}
		if code != tc.code || !strings.Contains(errs, tc.want) {
			t.Errorf("logs %v: exit %d (want %d), stderr %q (want %q)", tc.args, code, tc.code, errs, tc.want)
		}
	}
}

// TestLogsUnreadableInput: a truncated gzip file is reported and makes the
// exit status 1, but the lines before the cut are still summarised.
func TestLogsUnreadableInput(t *testing.T) {
	dir := t.TempDir()
	var z bytes.Buffer
	z.Write([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}) // a gzip header and nothing after it
	if err := os.WriteFile(filepath.Join(dir, "cut.gz"), z.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(realLogs, "cloudfront-2020-33fields.log"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ok.log"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs := logsCmd(t, "", "summary", dir)
	if code != exitFailure || !strings.Contains(errs, "cut.gz") || !strings.Contains(out, "2 records") {
		t.Errorf("exit %d, stderr %q\n%s", code, errs, out)
	}
}

// edge.logs.flush_interval is how long lines wait in memory: with 1m, a
// request is not in the files after the default second, and is once the
// edge stops; logs summary on the live directory says how old its newest
// line is.
func TestLogsFlushIntervalAndFreshness(t *testing.T) {
	f := newFixture(t)
	httpsAddr, logDir := freeAddr(t), filepath.Join(f.dir, "logs")
	cfg := filepath.Join(f.dir, "edge.yaml")
	text := fmt.Sprintf(`edge:
  location: FLU1
  listen: {http: "off", https: %q}
  certificates: {files: [{cert: %q, key: %q}]}
  logs: {dir: %q, flush_interval: 1m}
distributions:
  - aliases: [www.example.test]
    origins: [{id: alb, domain_name: alb.example.test, connect_to: %q, trusted_ca: %q}]
    default_behavior: {target: alb}
`, httpsAddr, f.certFile, f.keyFile, logDir, f.origin, f.caFile)
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	var stderr bytes.Buffer
	go func() {
		done <- run(ctx, &env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: &stderr}, []string{"edge", "-config", cfg})
	}()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: f.ca.Pool(), ServerName: "www.example.test"},
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", httpsAddr)
		},
	}}
	defer client.CloseIdleConnections()
	var resp *http.Response
	var err error
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if resp, err = client.Get("https://www.example.test/fresh"); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("edge did not answer: %v", err)
	}
	resp.Body.Close()
	time.Sleep(1500 * time.Millisecond) // past the default interval of 1s
	if _, out, _ := logsCmd(t, "", "summary", "-format", "json", logDir); strings.Contains(out, "/fresh") {
		t.Errorf("with flush_interval 1m the line reached the file within 1.5 s")
	}
	cancel()
	if code := <-done; code != exitOK {
		t.Fatalf("edge exited %d: %s", code, stderr.String())
	}
	code, out, errs := logsCmd(t, "", "summary", logDir)
	if code != exitOK || !strings.Contains(out, "1 hit") && !strings.Contains(out, "1 miss") {
		t.Fatalf("summary after the stop: exit %d\n%s%s", code, out, errs)
	}
	if !regexp.MustCompile(`(?m)^  newest line +\d\d:\d\d:\d\d UTC, \d+s before this summary`).MatchString(out) {
		t.Errorf("no word of the newest line's age:\n%s", out)
	}
}
