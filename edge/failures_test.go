package edge

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/edgegate/edgegate/edge/accesslog"
	"github.com/edgegate/edgegate/internal/pki"
	"github.com/edgegate/edgegate/internal/testdns"
)

// rawTLSOrigin accepts TLS connections for app.example.test and hands each
// to handle, to play an origin that misbehaves below HTTP.
func (e *testEnv) rawTLSOrigin(ip string, handle func(net.Conn)) string {
	e.t.Helper()
	leaf := e.issue(pki.LeafOptions{Names: []string{"app.example.test"}})
	l := tls.NewListener(listen(e.t, ip), &tls.Config{Certificates: []tls.Certificate{leaf.TLS()}})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				// Read the request head first, as a real server would.
				br := bufio.NewReader(c)
				for {
					line, err := br.ReadString('\n')
					if err != nil || line == "\r\n" {
						break
					}
				}
				handle(c)
			}()
		}
	}()
	return l.Addr().String()
}

// Every row of DESIGN §4's table, each against a real misbehaving origin.
func TestOriginFailureClassification(t *testing.T) {
	e := newTestEnv(t)
	dns := testdns.Start(t, map[string]string{"app.example.test": "127.0.0.9"})

	good := e.issue(pki.LeafOptions{Names: []string{"app.example.test"}})
	otherCA, err := pki.NewAuthority("someone else's CA")
	if err != nil {
		t.Fatal(err)
	}
	foreign, err := otherCA.Issue(pki.LeafOptions{Names: []string{"app.example.test"}})
	if err != nil {
		t.Fatal(err)
	}
	expired := e.issue(pki.LeafOptions{Names: []string{"app.example.test"}, NotBefore: time.Now().Add(-72 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})

	closed := listen(t, "127.0.0.2")
	closedAddr := closed.Addr().String()
	closed.Close()
	wrongName, _ := e.httpsOrigin("127.0.0.3", hello("x"), "other.example.test")
	unknownCA, _ := e.tlsOrigin("127.0.0.3", hello("x"), &tls.Config{Certificates: []tls.Certificate{foreign.TLS()}})
	expiredAddr, _ := e.tlsOrigin("127.0.0.3", hello("x"), &tls.Config{Certificates: []tls.Certificate{expired.TLS()}})
	tls12Only, _ := e.tlsOrigin("127.0.0.3", hello("x"), &tls.Config{Certificates: []tls.Certificate{good.TLS()}, MaxVersion: tls.VersionTLS12})
	slow, _ := e.httpsOrigin("127.0.0.4", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(3 * time.Second):
		case <-r.Context().Done():
		}
	}), "app.example.test")
	hugeHeaders, _ := e.httpsOrigin("127.0.0.4", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Huge", strings.Repeat("a", 200<<10))
	}), "app.example.test")
	garbage := e.rawTLSOrigin("127.0.0.5", func(c net.Conn) {
		_, _ = io.WriteString(c, "SSH-2.0-OpenSSH_9.6 definitely not HTTP\r\n\r\n")
	})
	resetMidway := e.rawTLSOrigin("127.0.0.5", func(c net.Conn) {
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\n")
		_, _ = io.WriteString(c, strings.Repeat("x", 1000))
		// Then the origin dies: the body ends 99,000 bytes short.
	})

	resetBeforeBody := e.rawTLSOrigin("127.0.0.5", func(c net.Conn) {
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\n")
		// Then the origin dies before the first body byte.
	})

	tests := []struct {
		name     string
		origin   string // YAML flow mapping fields after id
		status   int
		detailed accesslog.ResultType
		behavior string // extra default_behavior fields
	}{
		{"name does not resolve", "domain_name: nowhere.example.test", 502, accesslog.ResultOriginDnsError, ""},
		{"connection refused", "domain_name: app.example.test, connect_to: " + closedAddr, 502, accesslog.ResultOriginConnectError, ""},
		{"certificate for another name", "domain_name: app.example.test, connect_to: " + wrongName, 502, accesslog.ResultOriginConnectError, ""},
		{"unknown CA", "domain_name: app.example.test, connect_to: " + unknownCA, 502, accesslog.ResultOriginConnectError, ""},
		{"expired certificate", "domain_name: app.example.test, connect_to: " + expiredAddr, 502, accesslog.ResultOriginConnectError, ""},
		{"no common TLS version", "domain_name: app.example.test, ssl_protocols: [TLSv1.3], connect_to: " + tls12Only, 502, accesslog.ResultOriginConnectError, ""},
		{"slower than response_timeout", "domain_name: app.example.test, response_timeout: 1s, connect_to: " + slow, 504, accesslog.ResultOriginCommError, ""},
		{"response is not HTTP", "domain_name: app.example.test, connect_to: " + garbage, 502, accesslog.ResultOriginInvalidResponseError, ""},
		{"headers too large", "domain_name: app.example.test, connect_to: " + hugeHeaders, 502, accesslog.ResultOriginHeaderTooBigError, ""},
		// Cached behaviors take the whole body before answering: nothing was sent yet.
		{"reset midway, cached", "domain_name: app.example.test, connect_to: " + resetMidway, 502, accesslog.ResultOriginReadError, ""},
		// Uncached ones stream: the viewer has the status and part of the body.
		{"reset midway, streamed", "domain_name: app.example.test, connect_to: " + resetMidway, 200, accesslog.ResultOriginReadError, "cache_policy: disabled"},
		// The header, held back for the first body bytes, still reaches the viewer.
		{"reset before the body, streamed", "domain_name: app.example.test, connect_to: " + resetBeforeBody, 200, accesslog.ResultOriginReadError, "cache_policy: disabled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			re := e.startEdge(e.edgeConfig("  resolver: "+dns.Addr(), fmt.Sprintf(`    origins: [{id: app, connection_attempts: 1, connection_timeout: 2s, trusted_ca: %q, %s}]
    default_behavior: {target: app, %s}`, e.caFile, tt.origin, tt.behavior)))
			resp, err := re.client(false).Get("https://www.example.test/thing")
			if err != nil {
				t.Fatal(err)
			}
			_, bodyErr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if tt.detailed == accesslog.ResultOriginReadError && tt.status == 200 && bodyErr == nil {
				t.Error("the viewer read a whole body from an origin that broke midway")
			}
			rec := byID(t, re.records(), resp.Header.Get("X-Edge-Request-Id"))
			if rec.ResultType != accesslog.ResultError || rec.DetailedResultType != tt.detailed || rec.Status != tt.status {
				t.Errorf("log line: %s/%s/%d, want Error/%s/%d", rec.ResultType, rec.DetailedResultType, rec.Status, tt.detailed, tt.status)
			}
			if !strings.Contains(re.oplog.String(), string(tt.detailed)) {
				t.Errorf("operational log does not carry %s:\n%s", tt.detailed, re.oplog.String())
			}
		})
	}
}

// A viewer that hangs up before the response is logged with status 000 as
// ClientHungUpRequest; one that hangs up during the body as
// ClientCommError with the status that was sent.
func TestViewerHangsUp(t *testing.T) {
	e := newTestEnv(t)
	slow, _ := e.httpsOrigin("127.0.0.2", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			chunk := strings.Repeat("y", 64<<10)
			for range 512 { // 32 MiB: more than any socket buffers between us
				if _, err := io.WriteString(w, chunk); err != nil {
					return
				}
			}
			return
		}
		select {
		case <-time.After(5 * time.Second):
		case <-r.Context().Done():
		}
	}), "app.example.test")
	re := e.startEdge(e.edgeConfig("", fmt.Sprintf(`    origins: [{id: app, domain_name: app.example.test, connect_to: %q, trusted_ca: %q}]
    default_behavior: {target: app}`, slow, e.caFile)))
	c := re.client(false)

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", "https://www.example.test/slow", nil)
	if _, err := c.Do(req); err == nil {
		t.Fatal("request finished despite the viewer's deadline")
	}

	resp, err := c.Get("https://www.example.test/big")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(resp.Body, make([]byte, 1024)); err != nil {
		t.Fatal(err)
	}
	c.Transport.(*http.Transport).CloseIdleConnections()
	resp.Body.Close() // hangs up mid-body

	// records() shuts the edge down, which waits for both handlers to end.
	recs := re.records()
	var hungUp, commErr bool
	for _, r := range recs {
		switch {
		case r.URIStem == "/slow" && r.Status == 0 && r.DetailedResultType == accesslog.ResultClientHungUpRequest:
			hungUp = true
		case r.URIStem == "/big" && r.Status == 200 && r.ResultType == accesslog.ResultError &&
			r.DetailedResultType == accesslog.ResultClientCommError && r.ResponseResultType == accesslog.ResultMiss:
			commErr = true
		}
	}
	if !hungUp || !commErr {
		t.Fatalf("want a 000 ClientHungUpRequest line for /slow and a 200 ClientCommError line for /big; got %+v", recs)
	}
}
