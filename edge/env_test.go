package edge

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgegate/edgegate/edge/accesslog"
	"github.com/edgegate/edgegate/internal/pki"
	"github.com/edgegate/edgegate/internal/syncbuf"
	"github.com/rs/zerolog"
)

// testEnv is a private CA, a viewer certificate for www.example.test and
// helpers to run origins and an edge on loopback.
type testEnv struct {
	t      testing.TB
	dir    string
	ca     *pki.Authority
	caFile string
	cert   string // viewer certificate for www.example.test and api.example.test
	key    string
}

func newTestEnv(t testing.TB) *testEnv {
	t.Helper()
	e := &testEnv{t: t, dir: t.TempDir()}
	var err error
	if e.ca, err = pki.NewAuthority("edge test CA"); err != nil {
		t.Fatal(err)
	}
	e.caFile = filepath.Join(e.dir, "ca.pem")
	if err := e.ca.WriteFile(e.caFile); err != nil {
		t.Fatal(err)
	}
	leaf := e.issue(pki.LeafOptions{Names: []string{"www.example.test", "api.example.test"}})
	if e.cert, e.key, err = leaf.WriteFiles(e.dir, "viewer"); err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *testEnv) issue(o pki.LeafOptions) *pki.Leaf {
	e.t.Helper()
	l, err := e.ca.Issue(o)
	if err != nil {
		e.t.Fatal(err)
	}
	return l
}

// listen opens a listener on a loopback address acting as its own host.
func listen(t testing.TB, ip string) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// httpsOrigin serves h over TLS with a certificate from the test CA for
// names, on a fresh loopback port of ip.
func (e *testEnv) httpsOrigin(ip string, h http.Handler, names ...string) (addr string, handshakes *counter) {
	e.t.Helper()
	leaf := e.issue(pki.LeafOptions{Names: names})
	return e.tlsOrigin(ip, h, &tls.Config{Certificates: []tls.Certificate{leaf.TLS()}})
}

func (e *testEnv) tlsOrigin(ip string, h http.Handler, cfg *tls.Config) (addr string, handshakes *counter) {
	e.t.Helper()
	handshakes = &counter{}
	cfg = cfg.Clone()
	base := cfg.GetConfigForClient
	cfg.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		handshakes.add()
		if base != nil {
			return base(hello)
		}
		return nil, nil
	}
	l := listen(e.t, ip)
	srv := &http.Server{Handler: h, TLSConfig: cfg, ReadHeaderTimeout: 5 * time.Second, ErrorLog: quietLog()}
	go func() { _ = srv.ServeTLS(l, "", "") }()
	e.t.Cleanup(func() { srv.Close() })
	return l.Addr().String(), handshakes
}

type counter struct {
	mu sync.Mutex
	n  int
}

func (c *counter) add() { c.mu.Lock(); c.n++; c.mu.Unlock() }
func (c *counter) get() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// edgeConfig is a one-distribution config for www.example.test whose
// origins and behaviors are given as YAML fragments (indented for the
// distribution), and whose extra edge settings are appended to edge:.
func (e *testEnv) edgeConfig(edgeExtra, distribution string) string {
	return fmt.Sprintf(`edge:
  location: TST1
  listen: {http: "127.0.0.1:0", https: "127.0.0.1:0"}
  certificates:
    files: [{cert: %q, key: %q}]
  logs: {dir: %q}
%s
distributions:
  - aliases: [www.example.test, api.example.test]
%s
`, e.cert, e.key, filepath.Join(e.dir, "logs"), edgeExtra, distribution)
}

// runningEdge is an edge started for a test, with its operational log.
type runningEdge struct {
	*Server
	e      *testEnv
	oplog  *syncbuf.Buffer
	logDir string
	once   sync.Once
}

