package originconn

import (
	"context"
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgegate/edgegate/internal/pki"
)

// testOrigin is a real origin on a loopback address, counting what the
// edge costs it.
type testOrigin struct {
	addr       string
	accepts    atomic.Int64 // TCP connections accepted
	handshakes atomic.Int64 // TLS handshakes started
}

// countingListener counts accepts and closes the first drop connections at
// once, as a flaky origin does.
type countingListener struct {
	net.Listener
	o    *testOrigin
	drop int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.o.accepts.Add(1) <= l.drop {
			c.Close()
			continue
		}
		return c, nil
	}
}

func listen(t *testing.T, ip string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// serve runs h on ln (TLS when cfg is not nil) until the test ends.
func serve(t *testing.T, ln net.Listener, cfg *tls.Config, h http.Handler, drop int64) *testOrigin {
	t.Helper()
	o := &testOrigin{addr: ln.Addr().String()}
	var l net.Listener = &countingListener{Listener: ln, o: o, drop: drop}
	if cfg != nil {
		cfg = cfg.Clone()
		cfg.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
			o.handshakes.Add(1)
			return nil, nil
		}
		l = tls.NewListener(l, cfg)
	}
	srv := &http.Server{Handler: h, ErrorLog: log.New(io.Discard, "", 0), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { srv.Close() })
	return o
}

func httpsOrigin(t *testing.T, ip string, leaf *pki.Leaf, h http.Handler) *testOrigin {
	t.Helper()
	return serve(t, listen(t, ip), &tls.Config{Certificates: []tls.Certificate{leaf.TLS()}}, h, 0)
}

// rawOrigin hands every accepted connection to handle, for origins that
// misbehave below HTTP.
func rawOrigin(t *testing.T, ln net.Listener, handle func(net.Conn)) string {
	t.Helper()
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// release returns a channel closed when the test ends, so handlers that
// hang return before the server is closed.
func release(t *testing.T) <-chan struct{} {
	ch := make(chan struct{})
	t.Cleanup(func() { close(ch) })
	return ch
}

func newCA(t *testing.T, name string) *pki.Authority {
	t.Helper()
	ca, err := pki.NewAuthority(name)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func issue(t *testing.T, ca *pki.Authority, o pki.LeafOptions) *pki.Leaf {
	t.Helper()
	l, err := ca.Issue(o)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func hello(body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, body)
	})
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// get sends GET url through tr and reads the whole body; stage says where
// it failed ("roundtrip" or "body").
func get(ctx context.Context, tr http.RoundTripper, url string) (resp *http.Response, body []byte, stage string, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, nil, "request", err
	}
	resp, err = tr.RoundTrip(req)
	if err != nil {
		return nil, nil, "roundtrip", err
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(resp.Body)
	if err != nil {
		return resp, body, "body", err
	}
	return resp, body, "", nil
}
