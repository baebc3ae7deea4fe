// Command benchedge is `make bench-edge`: it measures edgegate side by side
// with nginx and Caddy in front of one HTTPS origin, and prints a Markdown
// table of requests per second, median and 99th-percentile latency, CPU and
// resident memory of each server, with edgegate's ratios to the others, and
// writes the same as JSON for tracking.
//
// Set-up, the same for all three servers:
//   - one private PKI (internal/pki): the viewer certificate for localhost
//     and the origin's for origin.test, which every server verifies by name;
//   - the origin is nginx serving static files over HTTPS (/static/ with
//     max-age=3600, /nostore/ with no-store, /pass/ behind a behavior whose
//     caching is disabled);
//   - the server under test runs on core 0 with GOMAXPROCS=1 (nginx with
//     one worker process), the load generator (wrk, h2load) and the origin
//     on core 1;
//   - access logs are on in all three.
//
// Each test runs in interleaved rounds (every server once per round, the
// order rotating), each run on a freshly started server (so that its RSS
// is that test's) after a short warm-up that fills caches and connection
// pools; the table shows the median of the rounds and their spread, the
// run's noise. Caddy has no cache in its standard build, so it runs the
// proxying tests only (new connections, pass-through, no-store misses),
// where it proxies every request.
package main

import (
	"context"
	"crypto/rand"
	"debug/buildinfo"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/edgegate/edgegate/internal/pki"
)

// caddyVersion is the Caddy release measured, installed with `go install`.
const caddyVersion = "v2.11.9"

// benchTest is one row of the table.
type benchTest struct {
	Name    string   // as the table shows it
	ID      string   // for -tests
	Path    string   // the URL path requested
	Size    int      // its body size, checked before measuring
	H2      bool     // h2load over HTTP/2 instead of wrk over HTTP/1.1
	Close   bool     // a new connection (TLS handshake) per request
	Mixed   bool     // 90% hits on Path, 10% no-store misses
	Hit     bool     // the second request must be a cache hit
	Miss    bool     // no request may be a cache hit
	Servers []string // which servers can run it
}

var (
	cacheServers = []string{serverNginx, serverEdgegate}
	allServers   = []string{serverNginx, serverCaddy, serverEdgegate}
)

func tests() []benchTest {
	return []benchTest{
		{Name: "cache hit, 1 KiB, HTTP/1.1", ID: "hit-1k", Path: "/static/1k.bin", Size: 1 << 10, Hit: true, Servers: cacheServers},
		{Name: "cache hit, 100 KiB, HTTP/1.1", ID: "hit-100k", Path: "/static/100k.bin", Size: 100 << 10, Hit: true, Servers: cacheServers},
		{Name: "cache hit, 1 MiB, HTTP/1.1", ID: "hit-1m", Path: "/static/1m.bin", Size: 1 << 20, Hit: true, Servers: cacheServers},
		{Name: "cache hit, 1 KiB, HTTP/2 (-m10)", ID: "hit-1k-h2", Path: "/static/1k.bin", Size: 1 << 10, H2: true, Hit: true, Servers: cacheServers},
		{Name: "new TLS connection per request, 1 KiB", ID: "new-tls", Path: "/static/1k.bin", Size: 1 << 10, Close: true, Servers: allServers},
		{Name: "pass-through (caching disabled), 1 KiB", ID: "pass", Path: "/pass/1k.bin", Size: 1 << 10, Servers: allServers},
		{Name: "miss (origin sends no-store), 1 KiB", ID: "miss", Path: "/nostore/1k.bin", Size: 1 << 10, Miss: true, Servers: allServers},
		{Name: "mixed 90% hit / 10% no-store miss, 1 KiB", ID: "mixed", Path: "/static/1k.bin", Size: 1 << 10, Mixed: true, Servers: cacheServers},
	}
}

type options struct {
	edgegate, nginx, caddy  string
	wrk, h2load             string
	duration, warmup        time.Duration
	rounds, conns, streams  int
	only, servers, jsonPath string
	keep                    bool
	serverCore, loadCore    int
	caddyInstalled          bool // installed here at caddyVersion
}

