package originconn

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgegate/edgegate/internal/pki"
	"github.com/edgegate/edgegate/internal/testdns"
)

// scenario is one origin, as set up for a row: how the edge would be
// configured for it, and the context of each request.
type scenario struct {
	o      Options
	url    string
	newCtx func(t *testing.T) context.Context
}

// Every row of DESIGN §4's origin table, against a real misbehaving origin,
// through the transport and through the probe.
func TestOriginFailures(t *testing.T) {
	ca := newCA(t, "edgegate test CA")
	otherCA := newCA(t, "Someone Else's CA")
	clientCA := newCA(t, "edge client CA")
	good := issue(t, ca, pki.LeafOptions{Names: []string{"origin.example.test"}})
	edgeClient := issue(t, clientCA, pki.LeafOptions{Names: []string{"edge-1"}, Client: true})
	strangerClient := issue(t, otherCA, pki.LeafOptions{Names: []string{"stranger"}, Client: true})
	expiredAt := time.Date(2020, 3, 4, 5, 6, 7, 0, time.UTC)

	base := func(addr string) Options {
		return Options{
			DomainName: "origin.example.test", ConnectTo: addr, RootCAs: ca.Pool(),
			ConnectionAttempts: 1, ConnectionTimeout: 2 * time.Second, ResponseTimeout: 2 * time.Second,
		}
	}
	https := func(o Options) scenario { return scenario{o: o, url: "https://" + o.DomainName + "/"} }
	mtls := func(t *testing.T, ip string) string {
		return serve(t, listen(t, ip), &tls.Config{
			Certificates: []tls.Certificate{good.TLS()},
			ClientAuth:   tls.RequireAndVerifyClientCert,
			ClientCAs:    clientCA.Pool(),
		}, hello("mutual"), 0).addr
	}

	rows := []struct {
		name  string
		setup func(t *testing.T) scenario
		stage string // where the failure shows: "roundtrip", "body", or "" for none
		kind  Kind
		err   []string // in the error text
		probe []string // in the probe's summary and fix
		// in the probe's details (the certificate is shown even when rejected)
		details []string
	}{
		{
			name: "good origin",
			setup: func(t *testing.T) scenario {
				return https(base(httpsOrigin(t, "127.0.0.20", good, hello("hi")).addr))
			},
			probe:   []string{"answered 200 OK"},
			details: []string{"TLS: TLSv1.3", `names origin.example.test`, `issuer "CN=edgegate test CA,O=edgegate"`, "GET / → 200 OK"},
		},
		{
			name: "good origin found through DNS on its own port",
			setup: func(t *testing.T) scenario {
				dns := testdns.Start(t, map[string]string{"origin.example.test": "127.0.0.21"})
				o := base("")
				o.Resolver = dns.Addr()
				addr := httpsOrigin(t, "127.0.0.21", good, hello("hi")).addr
				_, port, _ := net.SplitHostPort(addr)
				o.HTTPSPort, _ = strconv.Atoi(port)
				return https(o)
			},
			probe:   []string{"answered 200 OK through 127.0.0.21:"},
			details: []string{"resolved by DNS server 127.0.0.1:"},
		},
		{
			name: "plain HTTP origin",
			setup: func(t *testing.T) scenario {
				addr := serve(t, listen(t, "127.0.0.22"), nil, hello("plain"), 0).addr
				return scenario{o: base(addr), url: "http://origin.example.test/"}
			},
			probe: []string{"answered 200 OK"},
		},
		{
			name: "name does not resolve",
			setup: func(t *testing.T) scenario {
				dns := testdns.Start(t, nil)
				o := base("")
				o.DomainName = "nowhere.example.test"
				o.Resolver = dns.Addr()
				return https(o)
			},
			stage: "roundtrip", kind: KindDNS,
			err:   []string{"nowhere.example.test", "no such host"},
			probe: []string{"nowhere.example.test does not resolve", "DNS server 127.0.0.1:", "connect_to"},
		},
		{
			name: "connection refused",
			setup: func(t *testing.T) scenario {
				ln := listen(t, "127.0.0.2")
				addr := ln.Addr().String()
				ln.Close()
				return https(base(addr))
			},
			stage: "roundtrip", kind: KindConnect,
			err:   []string{"127.0.0.2:", "connection refused"},
			probe: []string{"nothing accepts connections at 127.0.0.2:", "connection refused", "https_port"},
		},
		{
			name: "certificate for another name",
			setup: func(t *testing.T) scenario {
				alb := issue(t, ca, pki.LeafOptions{Names: []string{"alb.example.test"}})
				o := base(httpsOrigin(t, "127.0.0.3", alb, hello("hi")).addr)
				o.DomainName = "lb-123.elb.example.test"
				return https(o)
			},
			stage: "roundtrip", kind: KindConnect,
			err: []string{"x509: certificate is valid for alb.example.test, not lb-123.elb.example.test"},
			probe: []string{"certificate is valid for alb.example.test, not lb-123.elb.example.test",
				"Set domain_name to a name the certificate carries (alb.example.test)", "includes lb-123.elb.example.test"},
			details: []string{"names alb.example.test"},
		},
		{
			name: "certificate from an unknown CA",
			setup: func(t *testing.T) scenario {
				foreign := issue(t, otherCA, pki.LeafOptions{Names: []string{"origin.example.test"}})
				return https(base(httpsOrigin(t, "127.0.0.4", foreign, hello("hi")).addr))
			},
			stage: "roundtrip", kind: KindConnect,
			err:     []string{"certificate signed by unknown authority"},
			probe:   []string{`issued by "CN=Someone Else's CA,O=edgegate", which the edge does not trust`, "trusted_ca"},
			details: []string{`issuer "CN=Someone Else's CA,O=edgegate"`},
		},
		{
			name: "self-signed certificate",
			setup: func(t *testing.T) scenario {
				self, err := pki.SelfSigned(pki.LeafOptions{Names: []string{"origin.example.test"}})
				if err != nil {
					t.Fatal(err)
				}
				return https(base(httpsOrigin(t, "127.0.0.4", self, hello("hi")).addr))
			},
			stage: "roundtrip", kind: KindConnect,
			err:   []string{"certificate signed by unknown authority"},
			probe: []string{"is self-signed", "trusted_ca"},
		},
		{
			name: "expired certificate",
			setup: func(t *testing.T) scenario {
				old := issue(t, ca, pki.LeafOptions{Names: []string{"origin.example.test"},
					NotBefore: expiredAt.Add(-90 * 24 * time.Hour), NotAfter: expiredAt})
				return https(base(httpsOrigin(t, "127.0.0.5", old, hello("hi")).addr))
			},
			stage: "roundtrip", kind: KindConnect,
			err:   []string{"certificate has expired or is not yet valid"},
			probe: []string{"expired on 2020-03-04T05:06:07Z", "valid from 2019-12-05T05:06:07Z", "Renew"},
		},
		{
			name: "no TLS version in common",
			setup: func(t *testing.T) scenario {
				addr := serve(t, listen(t, "127.0.0.6"), &tls.Config{
					Certificates: []tls.Certificate{good.TLS()}, MinVersion: tls.VersionTLS13,
				}, hello("hi"), 0).addr
				o := base(addr)
				o.MinVersion, o.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
				return https(o)
			},
			stage: "roundtrip", kind: KindConnect,
			err:   []string{"protocol version"},
			probe: []string{"the origin offers TLSv1.3, ssl_protocols allow TLSv1.2", "Add TLSv1.3 to the origin's ssl_protocols"},
		},
		{
			name: "not TLS at all",
			setup: func(t *testing.T) scenario {
				addr := serve(t, listen(t, "127.0.0.6"), nil, hello("plain"), 0).addr
				return https(base(addr))
			},
			stage: "roundtrip", kind: KindConnect,
			err:   []string{"does not look like a TLS handshake"},
			probe: []string{"does not speak TLS", "http-only"},
		},
		{
			name: "SYNs dropped",
			setup: func(t *testing.T) scenario {
				o := base(synDropAddr(t, "127.0.0.7"))
				o.ConnectionAttempts, o.ConnectionTimeout = 2, 150*time.Millisecond
				return https(o)
			},
			stage: "roundtrip", kind: KindTimeout,
			err:   []string{"127.0.0.7:", "(2 attempts)", "connection_timeout exceeded: no connection within 150ms"},
			probe: []string{"no answer from 127.0.0.7:", "within connection_timeout 150ms in any of 2 attempts", "firewall"},
		},
		{
			name: "origin silent past response_timeout",
			setup: func(t *testing.T) scenario {
				rel := release(t)
				addr := httpsOrigin(t, "127.0.0.8", good, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					select {
					case <-rel:
					case <-r.Context().Done():
					}
				})).addr
				o := base(addr)
				o.ResponseTimeout = 200 * time.Millisecond
				return https(o)
			},
			stage: "roundtrip", kind: KindTimeout,
			err:   []string{"response_timeout exceeded: the origin sent nothing for 200ms"},
			probe: []string{"sent nothing for 200ms (response_timeout)", "raise response_timeout"},
		},
		{
			name: "origin pauses mid-body past response_timeout",
			setup: func(t *testing.T) scenario {
				rel := release(t)
				addr := httpsOrigin(t, "127.0.0.9", good, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Length", "100")
					_, _ = io.WriteString(w, "first ten.")
					w.(http.Flusher).Flush()
					select {
					case <-rel:
					case <-r.Context().Done():
					}
				})).addr
				o := base(addr)
				o.ResponseTimeout = 200 * time.Millisecond
				return https(o)
			},
			stage: "body", kind: KindTimeout,
			err:   []string{"response_timeout exceeded"},
			probe: []string{"(response_timeout)"},
		},
		{
			name: "origin resets midway",
			setup: func(t *testing.T) scenario {
				return https(base(httpsOrigin(t, "127.0.0.10", good, breakMidway(t, true)).addr))
			},
			stage: "body", kind: KindRead,
			err:   []string{"connection reset by peer"},
			probe: []string{"broke the response midway: connection reset by peer", "logs"},
		},
		{
			name: "origin closes midway",
			setup: func(t *testing.T) scenario {
				return https(base(httpsOrigin(t, "127.0.0.10", good, breakMidway(t, false)).addr))
			},
			stage: "body", kind: KindRead,
			err:   []string{"unexpected EOF"},
			probe: []string{"broke the response midway: unexpected EOF"},
		},
		{
			name: "garbage instead of HTTP",
			setup: func(t *testing.T) scenario {
				ln := tls.NewListener(listen(t, "127.0.0.11"), &tls.Config{Certificates: []tls.Certificate{good.TLS()}})
				addr := rawOrigin(t, ln, func(c net.Conn) {
					_, _ = bufio.NewReader(c).ReadString('\n')
					_, _ = io.WriteString(c, "SSH-2.0-OpenSSH_9.6\r\n")
				})
				return https(base(addr))
			},
			stage: "roundtrip", kind: KindInvalidResponse,
			err:   []string{`malformed HTTP response "SSH-2.0-OpenSSH_9.6"`},
			probe: []string{"answer is not HTTP", "SSH-2.0", "protocol_policy"},
		},
		{
			name: "response headers too large",
			setup: func(t *testing.T) scenario {
				return https(base(httpsOrigin(t, "127.0.0.12", good, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("X-Huge", strings.Repeat("a", 100<<10))
				})).addr))
			},
			stage: "roundtrip", kind: KindHeaderTooBig,
			err:   []string{"server response headers exceeded 65536 bytes"},
			probe: []string{"headers exceed 65536 bytes"},
		},
		{
			name: "viewer cancels while the origin thinks",
			setup: func(t *testing.T) scenario {
				rel := release(t)
				started := make(chan struct{}, 4)
				addr := httpsOrigin(t, "127.0.0.13", good, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					started <- struct{}{}
					select {
					case <-rel:
					case <-r.Context().Done():
					}
				})).addr
				s := https(base(addr))
				s.newCtx = func(t *testing.T) context.Context {
					ctx, cancel := context.WithCancel(testCtx(t))
					go func() {
						select {
						case <-started:
						case <-ctx.Done():
						}
						cancel()
					}()
					return ctx
				}
				return s
			},
			stage: "roundtrip", kind: KindCanceled,
			err:   []string{"context canceled"},
			probe: []string{"canceled"},
		},
		{
			name: "mutual TLS without a client certificate",
			setup: func(t *testing.T) scenario {
				return https(base(mtls(t, "127.0.0.14")))
			},
			stage: "roundtrip", kind: KindConnect,
			err: []string{"certificate required"},
			probe: []string{"requires a client certificate", "none configured",
				`Set client_certificate`, `"CN=edge client CA,O=edgegate"`},
			details: []string{"client certificate: requested by the origin"},
		},
		{
			name: "mutual TLS with a certificate the origin does not trust",
			setup: func(t *testing.T) scenario {
				o := base(mtls(t, "127.0.0.14"))
				c := strangerClient.TLS()
				o.ClientCertificate = &c
				return https(o)
			},
			stage: "roundtrip", kind: KindConnect,
			err:   []string{"remote error: tls:"},
			probe: []string{`rejected the edge's client certificate "CN=stranger,O=edgegate" issued by "CN=Someone Else's CA,O=edgegate"`, "trust_store"},
		},
		{
			name: "mutual TLS with the right client certificate",
			setup: func(t *testing.T) scenario {
				o := base(mtls(t, "127.0.0.14"))
				c := edgeClient.TLS()
				o.ClientCertificate = &c
				return https(o)
			},
			probe:   []string{"answered 200 OK"},
			details: []string{`sent "CN=edge-1,O=edgegate"`},
		},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			s := row.setup(t)
			if s.newCtx == nil {
				s.newCtx = testCtx
			}
			tr, err := NewTransport(s.o)
			if err != nil {
				t.Fatal(err)
			}
			defer tr.CloseIdleConnections()

			resp, _, stage, err := get(s.newCtx(t), tr, s.url)
			if stage != row.stage {
				t.Fatalf("failed at %q, want %q: %v", stage, row.stage, err)
			}
			kind := KindNone
			switch stage {
			case "roundtrip":
				kind = Classify(err)
			case "body":
				kind = ClassifyBodyError(err)
			}
			if kind != row.kind {
				t.Errorf("kind %v, want %v (error: %v)", kind, row.kind, err)
			}
			if row.kind == KindNone && (resp == nil || resp.StatusCode != 200) {
				t.Errorf("response %v, want 200", resp)
			}
			for _, want := range row.err {
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}

			u, err := url.Parse(s.url)
			if err != nil {
				t.Fatal(err)
			}
			rep := Probe(s.newCtx(t), s.o, u)
			t.Logf("probe:\n%s", rep)
			if rep.OK != (row.kind == KindNone) || rep.Kind != row.kind {
				t.Errorf("probe OK %v kind %v, want OK %v kind %v", rep.OK, rep.Kind, row.kind == KindNone, row.kind)
			}
			if !rep.OK && (rep.Fix == "" && row.kind != KindCanceled || rep.Err == nil) {
				t.Errorf("failed probe without fix or error: %+v", rep)
			}
			text := rep.Summary + "\n" + rep.Fix
			for _, want := range row.probe {
				if !strings.Contains(text, want) {
					t.Errorf("probe summary/fix does not contain %q", want)
				}
			}
			details := strings.Join(rep.Details, "\n")
			for _, want := range row.details {
				if !strings.Contains(details, want) {
					t.Errorf("probe details do not contain %q", want)
				}
			}
			if str := rep.String(); !strings.Contains(str, rep.Summary) || (!rep.OK && !strings.Contains(str, row.kind.String())) {
				t.Errorf("report text lacks its summary or kind:\n%s", str)
			}
		})
	}
}