func (e *testEnv) startEdge(cfgText string) *runningEdge {
	e.t.Helper()
	cfg, err := ParseConfig("test edge config", []byte(cfgText))
	if err != nil {
		e.t.Fatalf("config: %v\n%s", err, cfgText)
	}
	oplog := &syncbuf.Buffer{}
	srv, err := New(context.Background(), cfg, Options{Logger: zerolog.New(oplog)})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	re := &runningEdge{Server: srv, e: e, oplog: oplog, logDir: cfg.Edge.Logs.Dir}
	e.t.Cleanup(func() { re.stop() })
	return re
}

// stop shuts the edge down (once) so that its logs are complete.
func (re *runningEdge) stop() {
	re.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := re.Shutdown(ctx); err != nil {
			re.e.t.Errorf("shutdown: %v", err)
		}
	})
}

// records stops the edge and reads back every standard log line.
func (re *runningEdge) records() []accesslog.Record {
	re.e.t.Helper()
	re.stop()
	return readRecords(re.e.t, re.logDir)
}

func readRecords(t testing.TB, dir string) []accesslog.Record {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	var out []accesslog.Record
	for _, f := range files {
		rc, err := accesslog.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		r := accesslog.NewReader(rc, f)
		for {
			rec, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("log %s: %v", f, err)
			}
			out = append(out, *rec)
		}
		rc.Close()
	}
	return out
}

// client reaches the edge for any www/api.example.test URL, over HTTP or
// HTTPS, trusting only the test CA, like curl --resolve.
func (re *runningEdge) client(h2 bool) *http.Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			target := re.Addr("http")
			if strings.HasSuffix(addr, ":443") {
				target = re.Addr("https")
			}
			var d net.Dialer
			return d.DialContext(ctx, network, target)
		},
		TLSClientConfig:     &tls.Config{RootCAs: re.e.ca.Pool()},
		ForceAttemptHTTP2:   h2,
		MaxIdleConnsPerHost: 64,
	}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	re.e.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{
		Transport:     tr,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func get(t *testing.T, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

// byID finds a log record by request id.
func byID(t *testing.T, recs []accesslog.Record, id string) accesslog.Record {
	t.Helper()
	for _, r := range recs {
		if r.RequestID == id {
			return r
		}
	}
	t.Fatalf("no log line with request id %q among %d lines", id, len(recs))
	return accesslog.Record{}
}

func hello(name string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "hello from %s for %s %s", name, r.Host, r.URL.RequestURI())
	})
}

func quietLog() *log.Logger { return log.New(io.Discard, "", 0) }

// diagnose stops the edge and says what its logs hold about the requests
// that went wrong, for a test's failure message: how many standard log
// lines of each status and detailed result type, and the operational log's
// lines above debug level (bounded), which name the causes.
func (re *runningEdge) diagnose() string {
	re.e.t.Helper()
	var b strings.Builder
	tally := map[string]int{}
	for _, r := range re.records() {
		tally[fmt.Sprintf("%d %s/%s", r.Status, r.ResultType, r.DetailedResultType)]++
	}
	keys := make([]string, 0, len(tally))
	for k := range tally {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b.WriteString("standard log lines by status and result type:")
	for _, k := range keys {
		fmt.Fprintf(&b, "\n  %5d × %s", tally[k], k)
	}
	debug := map[string]int{} // debug lines, such as failed TLS handshakes, are many: counted
	var lines []string
	for _, line := range strings.Split(re.oplog.String(), "\n") {
		if line == "" {
			continue
		}
		if strings.Contains(line, `"level":"debug"`) {
			var l struct{ Message, Error string }
			_ = json.Unmarshal([]byte(line), &l)
			debug[l.Message+": "+l.Error]++
			continue
		}
		lines = append(lines, line)
	}
	for m, n := range debug {
		fmt.Fprintf(&b, "\n  %5d × debug %s", n, m)
	}
	b.WriteString("\noperational log (first lines above debug):")
	n := 0
	for _, line := range lines {
		if n++; n > 20 {
			b.WriteString("\n  ...")
			break
		}
		b.WriteString("\n  " + line)
	}
	return b.String()
}
