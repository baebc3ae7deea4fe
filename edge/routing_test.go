package edge

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// rawRequest sends text as is over a new connection to the edge (TLS with
// SNI www.example.test when tlsOn) and reads one response; the connection
// is returned for tests that look at what follows.
func (re *runningEdge) rawRequest(t *testing.T, tlsOn bool, text string) (*http.Response, string, net.Conn) {
	t.Helper()
	var conn net.Conn
	var err error
	if tlsOn {
		conn, err = tls.Dial("tcp", re.Addr("https"), &tls.Config{ServerName: "www.example.test", RootCAs: re.e.ca.Pool(), NextProtos: []string{"http/1.1"}})
	} else {
		conn, err = net.Dial("tcp", re.Addr("http"))
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, text); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%q: %v", text, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body), conn
}

// Traversal forms route on the normalised path: /dc/../api/secret and
// /dc/%2e%2e/api/secret reach the uncached /api/* behavior as /api/secret,
// never the cached /dc/* one; a cached path reached through dot segments
// shares its cache entry; an encoded slash is no segment boundary.
func TestRoutingOnNormalisedPath(t *testing.T) {
	e := newTestEnv(t)
	var mu sync.Mutex
	var seen []string
	origin, _ := e.httpsOrigin("127.0.0.2", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.URL.EscapedPath())
		mu.Unlock()
		w.Header().Set("Cache-Control", "max-age=3600")
		fmt.Fprintf(w, "origin saw %s", r.URL.EscapedPath())
	}), "app.example.test")
	re := e.startEdge(e.edgeConfig("", fmt.Sprintf(`    origins: [{id: app, domain_name: app.example.test, connect_to: %q, trusted_ca: %q}]
    default_behavior: {target: app, cache_policy: disabled}
    behaviors:
      - {path_pattern: "/dc/*", target: app, cache_policy: {default_ttl: 24h}}
      - {path_pattern: "/api/*", target: app, cache_policy: disabled}`, origin, e.caFile)))
	get := func(path string) (string, string) {
		t.Helper()
		resp, body, _ := re.rawRequest(t, true, "GET "+path+" HTTP/1.1\r\nHost: www.example.test\r\nConnection: close\r\n\r\n")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
		}
		return resp.Header.Get("X-Cache"), body
	}
	for _, tc := range []struct {
		path, xcache, body string
	}{
		// Uncached /api/*: a miss every time, and the origin sees the
		// resolved path.
		{"/dc/../api/secret", "Miss from edgegate", "origin saw /api/secret"},
		{"/dc/%2e%2e/api/secret", "Miss from edgegate", "origin saw /api/secret"},
		{"/dc/%2E%2E/api/secret", "Miss from edgegate", "origin saw /api/secret"},
		{"//dc/..//api/./secret", "Miss from edgegate", "origin saw /api/secret"},
		// Cached /dc/*: reached through dot segments, one entry.
		{"/api/../dc/page", "Miss from edgegate", "origin saw /dc/page"},
		{"/dc/./page", "Hit from edgegate", "origin saw /dc/page"},
		{"/dc/%70age", "Hit from edgegate", "origin saw /dc/page"},
		// An encoded slash matches neither pattern: the default behavior,
		// forwarded as received.
		{"/dc%2F..%2Fapi%2Fsecret", "Miss from edgegate", "origin saw /dc%2F..%2Fapi%2Fsecret"},
	} {
		xc, body := get(tc.path)
		if xc != tc.xcache || body != tc.body {
			t.Errorf("GET %s: X-Cache %q, %q; want %q, %q", tc.path, xc, body, tc.xcache, tc.body)
		}
	}
	// The log keeps the path as received.
	recs := re.records()
	found := false
	for _, r := range recs {
		if r.URIStem == "/dc/%2e%2e/api/secret" {
			found = true
		}
	}
	if !found {
		t.Errorf("no log line with the received path /dc/%%2e%%2e/api/secret")
	}
}

// The port-80 redirect carries only the alias and the normalised path: an
// opaque request target cannot steer Location to another host.
func TestRedirectLocation(t *testing.T) {
	e := newTestEnv(t)
	re := e.startEdge(e.edgeConfig("", fmt.Sprintf(`    origins: [{id: app, domain_name: app.example.test, connect_to: "127.0.0.1:1", trusted_ca: %q}]
    default_behavior: {target: app}`, e.caFile)))
	_, httpsPort, _ := net.SplitHostPort(re.Addr("https"))
	for _, tc := range []struct {
		target   string
		status   int
		location string
	}{
		{"/a/../b?x=1", 301, "https://www.example.test:" + httpsPort + "/b?x=1"},
		{"http:@evil.test/x", 400, ""},
		{"http://www.example.test/%2e%2e/x", 301, "https://www.example.test:" + httpsPort + "/x"},
		{"//evil.test/x", 301, "https://www.example.test:" + httpsPort + "/evil.test/x"},
	} {
		resp, body, _ := re.rawRequest(t, false, "GET "+tc.target+" HTTP/1.1\r\nHost: www.example.test\r\nConnection: close\r\n\r\n")
		if resp.StatusCode != tc.status || resp.Header.Get("Location") != tc.location {
			t.Errorf("GET %s: %d Location %q (%s), want %d %q", tc.target, resp.StatusCode, resp.Header.Get("Location"),
				strings.TrimSpace(body), tc.status, tc.location)
		}
	}
}