// breakMidway sends headers and part of the body, then cuts the
// connection: with a reset (linger 0) or a plain close.
func breakMidway(t *testing.T, reset bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100000")
		_, _ = io.WriteString(w, strings.Repeat("x", 1000))
		w.(http.Flusher).Flush()
		c, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Errorf("hijack: %v", err)
			return
		}
		if reset {
			if tcp, ok := c.(*tls.Conn).NetConn().(*net.TCPConn); ok {
				_ = tcp.SetLinger(0)
				_ = tcp.Close()
				return
			}
		}
		_ = c.(*tls.Conn).NetConn().Close()
	})
}

func TestConnectionAttempts(t *testing.T) {
	ca := newCA(t, "edgegate test CA")
	leaf := issue(t, ca, pki.LeafOptions{Names: []string{"origin.example.test"}})
	cfg := &tls.Config{Certificates: []tls.Certificate{leaf.TLS()}}
	for _, tc := range []struct {
		name     string
		drop     int64 // connections the origin closes at once
		attempts int
		ok       bool
		accepts  int64
	}{
		{"fails once, one attempt", 1, 1, false, 1},
		{"always fails, two attempts", 100, 2, false, 2},
		{"always fails, default attempts", 100, 0, false, 3},
		{"fails twice, three attempts", 2, 3, true, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			origin := serve(t, listen(t, "127.0.0.30"), cfg, hello("ok"), tc.drop)
			tr, err := NewTransport(Options{DomainName: "origin.example.test", ConnectTo: origin.addr, RootCAs: ca.Pool(),
				ConnectionAttempts: tc.attempts, ConnectionTimeout: 2 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer tr.CloseIdleConnections()
			_, body, _, err := get(testCtx(t), tr, "https://origin.example.test/")
			if tc.ok != (err == nil) {
				t.Fatalf("err %v, want success %v", err, tc.ok)
			}
			if tc.ok && string(body) != "ok" {
				t.Errorf("body %q", body)
			}
			var e *Error
			if !tc.ok {
				if Classify(err) != KindConnect || !errors.As(err, &e) || e.Attempts != int(tc.accepts) {
					t.Errorf("error %v (kind %v), want OriginConnectError after %d attempts", err, Classify(err), tc.accepts)
				}
			}
			if n := origin.accepts.Load(); n != tc.accepts {
				t.Errorf("origin accepted %d connections, want %d", n, tc.accepts)
			}
		})
	}
}

// A busy edge must reuse connections: Go's default of 2 idle connections
// per host would cost a handshake per request.
func TestPoolingReusesConnections(t *testing.T) {
	ca := newCA(t, "edgegate test CA")
	leaf := issue(t, ca, pki.LeafOptions{Names: []string{"origin.example.test"}})
	origin := httpsOrigin(t, "127.0.0.31", leaf, hello("pooled"))
	tr, err := NewTransport(Options{DomainName: "origin.example.test", ConnectTo: origin.addr, RootCAs: ca.Pool()})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.CloseIdleConnections()
	ctx := testCtx(t)
	for i := range 1000 {
		if _, body, _, err := get(ctx, tr, "https://origin.example.test/"); err != nil || string(body) != "pooled" {
			t.Fatalf("request %d: %q, %v", i, body, err)
		}
	}
	if h := origin.handshakes.Load(); h < 1 || h > 3 {
		t.Errorf("1000 requests cost %d TLS handshakes at the origin, want 1 to 3", h)
	}
	if tr.MaxIdleConnsPerHost != DefaultMaxIdleConns || tr.IdleConnTimeout != DefaultKeepaliveTimeout {
		t.Errorf("idle pool %d per host, %s; want %d, %s", tr.MaxIdleConnsPerHost, tr.IdleConnTimeout, DefaultMaxIdleConns, DefaultKeepaliveTimeout)
	}
}

// Under concurrency Go's default of 2 idle connections per host would close
// most connections after each burst and handshake again on the next.
func TestPoolingUnderConcurrency(t *testing.T) {
	ca := newCA(t, "edgegate test CA")
	leaf := issue(t, ca, pki.LeafOptions{Names: []string{"origin.example.test"}})
	origin := httpsOrigin(t, "127.0.0.34", leaf, hello("pooled"))
	tr, err := NewTransport(Options{DomainName: "origin.example.test", ConnectTo: origin.addr, RootCAs: ca.Pool()})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.CloseIdleConnections()
	ctx := testCtx(t)
	const workers, rounds = 8, 50
	for round := range rounds {
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, _, _, err := get(ctx, tr, "https://origin.example.test/"); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("round %d: %v", round, err)
		}
	}
	if h := origin.handshakes.Load(); h > 2*workers {
		t.Errorf("%d bursts of %d requests cost %d TLS handshakes, want at most %d", rounds, workers, h, 2*workers)
	}
}

