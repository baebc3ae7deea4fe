package acme

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/edgegate/edgegate/internal/syncbuf"
	"github.com/edgegate/edgegate/internal/testdns"
	"github.com/edgegate/edgegate/internal/testpebble"
	"github.com/edgegate/edgegate/internal/testredis"
	"github.com/rs/zerolog"
)

// rig is an edge-shaped host on 127.0.0.1: an HTTP and an HTTPS listener
// served by a Manager, a DNS server, and Pebble validating on those ports.
type rig struct {
	t                 *testing.T
	dns               *testdns.Server
	pebble            *testpebble.Pebble
	httpLn, tlsLn     net.Listener
	httpPort, tlsPort int
	logs              *syncbuf.Buffer
	alpnHellos        atomic.Int32 // TLS-ALPN-01 validation handshakes seen
}

func newRig(t *testing.T, names map[string]string, validity time.Duration) *rig {
	t.Helper()
	return newRigValidatingOn(t, names, validity, 0)
}

// newRigValidatingOn is newRig with Pebble validating HTTP-01 on another
// port than the rig's (when caPort is not 0).
func newRigValidatingOn(t *testing.T, names map[string]string, validity time.Duration, caPort int) *rig {
	t.Helper()
	return newRigWith(t, names, testpebble.Config{Validity: validity}, caPort)
}

// newRigWith is newRig with Pebble configured by pc (its DNS and
// validation ports are the rig's).
func newRigWith(t *testing.T, names map[string]string, pc testpebble.Config, caPort int) *rig {
	t.Helper()
	r := &rig{t: t, logs: &syncbuf.Buffer{}}
	var err error
	if r.httpLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if r.tlsLn, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	r.httpPort = r.httpLn.Addr().(*net.TCPAddr).Port
	r.tlsPort = r.tlsLn.Addr().(*net.TCPAddr).Port
	r.dns = testdns.Start(t, names)
	if caPort == 0 {
		caPort = r.httpPort
	}
	if pc.DNS == "" {
		pc.DNS = r.dns.Addr()
	}
	pc.HTTPPort, pc.TLSPort = caPort, r.tlsPort
	r.pebble = testpebble.Start(t, pc)
	return r
}

func (r *rig) config(challenges ...string) Config {
	return Config{
		ACME: &IssuerConfig{Directory: r.pebble.Directory, Email: "ops@example.test", TrustedRoots: r.pebble.APIRoots,
			Challenges: challenges, HTTPPort: r.httpPort, TLSPort: r.tlsPort},
		Storage: "file://" + r.t.TempDir(),
	}
}

// serve starts the Manager and serves the rig's listeners with it, as the
// edge does: port 80 through HTTPChallengeHandler, 443 with its TLS config.
func (r *rig) serve(cfg Config, opts Options, names ...string) *Manager {
	r.t.Helper()
	opts.Names = names
	opts.Resolver = r.dns.Addr()
	opts.Logger = zerolog.New(io.MultiWriter(r.logs, zerolog.NewTestWriter(r.t))).With().Timestamp().Logger()
	m, err := NewManager(context.Background(), cfg, opts)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(m.Close)
	app := http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if strings.HasPrefix(req.URL.Path, challengePath) {
			http.NotFound(w, req)
			return
		}
		fmt.Fprintf(w, "hello from %s", req.Host)
	})
	hs := &http.Server{Handler: m.HTTPChallengeHandler(app), ReadHeaderTimeout: 5 * time.Second}
	tc := m.TLSConfig()
	tc.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if slices.Contains(hello.SupportedProtos, acmeTLS1) {
			r.alpnHellos.Add(1)
		}
		return m.GetCertificate(hello)
	}
	ts := &http.Server{Handler: app, TLSConfig: tc, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(r.httpLn) }()
	go func() { _ = ts.ServeTLS(r.tlsLn, "", "") }()
	r.t.Cleanup(func() { hs.Close(); ts.Close() })
	return m
}

// viewer is an HTTPS client that trusts only Pebble's issuing root and
// connects to the rig whatever the name.
func (r *rig) viewer() *http.Client {
	pem, err := os.ReadFile(r.pebble.IssuerRoots)
	if err != nil {
		r.t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		r.t.Fatal("no root in Pebble's /roots/0")
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, r.tlsLn.Addr().String())
		},
	}}
}

// waitFor polls cond for up to d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (r *rig) get(client *http.Client, url string) (string, *x509.Certificate, error) {
	resp, err := client.Get(url)
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return "", nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	return string(b), resp.TLS.PeerCertificates[0], nil
}

