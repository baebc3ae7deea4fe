package integration

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgegate/edgegate/internal/syncbuf"
)

// TestMemoryTierBoundsRSS (issue 14) runs the edge as a process with a 64
// MiB memory tier and fills it over HTTPS with 200,000 distinct 1 KiB
// objects from a loopback origin: about five times what the tier holds,
// so the working set overflows it. The process's resident memory, now and
// at its peak (VmHWM), must stay within 1.5 times the tier's bound plus
// rssBase, and the tier must still answer hits for the objects it kept.
func TestMemoryTierBoundsRSS(t *testing.T) {
	const (
		tier    = 64 << 20
		objects = 200_000
		size    = 1024
		viewers = 8
		// rssBase is what the process holds besides the tier: the
		// runtime, the binary's pages, TLS connections, log buffers and
		// the collector's headroom (the edge's Go memory limit is
		// 1.5 x tier + 256 MiB; see edge/memlimit.go).
		rssBase = 256 << 20
	)
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	ca := newTestCA(t, dir, "memory test CA")
	caFile, issue := ca.File, ca.issue
	viewerCert, viewerKey := issue("viewer", "www.example.test")
	originCert, originKey := issue("origin", "app.example.test")
	pair, err := tls.LoadX509KeyPair(originCert, originKey)
	must(err)

	// The origin: distinct cacheable 1 KiB objects with the header fields
	// an origin typically sends.
	body := []byte(strings.Repeat("x", size))
	lastModified := time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)
	var fetched atomic.Int64
	app := &http.Server{ReadHeaderTimeout: 10 * time.Second, TLSConfig: &tls.Config{Certificates: []tls.Certificate{pair}},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fetched.Add(1)
			h := w.Header()
			h.Set("Content-Type", "application/octet-stream")
			h.Set("Cache-Control", "public, max-age=3600")
			h.Set("Last-Modified", lastModified)
			h.Set("ETag", `"`+strings.TrimPrefix(r.URL.Path, "/o/")+`"`)
			_, _ = w.Write(body)
		})}
	appLn, err := net.Listen("tcp", "127.0.0.2:0")
	must(err)
	go func() { _ = app.ServeTLS(appLn, "", "") }()
	t.Cleanup(func() { app.Close() })

	httpsAddr := "127.0.0.1:" + freePort(t, "127.0.0.1")
	cfg := filepath.Join(dir, "edge.yaml")
	must(os.WriteFile(cfg, []byte(fmt.Sprintf(`edge:
  location: MEM1
  listen: {http: off, https: %q}
  certificates: {files: [{cert: %q, key: %q}]}
  cache: {memory: %dMiB}
  logs: {dir: %q}
distributions:
  - aliases: [www.example.test]
    origins: [{id: app, domain_name: app.example.test, connect_to: %q, trusted_ca: %q}]
    default_behavior: {target: app, cache_policy: {default_ttl: 1h}}
`, httpsAddr, viewerCert, viewerKey, tier>>20, filepath.Join(dir, "logs"), appLn.Addr().String(), caFile)), 0o644))
	out := &syncbuf.Buffer{}
	proc := startBinary(t, out, "edge", "-config", cfg)
	waitListening(t, httpsAddr, proc, out)
	pid := proc.cmd.Process.Pid

	// run requests the objects ids and returns those that were hits. The
	// viewers pipeline HTTP/1.1 requests in batches over one TLS
	// connection each, which keeps the test's own share of the machine
	// small (an http.Client in a race-instrumented test costs several
	// times the edge's work).
	viewerTLS := &tls.Config{RootCAs: ca.Pool(), ServerName: "www.example.test", NextProtos: []string{"http/1.1"}}
	run := func(ids []int) (hits []int) {
		const batch = 64
		var next atomic.Int64
		var mu sync.Mutex
		var wg sync.WaitGroup
		errs := make(chan error, viewers)
		for range viewers {
			wg.Go(func() {
				d := tls.Dialer{NetDialer: &net.Dialer{Timeout: 10 * time.Second}, Config: viewerTLS}
				conn, err := d.DialContext(context.Background(), "tcp", httpsAddr)
				if err != nil {
					errs <- err
					return
				}
				defer conn.Close()
				br, bw := bufio.NewReader(conn), bufio.NewWriter(conn)
				for {
					from := int(next.Add(batch)) - batch
					if from >= len(ids) {
						return
					}
					part := ids[from:min(from+batch, len(ids))]
					if err := conn.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
						errs <- err
						return
					}
					for _, id := range part {
						fmt.Fprintf(bw, "GET /o/%d HTTP/1.1\r\nHost: www.example.test\r\n\r\n", id)
					}
					if err := bw.Flush(); err != nil {
						errs <- err
						return
					}
					for _, id := range part {
						resp, err := http.ReadResponse(br, nil)
						if err != nil {
							errs <- fmt.Errorf("object %d: %w", id, err)
							return
						}
						n, err := io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if err != nil || resp.StatusCode != http.StatusOK || n != size {
							errs <- fmt.Errorf("object %d: status %d, %d bytes, %v", id, resp.StatusCode, n, err)
							return
						}
						if strings.HasPrefix(resp.Header.Get("X-Cache"), "Hit") {
							mu.Lock()
							hits = append(hits, id)
							mu.Unlock()
						}
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("%v\nedge output:\n%s", err, out.String())
		}
		return hits
	}
	ids := func(from, to, step int) []int {
		var out []int
		for i := from; i < to; i += step {
			out = append(out, i)
		}
		return out
	}

	// Hits on a nearly empty tier, to compare with a full one below
	// (reported, not timed: timings on a shared machine are not a test).
	warm := ids(objects, objects+2_000, 1)
	run(warm)
	warm = append(append(append([]int(nil), warm...), warm...), warm...)
	start := time.Now()
	if hits := run(warm); len(hits) < len(warm)*9/10 {
		t.Fatalf("only %d of %d requests for objects just fetched were hits", len(hits), len(warm))
	}
	emptyRate := float64(len(warm)) / time.Since(start).Seconds()

	start = time.Now()
	var peakRSS int64
	for from := 0; from < objects; from += objects / 10 {
		run(ids(from, from+objects/10, 1))
		peakRSS = max(peakRSS, procMemory(t, pid, "VmRSS"))
	}
	fill := time.Since(start)
	if got := fetched.Load(); got < objects {
		t.Fatalf("the origin served %d of %d objects", got, objects)
	}
	// A sample of every 20th object: the tier holds about tier / 1.6 KB
	// of them (W-TinyLFU keeps a frequency-chosen part of a scan, not
	// the most recent), so about a fifth of the sample should be hits,
	// and most of it misses since the working set overflowed the tier.
	sample := ids(0, objects, 20)
	kept := run(sample)
	held := len(kept) * 20 // objects held, estimated from the sample
	if held < tier/1600/4 || len(kept) > len(sample)/2 {
		t.Fatalf("%d of a sample of %d were hits: the tier holds about %d objects, want about %d of %d",
			len(kept), len(sample), held, tier/1600, objects)
	}
	// Hits on a full tier (not timed: the rate is reported).
	again := append(append(append([]int(nil), kept...), kept...), kept...)
	start = time.Now()
	hits := run(again)
	hitTime := time.Since(start)
	if len(hits) < len(again)*9/10 {
		t.Fatalf("only %d of %d requests for kept objects were hits", len(hits), len(again))
	}
	peakRSS = max(peakRSS, procMemory(t, pid, "VmRSS"))
	rss, hwm := procMemory(t, pid, "VmRSS"), procMemory(t, pid, "VmHWM")
	bound := int64(1.5*tier) + rssBase
	t.Logf("%d objects through a %d MiB tier in %v (%.0f req/s), about %d held; hits: %.0f/s on the full tier, %.0f/s on "+
		"the empty one; VmRSS %d MiB (peak sampled %d MiB), VmHWM %d MiB, bound %d MiB",
		objects, tier>>20, fill.Round(time.Millisecond), objects/fill.Seconds(), held,
		float64(len(hits))/hitTime.Seconds(), emptyRate, rss>>20, peakRSS>>20, hwm>>20, bound>>20)
	if hwm > bound || rss > bound {
		t.Fatalf("resident memory %d MiB (peak %d MiB) over the bound of 1.5 x %d MiB + %d MiB = %d MiB",
			rss>>20, hwm>>20, tier>>20, rssBase>>20, bound>>20)
	}
}

// procMemory reads a memory field of /proc/PID/status (VmRSS, VmHWM), in
// bytes.
func procMemory(t *testing.T, pid int, field string) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("/proc/%d/status: %s: %v", pid, field, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("/proc/%d/status: no %s", pid, field)
	return 0
}