// The response timeout must not close a pooled connection that is merely
// idle, whatever framing the last response had.
func TestIdleConnectionOutlivesResponseTimeout(t *testing.T) {
	ca := newCA(t, "edgegate test CA")
	leaf := issue(t, ca, pki.LeafOptions{Names: []string{"origin.example.test"}})
	origin := httpsOrigin(t, "127.0.0.32", leaf, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/length":
			w.Header().Set("Content-Length", "5")
			_, _ = io.WriteString(w, "12345")
		case "/chunked":
			w.Header().Set("Trailer", "X-Sum")
			_, _ = io.WriteString(w, "part one, ")
			w.(http.Flusher).Flush()
			_, _ = io.WriteString(w, "part two")
			w.Header().Set("X-Sum", "42")
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		case "/not-modified":
			w.WriteHeader(http.StatusNotModified)
		case "/upload":
			n, _ := io.Copy(io.Discard, r.Body)
			_, _ = io.WriteString(w, strconv.FormatInt(n, 10))
		}
	}))
	tr, err := NewTransport(Options{DomainName: "origin.example.test", ConnectTo: origin.addr, RootCAs: ca.Pool(),
		ResponseTimeout: 150 * time.Millisecond, KeepaliveTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.CloseIdleConnections()
	ctx := testCtx(t)
	for _, step := range []struct{ method, path string }{
		{"GET", "/length"}, {"GET", "/chunked"}, {"HEAD", "/length"}, {"GET", "/empty"}, {"GET", "/not-modified"}, {"POST", "/upload"}, {"GET", "/length"},
	} {
		var body io.Reader
		if step.method == "POST" {
			body = strings.NewReader(strings.Repeat("u", 100<<10))
		}
		req, _ := http.NewRequestWithContext(ctx, step.method, "https://origin.example.test"+step.path, body)
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatalf("%s %s: %v", step.method, step.path, err)
		}
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			t.Fatalf("%s %s body: %v", step.method, step.path, err)
		}
		resp.Body.Close()
		time.Sleep(400 * time.Millisecond) // idle for longer than the response timeout
	}
	if n := origin.accepts.Load(); n != 1 {
		t.Errorf("origin accepted %d connections, want 1: idle connections were closed by the response timeout", n)
	}
}