// A viewer trusting only Pebble's root reaches the name with a certificate
// issued over each challenge type; names outside the configuration get a
// TLS alert or the application's answer, never an order.
func TestIssueOverEachChallenge(t *testing.T) {
	for _, ch := range []string{ChallengeHTTP01, ChallengeTLSALPN01} {
		t.Run(ch, func(t *testing.T) {
			r := newRig(t, map[string]string{"www.example.test": "127.0.0.1", "other.example.test": "127.0.0.1"}, 0)
			m := r.serve(r.config(ch), Options{}, "www.example.test")
			if slices.Contains(m.NextProtos(), acmeTLS1) != (ch == ChallengeTLSALPN01) {
				t.Errorf("NextProtos %v with challenges [%s]", m.NextProtos(), ch)
			}
			waitFor(t, 60*time.Second, "the certificate", func() bool { return m.Covers("www.example.test") })
			if p := m.Pending(); len(p) != 0 {
				t.Errorf("Pending() = %v with the certificate in memory", p)
			}
			viewer := r.viewer()
			body, cert, err := r.get(viewer, "https://www.example.test/hello")
			if err != nil {
				t.Fatalf("viewer: %v", err)
			}
			if body != "hello from www.example.test" || cert.VerifyHostname("www.example.test") != nil {
				t.Fatalf("viewer got %q with a certificate for %v", body, cert.DNSNames)
			}
			httpValidated := strings.Contains(r.pebble.Output(), "Attempting to validate w/ HTTP")
			if httpValidated != (ch == ChallengeHTTP01) || (r.alpnHellos.Load() > 0) != (ch == ChallengeTLSALPN01) {
				t.Errorf("challenges [%s]: HTTP validation %v, %d acme-tls/1 handshakes", ch, httpValidated, r.alpnHellos.Load())
			}

			// Unconfigured names: a handshake fails, HTTP gets the app.
			// Bounded short: a handshake that starts an on-demand obtain
			// waits on it, and the obtain is logged before it orders.
			viewer.Timeout = 3 * time.Second
			if _, _, err := r.get(viewer, "https://other.example.test/"); err == nil {
				t.Error("handshake for other.example.test succeeded")
			}
			c, err := tls.DialWithDialer(&net.Dialer{Timeout: 3 * time.Second}, "tcp", r.tlsLn.Addr().String(), &tls.Config{ServerName: "other.example.test", NextProtos: []string{acmeTLS1}, InsecureSkipVerify: true})
			if err == nil {
				c.Close()
				t.Error("acme-tls/1 handshake for other.example.test succeeded")
			}
			resp, err := http.Get("http://" + r.httpLn.Addr().String() + "/.well-known/acme-challenge/" + precheckPrefix + "x")
			if err == nil {
				resp.Body.Close()
			}
			// Observed at certmagic's level, through its log: it obtained
			// the configured name and never began to obtain another (an
			// on-demand obtain logs before it orders, during the handshake,
			// so it is in the log by the time the handshake failed).
			if err := certmagicObtained(r.logs.String(), "www.example.test", "other.example.test"); err != nil {
				t.Fatal(err)
			}
			if n := r.pebble.Orders(); n != 1 {
				t.Fatalf("Pebble saw %d orders, want 1", n)
			}
		})
	}
}

// certmagicObtained checks certmagic's log: it began obtaining want, and
// began no obtain (on demand or in the background) for not.
func certmagicObtained(log, want, not string) error {
	sawWant := false
	for line := range strings.Lines(log) {
		if !strings.Contains(line, "obtaining") {
			continue
		}
		if strings.Contains(line, not) {
			return fmt.Errorf("certmagic began obtaining a certificate for the unconfigured name %s: %s", not, line)
		}
		sawWant = sawWant || strings.Contains(line, want)
	}
	if !sawWant {
		return fmt.Errorf("no certmagic log line obtaining %s: the log does not show certmagic's decisions\n%s", want, log)
	}
	return nil
}

// A name whose DNS points elsewhere costs no order, only a clear log line.
func TestNameElsewhereOrdersNothing(t *testing.T) {
	r := newRig(t, map[string]string{"www.example.test": "127.0.0.9"}, 0)
	// Something answers at 127.0.0.9 on the HTTP port, but it is not us.
	other, err := net.Listen("tcp", net.JoinHostPort("127.0.0.9", strconv.Itoa(r.httpPort)))
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = http.Serve(other, http.NotFoundHandler()) }()
	t.Cleanup(func() { other.Close() })
	m := r.serve(r.config(ChallengeHTTP01), Options{}, "www.example.test")
	want := "www.example.test resolves to 127.0.0.9, which is not this edge"
	waitFor(t, 30*time.Second, "the pre-check's log line", func() bool { return strings.Contains(r.logs.String(), want) })
	if p := m.Pending(); !slices.Equal(p, []string{"www.example.test"}) {
		t.Errorf("Pending() = %v, want the name without a certificate", p)
	}
	if n := r.pebble.Orders(); n != 0 {
		t.Fatalf("Pebble saw %d orders, want 0", n)
	}
}