func main() {
	var o options
	flag.StringVar(&o.edgegate, "edgegate", "bin/edgegate", "the edgegate binary (make build)")
	flag.StringVar(&o.nginx, "nginx", "nginx", "the nginx binary (Debian's nginx package)")
	flag.StringVar(&o.caddy, "caddy", "", "the caddy binary; empty installs Caddy "+caddyVersion+" with go install into a temporary directory")
	flag.StringVar(&o.wrk, "wrk", "wrk", "the wrk binary")
	flag.StringVar(&o.h2load, "h2load", "h2load", "the h2load binary (Debian's nghttp2-client)")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "length of each measured run")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured load before each run (fills caches and connection pools)")
	flag.IntVar(&o.rounds, "rounds", 3, "interleaved rounds of every test")
	flag.IntVar(&o.conns, "c", 50, "concurrent connections of the load generator")
	flag.IntVar(&o.streams, "m", 10, "concurrent streams per HTTP/2 connection")
	flag.StringVar(&o.only, "tests", "", "comma-separated tests to run (default all): "+testNames(tests()))
	flag.StringVar(&o.servers, "servers", strings.Join(allServers, ","), "comma-separated servers to run")
	flag.StringVar(&o.jsonPath, "json", "bin/bench-edge.json", "where to write the results as JSON")
	flag.BoolVar(&o.keep, "keep", false, "keep the working directory (configs, logs) for inspection")
	flag.IntVar(&o.serverCore, "server-core", 0, "CPU core of the server under test")
	flag.IntVar(&o.loadCore, "load-core", 1, "CPU core of the load generator and the origin")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, o)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench-edge: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o options) error {
	selected, err := selectTests(tests(), o.only)
	if err != nil {
		return err
	}
	servers := strings.Split(o.servers, ",")
	for _, s := range servers {
		if !slices.Contains(allServers, s) {
			return fmt.Errorf("-servers: unknown server %q (use %s)", s, strings.Join(allServers, ", "))
		}
	}
	if o.rounds < 1 || o.duration < time.Second {
		return errors.New("-rounds must be at least 1 and -duration at least 1s")
	}
	for _, bin := range []*string{&o.edgegate, &o.wrk, &o.h2load} {
		p, err := exec.LookPath(*bin)
		if err != nil {
			return fmt.Errorf("%s: %w (make bench-edge builds edgegate and installs wrk and nghttp2-client)", *bin, err)
		}
		*bin = p
	}
	if p, err := exec.LookPath(o.nginx); err == nil {
		o.nginx = p
	} else if p, err2 := exec.LookPath("/usr/sbin/" + o.nginx); err2 == nil {
		o.nginx = p
	} else {
		return fmt.Errorf("%s: %w (make bench-edge installs Debian's nginx)", o.nginx, err)
	}
	dir, err := os.MkdirTemp("", "bench-edge-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Printf("working directory: %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	if slices.Contains(servers, serverCaddy) && o.caddy == "" {
		if o.caddy, err = installCaddy(ctx, dir); err != nil {
			return err
		}
		o.caddyInstalled = true
	}
	l, err := prepare(dir)
	if err != nil {
		return err
	}
	started := time.Now()

	origin, err := start(ctx, "origin nginx", o.loadCore, l.OriginPort, filepath.Join(l.LogDir, "origin.out"), nil, o.nginx, "-p", dir, "-e", filepath.Join(l.LogDir, "origin-error.log"), "-c", filepath.Join(dir, "origin.conf"))
	if err != nil {
		return err
	}
	defer origin.stop()
	// Each run starts its server afresh, so that its RSS is that test's and
	// not what an earlier test left behind.
	starters := map[string]func() (*server, error){}
	for _, name := range servers {
		switch name {
		case serverNginx:
			starters[name] = func() (*server, error) {
				s, err := start(ctx, name, o.serverCore, l.NginxPort, filepath.Join(l.LogDir, "nginx.out"), nil, o.nginx, "-p", dir, "-e", filepath.Join(l.LogDir, "nginx-error.log"), "-c", filepath.Join(dir, "nginx.conf"))
				if s != nil {
					s.hitHeader, s.hitValue = "X-Cache-Status", "HIT"
				}
				return s, err
			}
		case serverCaddy:
			starters[name] = func() (*server, error) {
				return start(ctx, name, o.serverCore, l.CaddyPort, filepath.Join(l.LogDir, "caddy.out"),
					[]string{"GOMAXPROCS=1", "HOME=" + dir, "XDG_DATA_HOME=" + l.CaddyDataDir, "XDG_CONFIG_HOME=" + l.CaddyDataDir},
					o.caddy, "run", "--config", filepath.Join(dir, "Caddyfile"), "--adapter", "caddyfile")
			}
		case serverEdgegate:
			starters[name] = func() (*server, error) {
				s, err := start(ctx, name, o.serverCore, l.EdgegatePort, filepath.Join(l.LogDir, "edgegate.out"), []string{"GOMAXPROCS=1"},
					o.edgegate, "edge", "-config", filepath.Join(dir, "edgegate.yaml"), "-log-level", "warn")
				if s != nil {
					s.hitHeader, s.hitValue = "X-Cache", "Hit"
				}
				return s, err
			}
		}
	}
	running := map[string]*server{}
	defer func() {
		for _, s := range running {
			s.stop()
		}
	}()
	for _, name := range servers {
		s, err := starters[name]()
		if err != nil {
			return err
		}
		running[name] = s
	}
	client, err := l.client()
	if err != nil {
		return err
	}
	for _, t := range selected {
		for _, name := range servers {
			if s := running[name]; slices.Contains(t.Servers, name) {
				if err := l.check(ctx, client, s, t.Path, t.Size, t.Hit || t.Mixed, t.Miss); err != nil {
					return fmt.Errorf("test %s: %w", t.ID, err)
				}
			}
		}
	}
	mixScript := filepath.Join(dir, "mixed.lua")
	if err := os.WriteFile(mixScript, []byte(mixedLua), 0o644); err != nil {
		return err
	}
	machine := describeMachine(o)
	fmt.Printf("bench-edge: %s\n%d rounds of %s per test (warm-up %s), %d connections; server on core %d, load and origin on core %d\n\n",
		machine, o.rounds, o.duration, o.warmup, o.conns, o.serverCore, o.loadCore)

	var samples []sample
	for round := 1; round <= o.rounds; round++ {
		for _, t := range selected {
			var order []string
			for _, name := range servers {
				if slices.Contains(t.Servers, name) {
					order = append(order, name)
				}
			}
			for i := range order {
				name := order[(i+round-1)%len(order)]
				running[name].stop()
				delete(running, name)
				srv, err := starters[name]()
				if err != nil {
					return fmt.Errorf("round %d, %s: restart: %w", round, t.ID, err)
				}
				running[name] = srv
				s, err := measure(ctx, o, l, srv, t, mixScript)
				if err != nil {
					return fmt.Errorf("round %d, %s, %s: %w", round, t.ID, name, err)
				}
				s.Round = round
				samples = append(samples, s)
				fmt.Printf("round %d  %-45s %-8s %9.0f req/s  p50 %-9s p99 %-9s CPU %3.0f%%  RSS %s\n",
					round, t.Name, name, s.ReqPerSec, formatLatency(s.P50), formatLatency(s.P99), s.CPU*100, formatMB(s.RSS))
			}
		}
	}
	sums := summarize(samples)
	fmt.Printf("\nMedians of %d rounds; spread is (max-min)/median of req/s over the rounds. Largest spread: %.0f%%.\n\n", o.rounds, noise(sums)*100)
	writeTable(os.Stdout, sums)
	gs := goals(sums)
	fmt.Printf("\nIssue 14's goals in this run:\n")
	writeGoals(os.Stdout, gs)
	report := struct {
		Machine  string    `json:"machine"`
		Started  time.Time `json:"started"`
		Duration string    `json:"duration_per_run"`
		Rounds   int       `json:"rounds"`
		Conns    int       `json:"connections"`
		Noise    float64   `json:"largest_spread"`
		Summary  []summary `json:"summary"`
		Goals    []goal    `json:"goals"`
		Samples  []sample  `json:"samples"`
	}{machine, started.UTC(), o.duration.String(), o.rounds, o.conns, noise(sums), sums, gs, samples}
	b, err := json.MarshalIndent(report, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(o.jsonPath), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(o.jsonPath, append(b, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Printf("\nJSON: %s (whole run %s)\n", o.jsonPath, time.Since(started).Round(time.Second))
	return nil
}

func selectTests(all []benchTest, only string) ([]benchTest, error) {
	if only == "" {
		return all, nil
	}
	var out []benchTest
	for _, id := range strings.Split(only, ",") {
		i := slices.IndexFunc(all, func(t benchTest) bool { return t.ID == strings.TrimSpace(id) })
		if i < 0 {
			return nil, fmt.Errorf("-tests: unknown test %q (use %s)", id, testNames(all))
		}
		out = append(out, all[i])
	}
	return out, nil
}

// mixedLua sends every tenth request to the no-store path.
const mixedLua = `local n = 0
request = function()
  n = n + 1
  if n % 10 == 0 then
    return wrk.format(nil, "/nostore/1k.bin")
  end
  return wrk.format(nil, "/static/1k.bin")
end
`

// measure warms up, then runs the load generator once against s while
// sampling the server's CPU and memory and the origin's connection counts.
func measure(ctx context.Context, o options, l *layout, s *server, t benchTest, mixScript string) (sample, error) {
	url := fmt.Sprintf("https://%s:%d%s", viewerName, s.port, t.Path)
	gen := func(d time.Duration, logFile string) *exec.Cmd {
		secs := strconv.Itoa(int(d.Round(time.Second) / time.Second))
		if t.H2 {
			args := []string{"-c", strconv.Itoa(o.loadCore), o.h2load, "-t1", "-c", strconv.Itoa(o.conns), "-m", strconv.Itoa(o.streams), "-D", secs}
			if logFile != "" {
				args = append(args, "--log-file", logFile)
			}
			return exec.CommandContext(ctx, "taskset", append(args, url)...)
		}
		args := []string{"-c", strconv.Itoa(o.loadCore), o.wrk, "-t1", "-c", strconv.Itoa(o.conns), "-d", secs + "s", "--latency", "--timeout", "10s"}
		if t.Close {
			args = append(args, "-H", "Connection: close")
		}
		if t.Mixed {
			args = append(args, "-s", mixScript)
		}
		return exec.CommandContext(ctx, "taskset", append(args, url)...)
	}
	if o.warmup >= time.Second {
		if out, err := gen(o.warmup, "").CombinedOutput(); err != nil {
			return sample{}, fmt.Errorf("warm-up: %v\n%s", err, out)
		}
	}
	acc0, req0, err := l.originCounts(ctx)
	if err != nil {
		return sample{}, err
	}
	ticks0, _ := s.usage()
	writes0 := s.writes()
	var peak int64
	var mu sync.Mutex
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			_, rss := s.usage()
			mu.Lock()
			peak = max(peak, rss)
			mu.Unlock()
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	})
	logFile := ""
	if t.H2 {
		logFile = filepath.Join(l.Dir, "h2load.log")
		defer os.Remove(logFile)
	}
	begin := time.Now()
	out, err := gen(o.duration, logFile).CombinedOutput()
	wall := time.Since(begin)
	close(stop)
	wg.Wait()
	if err != nil {
		return sample{}, fmt.Errorf("%v\n%s", err, out)
	}
	ticks1, _ := s.usage()
	writes1 := s.writes()
	acc1, req1, err := l.originCounts(ctx)
	if err != nil {
		return sample{}, err
	}
	var lr loadResult
	if t.H2 {
		if lr, err = parseH2load(string(out)); err != nil {
			return sample{}, err
		}
		f, err := os.Open(logFile)
		if err != nil {
			return sample{}, err
		}
		lr.P50, lr.P99, err = parseH2loadLog(f)
		f.Close()
		if err != nil {
			return sample{}, err
		}
	} else if lr, err = parseWrk(string(out)); err != nil {
		return sample{}, err
	}
	res := sample{Test: t.Name, Server: s.name, loadResult: lr, RSS: peak, OriginHandshakes: -1}
	res.CPU = float64(ticks1-ticks0) / clockTicks / wall.Seconds()
	if lr.Requests > 0 {
		res.WritesPerRequest = float64(writes1-writes0) / float64(lr.Requests)
	}
	res.OriginHandshakes = originHandshakes(acc1-acc0, req1-req0, lr.Requests)
	return res, nil
}

// originHandshakes is how many connections the origin accepted per 1,000
// requests it served, from the changes of its counters over a run (the
// status request after the run counts itself: one connection, one
// request); -1 when the origin served under 1% of the viewer's requests
// (hits), too few for the figure to mean anything.
func originHandshakes(accepted, served, viewerRequests int64) float64 {
	accepted, served = accepted-1, served-1
	if served <= 0 || served*100 < viewerRequests {
		return -1
	}
	return float64(accepted) / float64(served) * 1000
}

// prepare writes the PKI, the origin's files and the four configurations.
func prepare(dir string) (*layout, error) {
	l := &layout{
		Dir: dir, Root: filepath.Join(dir, "www"), LogDir: filepath.Join(dir, "logs"),
		NginxCacheDir: filepath.Join(dir, "nginx-cache"), CaddyDataDir: filepath.Join(dir, "caddy-data"),
	}
	if os.Getuid() == 0 {
		l.User = "user root;" // else the workers run as nobody and cannot read the files
	}
	for _, d := range []string{l.Root + "/static", l.LogDir, l.NginxCacheDir, l.CaddyDataDir, dir + "/origin-tmp", dir + "/nginx-tmp"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	for name, size := range map[string]int{"1k.bin": 1 << 10, "100k.bin": 100 << 10, "1m.bin": 1 << 20} {
		b := make([]byte, size)
		_, _ = rand.Read(b) // incompressible, like the media an edge mostly serves
		if err := os.WriteFile(filepath.Join(l.Root, "static", name), b, 0o644); err != nil {
			return nil, err
		}
	}
	ca, err := pki.NewAuthority("bench-edge CA")
	if err != nil {
		return nil, err
	}
	l.CA = filepath.Join(dir, "ca.pem")
	if err := ca.WriteFile(l.CA); err != nil {
		return nil, err
	}
	for _, c := range []struct {
		name      string
		cert, key *string
		file      string
	}{{viewerName, &l.ViewerCert, &l.ViewerKey, "viewer"}, {originName, &l.OriginCert, &l.OriginKey, "origin"}} {
		leaf, err := ca.Issue(pki.LeafOptions{Names: []string{c.name}})
		if err != nil {
			return nil, err
		}
		if *c.cert, *c.key, err = leaf.WriteFiles(dir, c.file); err != nil {
			return nil, err
		}
	}
	for _, p := range []*int{&l.OriginPort, &l.StatusPort, &l.NginxPort, &l.CaddyPort, &l.EdgegatePort} {
		if *p, err = freePort(); err != nil {
			return nil, err
		}
	}
	for name, text := range map[string]string{"origin.conf": originConf, "nginx.conf": nginxConf, "Caddyfile": caddyConf, "edgegate.yaml": edgegateConf} {
		if err := writeTemplate(filepath.Join(dir, name), text, l); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	return l, nil
}

// installCaddy builds the pinned Caddy release from the Go module proxy
// into dir/bin.
func installCaddy(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "bin")
	fmt.Printf("installing Caddy %s (go install)...\n", caddyVersion)
	cmd := exec.CommandContext(ctx, "go", "install", "github.com/caddyserver/caddy/v2/cmd/caddy@"+caddyVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+bin, "CGO_ENABLED=0")
	cmd.Dir = dir // outside the module: install the release as published
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install caddy@%s: %v\n%s", caddyVersion, err, out)
	}
	return filepath.Join(bin, "caddy"), nil
}

// describeMachine names the CPU, core count, kernel and the versions run.
func describeMachine(o options) string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	version := func(bin string, args ...string) string {
		out, _ := exec.Command(bin, args...).CombinedOutput()
		line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		return line
	}
	wrk, _, _ := strings.Cut(version(o.wrk, "-v"), " [") // drop the copyright
	parts := []string{fmt.Sprintf("%s, %d cores, Linux %s, %s", cpu, runtime.NumCPU(), strings.TrimSpace(string(kernel)), runtime.Version()),
		version(o.nginx, "-v"), wrk, version(o.h2load, "--version")}
	if o.caddy != "" {
		// A go-installed Caddy does not know its version ("unknown"), but
		// its build information names the module version it was built from.
		caddy := version(o.caddy, "version")
		if o.caddyInstalled {
			caddy = caddyVersion
		} else if bi, err := buildinfo.ReadFile(o.caddy); err == nil && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			caddy = bi.Main.Version
		}
		parts = append(parts, "Caddy "+caddy)
	}
	if rev, err := exec.Command("git", "describe", "--always", "--dirty").Output(); err == nil {
		parts = append(parts, "edgegate "+strings.TrimSpace(string(rev)))
	}
	return strings.Join(parts, "; ")
}