func TestKeepaliveTimeoutClosesIdleConnections(t *testing.T) {
	ca := newCA(t, "edgegate test CA")
	leaf := issue(t, ca, pki.LeafOptions{Names: []string{"origin.example.test"}})
	origin := httpsOrigin(t, "127.0.0.33", leaf, hello("hi"))
	tr, err := NewTransport(Options{DomainName: "origin.example.test", ConnectTo: origin.addr, RootCAs: ca.Pool(),
		KeepaliveTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.CloseIdleConnections()
	ctx := testCtx(t)
	for range 2 {
		if _, _, _, err := get(ctx, tr, "https://origin.example.test/"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(400 * time.Millisecond)
	}
	if n := origin.accepts.Load(); n != 2 {
		t.Errorf("origin accepted %d connections, want 2: the idle connection outlived keepalive_timeout", n)
	}
}

func TestOptionsRejected(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"too many attempts", Options{ConnectionAttempts: 4}, "connection_attempts 4"},
		{"negative timeout", Options{ResponseTimeout: -time.Second}, "response_timeout -1s"},
		{"bad connect_to", Options{ConnectTo: "10.0.0.1:http2"}, "connect_to"},
		{"resolver without port", Options{Resolver: "127.0.0.1"}, "resolver"},
		{"versions reversed", Options{MinVersion: tls.VersionTLS13, MaxVersion: tls.VersionTLS12}, "minimum TLSv1.3 is above maximum TLSv1.2"},
		{"bad port", Options{HTTPSPort: 70000}, "https_port 70000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.DomainName = "origin.example.test"
			_, err := NewTransport(tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "origin.example.test") {
				t.Errorf("err %v, want one naming the origin and %q", err, tc.want)
			}
		})
	}
}