// A name that failed validation consecutiveStop times in a row is no
// longer ordered, even with its hourly budget available again, so that the
// CA never pauses it for the account; the log says how to resume.
func TestConsecutiveFailuresStopOrders(t *testing.T) {
	r := newRig(t, map[string]string{"www.example.test": "127.0.0.1"}, 0)
	cfg := r.config(ChallengeHTTP01)
	store := &certmagic.FileStorage{Path: strings.TrimPrefix(cfg.Storage, "file://")}
	b, _ := json.Marshal(failureRecord{Failures: []time.Time{time.Now().Add(-2 * time.Hour)}, Consecutive: consecutiveStop})
	if err := store.Store(context.Background(), failureKey("www.example.test"), b); err != nil {
		t.Fatal(err)
	}
	r.serve(cfg, Options{}, "www.example.test")
	waitFor(t, 30*time.Second, "the stop log line", func() bool {
		return strings.Contains(r.logs.String(), "failed validations in a row: no more orders for it")
	})
	if n := r.pebble.Orders(); n != 0 {
		t.Fatalf("Pebble saw %d orders, want 0", n)
	}
}

// Failed validations are counted in storage; a name past its budget backs
// off with the next try time in the log, even after a restart.
func TestFailureBudgetInStorage(t *testing.T) {
	r := newRig(t, map[string]string{"www.example.test": "127.0.0.1"}, 0)
	cfg := r.config(ChallengeHTTP01)
	store := &certmagic.FileStorage{Path: strings.TrimPrefix(cfg.Storage, "file://")}
	now := time.Now()
	rec := failureRecord{}
	for i := range failureBudget {
		rec.Failures = append(rec.Failures, now.Add(-time.Duration(i+1)*time.Minute))
	}
	b, _ := json.Marshal(rec)
	if err := store.Store(context.Background(), failureKey("www.example.test"), b); err != nil {
		t.Fatal(err)
	}
	r.serve(cfg, Options{}, "www.example.test")
	waitFor(t, 30*time.Second, "the back-off log line", func() bool {
		return strings.Contains(r.logs.String(), "failed validations in the last hour; backing off until")
	})
	if n := r.pebble.Orders(); n != 0 {
		t.Fatalf("Pebble saw %d orders, want 0", n)
	}
}

// A validation the CA fails is counted in storage. Here the pre-check (on
// the edge's port) passes while Pebble validates on a port where a
// stranger answers.
func TestFailedValidationCounted(t *testing.T) {
	stranger, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = http.Serve(stranger, http.NotFoundHandler()) }()
	t.Cleanup(func() { stranger.Close() })
	r := newRigValidatingOn(t, map[string]string{"www.example.test": "127.0.0.1"}, 0, stranger.Addr().(*net.TCPAddr).Port)
	cfg := r.config(ChallengeHTTP01)
	r.serve(cfg, Options{}, "www.example.test")
	store := &certmagic.FileStorage{Path: strings.TrimPrefix(cfg.Storage, "file://")}
	waitFor(t, 30*time.Second, "a counted failure", func() bool {
		b, err := store.Load(context.Background(), failureKey("www.example.test"))
		var rec failureRecord
		return err == nil && json.Unmarshal(b, &rec) == nil && len(rec.Failures) == 1
	})
	if n := r.pebble.Orders(); n != 1 {
		t.Fatalf("Pebble saw %d orders, want 1", n)
	}
	if isValidationFailure(fmt.Errorf("wrapped: %w", errors.New("connection refused"))) {
		t.Fatal("an error that is not the CA's counted as a failed validation")
	}
}

