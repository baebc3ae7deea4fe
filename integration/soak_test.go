//go:build soak

package integration

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/edgegate/edgegate/edge/accesslog"
	"github.com/edgegate/edgegate/internal/syncbuf"
	"github.com/edgegate/edgegate/internal/testredis"
)

// TestSoak (make soak; not in CI: build tag soak) runs an edge and an
// origin tier as processes, with the edge's cache tier in a real Redis,
// under SOAK_DURATION (default 10m) of mixed traffic: hits, misses,
// origin errors (500s, a dead origin, responses cut midway), a SIGHUP to
// both processes every minute and a Redis restart halfway. Every 10 s it
// samples each process's RSS, goroutines and open file descriptors. It
// fails if any of them trends up after the warm-up (the first fifth of
// the run): the median of the last third of the samples may exceed the
// median of the first third after warm-up by at most 20% (and a small
// absolute slack), or if any answered request lacks its standard log line.
func TestSoak(t *testing.T) {
	duration := 10 * time.Minute
	if v := os.Getenv("SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("SOAK_DURATION: %v", err)
		}
		duration = d
	}
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	ca := newTestCA(t, dir, "soak CA")
	caFile, issue := ca.File, ca.issue
	viewerCert, viewerKey := issue("viewer", "www.example.test")
	originCert, originKey := issue("origin", "origin.example.test")
	redis := testredis.Start(t)

	// The application: cacheable pages, uncacheable ones, errors, and
	// responses cut midway.
	app := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/hit/"):
			w.Header().Set("Cache-Control", "public, max-age=30")
			fmt.Fprintf(w, "page %s %s", r.URL.Path, strings.Repeat("x", 2048))
		case strings.HasPrefix(r.URL.Path, "/miss/"):
			w.Header().Set("Cache-Control", "no-store")
			fmt.Fprintf(w, "fresh %s", r.URL.Path)
		case strings.HasPrefix(r.URL.Path, "/error/"):
			http.Error(w, "boom", http.StatusInternalServerError)
		case strings.HasPrefix(r.URL.Path, "/cut/"):
			w.Header().Set("Content-Length", "100000")
			_, _ = w.Write([]byte("only a part"))
			panic(http.ErrAbortHandler)
		default:
			fmt.Fprint(w, "ok")
		}
	})}
	appLn, err := net.Listen("tcp", "127.0.0.2:0")
	must(err)
	go func() { _ = app.Serve(appLn) }()
	t.Cleanup(func() { app.Close() })

	const token = "soak-token"
	originPort := freePort(t, "127.0.0.3")
	originAdmin := "127.0.0.3:" + freePort(t, "127.0.0.3")
	originCfg := filepath.Join(dir, "origin.yaml")
	must(os.WriteFile(originCfg, []byte(fmt.Sprintf(`origin:
  listeners:
    - {protocol: HTTPS, address: 127.0.0.3, port: %s, certificates: {files: [{cert: %q, key: %q}]}, default_action: {forward: app}}
  target_groups:
    - name: app
      protocol: HTTP
      targets: [%q]
      health_check: {protocol: HTTP, path: /healthz, interval: 2s, timeout: 1s, healthy_threshold: 2, unhealthy_threshold: 2}
  logs: {dir: %q}
  admin: {listen: %q, token: %s}
`, originPort, originCert, originKey, appLn.Addr().String(), filepath.Join(dir, "origin-logs"), originAdmin, token)), 0o644))

	httpsPort := freePort(t, "127.0.0.1")
	edgeAdmin := "127.0.0.1:" + freePort(t, "127.0.0.1")
	edgeLogs := filepath.Join(dir, "edge-logs")
	edgeCfg := filepath.Join(dir, "edge.yaml")
	must(os.WriteFile(edgeCfg, []byte(fmt.Sprintf(`edge:
  location: SOAK1
  listen: {http: off, https: "127.0.0.1:%s"}
  certificates: {files: [{cert: %q, key: %q}]}
  cache: {memory: 64MiB, redis: %q}
  logs: {dir: %q, rotate: 1m}
  admin: {listen: %q, token: %s}
distributions:
  - aliases: [www.example.test]
    origins:
      - {id: lb, domain_name: origin.example.test, connect_to: "127.0.0.3:%s", trusted_ca: %q, response_timeout: 5s}
      - {id: dead, domain_name: origin.example.test, connect_to: "127.0.0.9:1", trusted_ca: %q, connection_attempts: 1, connection_timeout: 1s}
    default_behavior: {target: lb, cache_policy: {default_ttl: 0s, max_ttl: 1h}}
    behaviors:
      - {path_pattern: "/dead/*", target: dead, cache_policy: disabled}
`, httpsPort, viewerCert, viewerKey, redis.URL(), edgeLogs, edgeAdmin, token, originPort, caFile, caFile)), 0o644))

	originOut, edgeOut := &syncbuf.Buffer{}, &syncbuf.Buffer{}
	originProc := startBinary(t, originOut, "origin", "-config", originCfg)
	waitListening(t, "127.0.0.3:"+originPort, originProc, originOut)
	edgeProc := startBinary(t, edgeOut, "edge", "-config", edgeCfg)
	waitListening(t, "127.0.0.1:"+httpsPort, edgeProc, edgeOut)

	viewer := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: ca.Pool()},
		MaxIdleConnsPerHost: 16,
		ForceAttemptHTTP2:   true,
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, "127.0.0.1:"+httpsPort)
		},
	}}
	ctx, stop := context.WithTimeout(context.Background(), duration)
	defer stop()

	// Traffic: 8 viewers at SOAK_RATE requests per second in all (default
	// 200: the soak looks for leaks, not throughput, and must not starve
	// the machine), each request's id kept to find its log line.
	rate := 200
	if v := os.Getenv("SOAK_RATE"); v != "" {
		if rate, err = strconv.Atoi(v); err != nil || rate < 8 {
			t.Fatalf("SOAK_RATE %q: want a number of requests per second, at least 8", v)
		}
	}
	var idsMu sync.Mutex
	ids := map[string]bool{}
	results := map[string]int{}
	var sent, answered, failed atomic.Int64
	kinds := []string{"/hit/%d", "/hit/%d", "/hit/%d", "/miss/%d", "/error/%d", "/cut/%d", "/dead/%d", "/hit/%d?v=%d"}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pace := time.NewTicker(time.Second * 8 / time.Duration(rate))
			defer pace.Stop()
			for i := 0; ctx.Err() == nil; i++ {
				select {
				case <-pace.C:
				case <-ctx.Done():
					return
				}
				kind := kinds[(i+w)%len(kinds)]
				path := fmt.Sprintf(kind, i%50, i)
				if !strings.Contains(kind, "?") {
					path = fmt.Sprintf(kind, i%50)
				}
				if strings.HasPrefix(kind, "/miss/") {
					path = fmt.Sprintf(kind, i)
				}
				sent.Add(1)
				resp, err := viewer.Get("https://www.example.test" + path)
				if err != nil {
					failed.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				answered.Add(1)
				idsMu.Lock()
				if id := resp.Header.Get("X-Edge-Request-Id"); id != "" {
					ids[id] = true
				}
				results[resp.Header.Get("X-Cache")]++
				idsMu.Unlock()
			}
		}()
	}

	// Samples every 10 s; reloads every minute; Redis restarts halfway.
	type sample struct {
		at                   time.Duration
		rss, goroutines, fds [2]int64 // edge, origin tier
	}
	var samples []sample
	procs := []*execCmd{edgeProc, originProc}
	admins := []string{edgeAdmin, originAdmin}
	start := time.Now()
	tick := time.NewTicker(10 * time.Second)
	defer tick.Stop()
	restarted := false
	lastReload := start
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
			continue
		case <-tick.C:
		}
		var s sample
		s.at = time.Since(start).Round(time.Second)
		for i, p := range procs {
			s.rss[i], s.fds[i] = procStats(t, p.cmd.Process.Pid)
			s.goroutines[i] = goroutines(t, admins[i], token)
		}
		samples = append(samples, s)
		t.Logf("%6s edge rss=%dMiB goroutines=%d fds=%d | origin rss=%dMiB goroutines=%d fds=%d | sent=%d answered=%d failed=%d",
			s.at, s.rss[0]>>20, s.goroutines[0], s.fds[0], s.rss[1]>>20, s.goroutines[1], s.fds[1], sent.Load(), answered.Load(), failed.Load())
		if time.Since(lastReload) >= time.Minute {
			lastReload = time.Now()
			for _, p := range procs {
				must(p.cmd.Process.Signal(syscall.SIGHUP))
			}
		}
		if !restarted && time.Since(start) >= duration/2 {
			restarted = true
			redis.Restart()
			t.Logf("%6s redis restarted", time.Since(start).Round(time.Second))
		}
	}
	wg.Wait()
	for _, p := range procs {
		if p.exited() {
			t.Fatalf("a process ended during the soak:\n%s\n%s", edgeOut.String(), originOut.String())
		}
	}
	edgeProc.stop(syscall.SIGTERM, 60*time.Second)
	originProc.stop(syscall.SIGTERM, 60*time.Second)

	// Every answered request has its line.
	logged := map[string]bool{}
	files, _ := filepath.Glob(filepath.Join(edgeLogs, "*"))
	for _, f := range files {
		rc, err := accesslog.Open(f)
		must(err)
		r := accesslog.NewReader(rc, f)
		for {
			rec, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			must(err)
			logged[rec.RequestID] = true
		}
		rc.Close()
	}
	missing := 0
	for id := range ids {
		if !logged[id] {
			missing++
		}
	}
	t.Logf("requests: %d sent, %d answered, %d failed at the viewer; %d log lines in %d files; %d answered without a line",
		sent.Load(), answered.Load(), failed.Load(), len(logged), len(files), missing)
	t.Logf("answers by X-Cache: %v", results)
	if missing > 0 {
		t.Errorf("%d answered requests have no standard log line", missing)
	}
	if answered.Load() == 0 {
		t.Fatal("no request was answered")
	}

	// Trends after warm-up.
	warm := len(samples) / 5
	rest := samples[warm:]
	if len(rest) < 6 {
		t.Fatalf("only %d samples after warm-up: run longer (SOAK_DURATION)", len(rest))
	}
	third := len(rest) / 3
	median := func(ss []sample, f func(sample) int64) int64 {
		v := make([]int64, len(ss))
		for i, s := range ss {
			v[i] = f(s)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	for i, proc := range []string{"edge", "origin tier"} {
		for _, m := range []struct {
			name  string
			f     func(sample) int64
			slack int64
		}{
			{"RSS", func(s sample) int64 { return s.rss[i] }, 16 << 20},
			{"goroutines", func(s sample) int64 { return s.goroutines[i] }, 50},
			{"open fds", func(s sample) int64 { return s.fds[i] }, 20},
		} {
			early, late := median(rest[:third], m.f), median(rest[len(rest)-third:], m.f)
			t.Logf("%s %s: %d after warm-up, %d at the end", proc, m.name, early, late)
			if late > early+early/5+m.slack {
				t.Errorf("%s %s trends up: %d after warm-up, %d at the end", proc, m.name, early, late)
			}
		}
	}
}

// procStats reads a process's resident memory (bytes) and open file
// descriptors from /proc.
func procStats(t *testing.T, pid int) (rss, fds int64) {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			rss = kb << 10
		}
	}
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return rss, int64(len(ents))
}

// goroutines reads go_goroutines from a tier's admin /metrics.
func goroutines(t *testing.T, admin, token string) int64 {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+admin+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("metrics of %s: %v", admin, err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			n, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int64(n)
		}
	}
	t.Fatalf("no go_goroutines in the metrics of %s", admin)
	return 0
}