func TestProbeRejectsBadURL(t *testing.T) {
	rep := Probe(testCtx(t), Options{}, &url.URL{Scheme: "ftp", Host: "x"})
	if rep.OK || !strings.Contains(rep.Summary, "not an http:// or https:// URL") {
		t.Errorf("report %+v", rep)
	}
}

func TestParseSSLProtocols(t *testing.T) {
	lo, hi, err := ParseSSLProtocols([]string{"TLSv1.3", "TLSv1.1"})
	if err != nil || lo != tls.VersionTLS11 || hi != tls.VersionTLS13 {
		t.Errorf("got %x %x %v", lo, hi, err)
	}
	if _, _, err := ParseSSLProtocols([]string{"SSLv3"}); err == nil || !strings.Contains(err.Error(), "SSLv3") {
		t.Errorf("SSLv3: %v", err)
	}
}

func TestKindNamesAndStatuses(t *testing.T) {
	for _, tc := range []struct {
		k      Kind
		name   string
		status int
	}{
		{KindNone, "", 0},
		{KindDNS, "OriginDnsError", 502},
		{KindConnect, "OriginConnectError", 502},
		{KindTimeout, "OriginCommError", 504},
		{KindRead, "OriginReadError", 502},
		{KindInvalidResponse, "OriginInvalidResponseError", 502},
		{KindHeaderTooBig, "OriginHeaderTooBigError", 502},
		{KindCanceled, "ClientHungUpRequest", 0},
	} {
		if tc.k.String() != tc.name || tc.k.Status() != tc.status {
			t.Errorf("kind %d: %q %d, want %q %d", int(tc.k), tc.k.String(), tc.k.Status(), tc.name, tc.status)
		}
	}
}