// Short-lived certificates renew while the name is served, without a failed
// request.
func TestRenewalWhileServing(t *testing.T) {
	r := newRig(t, map[string]string{"www.example.test": "127.0.0.1"}, 30*time.Second)
	m := r.serve(r.config(ChallengeHTTP01), Options{renewCheck: time.Second}, "www.example.test")
	waitFor(t, 60*time.Second, "the certificate", func() bool { return m.Covers("www.example.test") })
	viewer := r.viewer()
	_, first, err := r.get(viewer, "https://www.example.test/")
	if err != nil {
		t.Fatal(err)
	}
	var served, failed atomic.Int32
	var renewed atomic.Bool
	var wg sync.WaitGroup
	stop := time.Now().Add(45 * time.Second)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// New connections each time, so that each request sees the
			// certificate served at that moment.
			client := r.viewer()
			client.Transport.(*http.Transport).DisableKeepAlives = true
			for time.Now().Before(stop) && !renewed.Load() {
				_, cert, err := r.get(client, "https://www.example.test/")
				if err != nil {
					failed.Add(1)
					t.Errorf("request during renewal: %v", err)
					return
				}
				served.Add(1)
				if cert.SerialNumber.Cmp(first.SerialNumber) != 0 {
					renewed.Store(true)
				}
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	if !renewed.Load() {
		t.Fatalf("certificate (expiring %s) not renewed within the wait; %d requests served", first.NotAfter.Format(time.RFC3339), served.Load())
	}
	if failed.Load() > 0 {
		t.Fatalf("%d requests failed during renewal", failed.Load())
	}
	if n := r.pebble.Orders(); n < 2 {
		t.Errorf("Pebble saw %d orders, want at least 2 (issue, renew)", n)
	}
}

// With Redis storage, a second Manager (a restart, or another node) loads
// the certificate the first one obtained and places no order.
func TestRedisStorageRestartOrdersNothing(t *testing.T) {
	redis := testredis.Start(t)
	r := newRig(t, map[string]string{"www.example.test": "127.0.0.1"}, 0)
	cfg := r.config(ChallengeHTTP01, ChallengeTLSALPN01)
	cfg.Storage = redis.URL()
	m := r.serve(cfg, Options{}, "www.example.test")
	waitFor(t, 60*time.Second, "the certificate", func() bool { return m.Covers("www.example.test") })
	first, err := m.GetCertificate(&tls.ClientHelloInfo{ServerName: "www.example.test"})
	if err != nil {
		t.Fatal(err)
	}
	m.Close()

	m2, err := NewManager(context.Background(), cfg, Options{Names: []string{"www.example.test"}, Resolver: r.dns.Addr(), Logger: zerolog.New(zerolog.NewTestWriter(t))})
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	waitFor(t, 30*time.Second, "the certificate from Redis", func() bool { return m2.Covers("www.example.test") })
	again, err := m2.GetCertificate(&tls.ClientHelloInfo{ServerName: "www.example.test"})
	if err != nil || !again.Leaf.Equal(first.Leaf) {
		t.Fatalf("after the restart: %v, same certificate %v", err, err == nil && again.Leaf.Equal(first.Leaf))
	}
	if n := r.pebble.Orders(); n != 1 {
		t.Fatalf("Pebble saw %d orders, want 1", n)
	}
}

// A wildcard alias cannot be validated over HTTP-01 or TLS-ALPN-01: it is
// not ordered, and the log says what to do instead.
func TestWildcardNotOrdered(t *testing.T) {
	var logs syncbuf.Buffer
	cfg := Config{ACME: &IssuerConfig{Directory: "https://127.0.0.1:1/dir"}, Storage: "file://" + t.TempDir()}
	m, err := NewManager(context.Background(), cfg, Options{Names: []string{"*.img.example.test"}, Logger: zerolog.New(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if len(m.acmeNames) != 0 || !strings.Contains(logs.String(), "certificates.files") {
		t.Fatalf("wildcard managed %v, log %s", m.acmeNames, logs.String())
	}
}

// An issuance clears the name's failure record, so failed validations in a
// row count again from zero.
func TestIssuanceResetsConsecutiveFailures(t *testing.T) {
	r := newRig(t, map[string]string{"reset.example.test": "127.0.0.1"}, 0)
	cfg := r.config(ChallengeHTTP01)
	store := &certmagic.FileStorage{Path: strings.TrimPrefix(cfg.Storage, "file://")}
	b, _ := json.Marshal(failureRecord{Failures: []time.Time{time.Now().Add(-2 * time.Hour)}, Consecutive: consecutiveStop - 1})
	if err := store.Store(context.Background(), failureKey("reset.example.test"), b); err != nil {
		t.Fatal(err)
	}
	m := r.serve(cfg, Options{}, "reset.example.test")
	waitFor(t, 60*time.Second, "the certificate", func() bool { return m.Covers("reset.example.test") })
	waitFor(t, 5*time.Second, "the failure record's removal", func() bool {
		return !store.Exists(context.Background(), failureKey("reset.example.test"))
	})
}
