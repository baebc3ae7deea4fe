package edge

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgegate/edgegate/edge/accesslog"
	"github.com/edgegate/edgegate/internal/pki"
)

// The classic failure: an origin addressed by a name its certificate does
// not carry. The viewer gets 502, the log says OriginConnectError, and the
// operational log names both names. With the right name it works.
func TestClassicNameMismatch(t *testing.T) {
	e := newTestEnv(t)
	originAddr, _ := e.httpsOrigin("127.0.0.2", hello("alb"), "alb.example.test")
	dist := func(domain string) string {
		return fmt.Sprintf(`    origins:
      - {id: alb, domain_name: %s, connect_to: %q, trusted_ca: %q}
    default_behavior: {target: alb}`, domain, originAddr, e.caFile)
	}

	wrong := e.startEdge(e.edgeConfig("", dist("lb-123.elb.example.test")))
	resp, _ := get(t, wrong.client(false), "https://www.example.test/index.html")
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("wrong name: status %d, want 502", resp.StatusCode)
	}
	if got := resp.Header.Get("X-Cache"); got != "Error from edgegate" {
		t.Errorf("X-Cache = %q", got)
	}
	id := resp.Header.Get("X-Edge-Request-Id")
	rec := byID(t, wrong.records(), id)
	if rec.ResultType != accesslog.ResultError || rec.DetailedResultType != accesslog.ResultOriginConnectError || rec.Status != 502 {
		t.Errorf("log line: result %s, detailed %s, status %d; want Error, OriginConnectError, 502", rec.ResultType, rec.DetailedResultType, rec.Status)
	}
	op := wrong.oplog.String()
	for _, name := range []string{"alb.example.test", "lb-123.elb.example.test", id} {
		if !strings.Contains(op, name) {
			t.Errorf("operational log does not name %s:\n%s", name, op)
		}
	}

	right := e.startEdge(e.edgeConfig("", dist("alb.example.test")))
	resp, body := get(t, right.client(false), "https://www.example.test/index.html")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "hello from alb") {
		t.Fatalf("right name: status %d body %q", resp.StatusCode, body)
	}
	rec = byID(t, right.records(), resp.Header.Get("X-Edge-Request-Id"))
	if rec.ResultType != accesslog.ResultMiss || rec.DetailedResultType != accesslog.ResultMiss || rec.Status != 200 {
		t.Errorf("log line: %s/%s/%d, want Miss/Miss/200", rec.ResultType, rec.DetailedResultType, rec.Status)
	}
}

func TestViewerProtocolPolicy(t *testing.T) {
	e := newTestEnv(t)
	originAddr, _ := e.httpsOrigin("127.0.0.2", hello("app"), "app.example.test")
	tests := []struct {
		policy, method string
		status         int
		result         accesslog.ResultType
	}{
		{PolicyRedirectToHTTPS, "GET", 301, accesslog.ResultRedirect},
		{PolicyRedirectToHTTPS, "HEAD", 301, accesslog.ResultRedirect},
		{PolicyRedirectToHTTPS, "POST", 307, accesslog.ResultRedirect},
		{PolicyHTTPSOnly, "GET", 403, accesslog.ResultError},
		{PolicyAllowAll, "GET", 200, accesslog.ResultMiss},
	}
	for _, tt := range tests {
		t.Run(tt.policy+"/"+tt.method, func(t *testing.T) {
			re := e.startEdge(e.edgeConfig("", fmt.Sprintf(`    viewer_protocol_policy: %s
    origins:
      - {id: app, domain_name: app.example.test, connect_to: %q, trusted_ca: %q, protocol_policy: https-only}
    default_behavior: {target: app, allowed_methods: [GET, HEAD, OPTIONS, PUT, POST, PATCH, DELETE]}`, tt.policy, originAddr, e.caFile)))
			req, _ := http.NewRequest(tt.method, "http://www.example.test/a%20b/c?x=1&y=two", nil)
			resp, err := re.client(false).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if tt.status == 301 || tt.status == 307 {
				_, port, _ := net.SplitHostPort(re.Addr("https"))
				want := "https://www.example.test:" + port + "/a%20b/c?x=1&y=two"
				if got := resp.Header.Get("Location"); got != want {
					t.Errorf("Location = %q, want %q", got, want)
				}
			}
			rec := byID(t, re.records(), resp.Header.Get("X-Edge-Request-Id"))
			if rec.ResultType != tt.result || rec.Status != tt.status || rec.Protocol != "http" || rec.Query != "x=1&y=two" || rec.URIStem != "/a%20b/c" {
				t.Errorf("log line %+v", rec)
			}
		})
	}
}

// An HTTP/1.0 viewer cannot be trusted to repeat a POST on a 307: 403.
func TestRedirectHTTP10Post(t *testing.T) {
	e := newTestEnv(t)
	re := e.startEdge(e.edgeConfig("", `    origins: [{id: app, domain_name: app.example.test}]
    default_behavior: {target: app, allowed_methods: [GET, HEAD, OPTIONS, PUT, POST, PATCH, DELETE]}`))
	conn, err := net.Dial("tcp", re.Addr("http"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /form HTTP/1.0\r\nHost: www.example.test\r\nContent-Length: 0\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 403 {
		t.Fatalf("status %d, want 403", resp.StatusCode)
	}
}

func TestUnknownNamesRefused(t *testing.T) {
	e := newTestEnv(t)
	re := e.startEdge(e.edgeConfig("", `    origins: [{id: app, domain_name: app.example.test}]
    default_behavior: {target: app}`))

	// Unknown SNI: the handshake fails with an alert.
	_, err := tls.Dial("tcp", re.Addr("https"), &tls.Config{ServerName: "other.example.test", RootCAs: e.ca.Pool()})
	if err == nil || !strings.Contains(err.Error(), "unrecognized name") {
		t.Fatalf("handshake for an unknown name: %v, want the unrecognized_name alert", err)
	}
	// Known SNI but a Host of no distribution: 421.
	c := re.client(false)
	req, _ := http.NewRequest("GET", "https://www.example.test/", nil)
	req.Host = "evil.example.test"
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMisdirectedRequest {
		t.Fatalf("unknown Host over HTTPS: %d, want 421", resp.StatusCode)
	}
	// Unknown Host over HTTP: 403.
	req, _ = http.NewRequest("GET", "http://www.example.test/", nil)
	req.Host = "evil.example.test"
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("unknown Host over HTTP: %d, want 403", resp.StatusCode)
	}
	recs := re.records()
	if len(recs) != 2 {
		t.Fatalf("%d log lines, want 2 (refusals are logged)", len(recs))
	}
	for _, r := range recs {
		if r.DetailedResultType != accesslog.ResultInvalidRequest || r.HostHeader != "evil.example.test" {
			t.Errorf("refusal logged as %s for host %s", r.DetailedResultType, r.HostHeader)
		}
	}
}

func TestBehaviorsAndMethods(t *testing.T) {
	e := newTestEnv(t)
	web, _ := e.httpsOrigin("127.0.0.2", hello("web"), "web.example.test")
	api, _ := e.httpsOrigin("127.0.0.3", hello("api"), "api-origin.example.test")
	re := e.startEdge(e.edgeConfig("", fmt.Sprintf(`    origins:
      - {id: web, domain_name: web.example.test, connect_to: %q, trusted_ca: %q}
      - {id: api, domain_name: api-origin.example.test, connect_to: %q, trusted_ca: %q}
    default_behavior: {target: web}
    behaviors:
      - {path_pattern: "/api/*", target: api, allowed_methods: [GET, HEAD, OPTIONS, PUT, POST, PATCH, DELETE], cache_policy: disabled}`,
		web, e.caFile, api, e.caFile)))
	c := re.client(true)
	_, body := get(t, c, "https://www.example.test/index.html")
	if !strings.HasPrefix(body, "hello from web for web.example.test") {
		t.Errorf("default behavior answered %q (the origin must see its own domain name as Host)", body)
	}
	_, body = get(t, c, "https://www.example.test/api/users")
	if !strings.HasPrefix(body, "hello from api") {
		t.Errorf("/api/* answered %q", body)
	}
	req, _ := http.NewRequest("DELETE", "https://www.example.test/index.html", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("DELETE on a GET/HEAD behavior: %d, want 403", resp.StatusCode)
	}
	if resp.ProtoMajor != 2 {
		t.Errorf("viewer protocol %s, want HTTP/2", resp.Proto)
	}
	req, _ = http.NewRequest("DELETE", "https://www.example.test/api/users/1", nil)
	resp, err = c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("DELETE on /api/*: %d, want 200", resp.StatusCode)
	}
	var sawMethod bool
	for _, r := range re.records() {
		if r.DetailedResultType == accesslog.ResultInvalidRequestMethod && r.Method == "DELETE" && r.Status == 403 {
			sawMethod = true
		}
		if r.ProtocolVersion != "HTTP/2.0" || r.SSLProtocol != "TLSv1.3" || r.SSLCipher == "" {
			t.Errorf("log line protocol fields: %s %s %s", r.ProtocolVersion, r.SSLProtocol, r.SSLCipher)
		}
	}
	if !sawMethod {
		t.Error("no InvalidRequestMethod line")
	}
}

func TestMinimumProtocolVersion(t *testing.T) {
	e := newTestEnv(t)
	re := e.startEdge(e.edgeConfig("", `    minimum_protocol_version: TLSv1.3_2025
    origins: [{id: app, domain_name: app.example.test}]
    default_behavior: {target: app}`))
	_, err := tls.Dial("tcp", re.Addr("https"), &tls.Config{ServerName: "www.example.test", RootCAs: e.ca.Pool(), MaxVersion: tls.VersionTLS12})
	if err == nil {
		t.Fatal("a TLS 1.2 viewer was accepted under TLSv1.3_2025")
	}
	c, err := tls.Dial("tcp", re.Addr("https"), &tls.Config{ServerName: "www.example.test", RootCAs: e.ca.Pool()})
	if err != nil {
		t.Fatalf("TLS 1.3 viewer: %v", err)
	}
	c.Close()
}

// Headers: hop-by-hop stripped both ways, forwarding headers set, the
// edge's own headers on the response and the same id in the log.
func TestProxyHeaders(t *testing.T) {
	e := newTestEnv(t)
	seen := make(chan http.Header, 1)
	origin, _ := e.httpsOrigin("127.0.0.2", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Clone()
		h.Set("X-Seen-Host", r.Host)
		seen <- h
		w.Header().Set("Connection", "X-Secret")
		w.Header().Set("X-Secret", "internal")
		w.Header().Set("Keep-Alive", "timeout=5")
		fmt.Fprint(w, "ok")
	}), "app.example.test")
	re := e.startEdge(e.edgeConfig("", fmt.Sprintf(`    origins:
      - {id: app, domain_name: app.example.test, connect_to: %q, trusted_ca: %q, custom_headers: {X-Origin-Verify: s3cret}}
    default_behavior: {target: app}`, origin, e.caFile)))
	req, _ := http.NewRequest("GET", "https://www.example.test/h", nil)
	req.Header.Set("Connection", "X-Drop-Me")
	req.Header.Set("X-Drop-Me", "1")
	req.Header.Set("X-Forwarded-For", "203.0.113.7")
	req.Header.Set("X-Forwarded-Host", "evil.example")
	req.Header.Set("Proxy-Authorization", "Basic Zm9vOmJhcg==")
	resp, err := re.client(false).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h := <-seen
	checks := []struct{ name, got, want string }{
		{"origin Host", h.Get("X-Seen-Host"), "app.example.test"},
		{"X-Forwarded-For", h.Get("X-Forwarded-For"), "203.0.113.7, 127.0.0.1"},
		{"X-Forwarded-Proto", h.Get("X-Forwarded-Proto"), "https"},
		{"X-Forwarded-Host (set by the edge, not the viewer)", h.Get("X-Forwarded-Host"), "www.example.test"},
		{"X-Drop-Me", h.Get("X-Drop-Me"), ""},
		{"Proxy-Authorization", h.Get("Proxy-Authorization"), ""},
		{"Via to origin", h.Get("Via"), "1.1 TST1 (edgegate)"},
		{"custom header", h.Get("X-Origin-Verify"), "s3cret"},
		{"request id to origin", h.Get("X-Edge-Request-Id"), resp.Header.Get("X-Edge-Request-Id")},
		{"X-Secret to viewer", resp.Header.Get("X-Secret"), ""},
		{"Keep-Alive to viewer", resp.Header.Get("Keep-Alive"), ""},
		{"X-Cache", resp.Header.Get("X-Cache"), "Miss from edgegate"},
		{"Via", resp.Header.Get("Via"), "1.1 TST1 (edgegate)"},
		{"X-Edge-Location", resp.Header.Get("X-Edge-Location"), "TST1"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	rec := byID(t, re.records(), resp.Header.Get("X-Edge-Request-Id"))
	if rec.ForwardedFor != "203.0.113.7" || rec.HostHeader != "www.example.test" || rec.Host != "www.example.test" || rec.Location != "TST1" {
		t.Errorf("log line %+v", rec)
	}
	if rec.BytesSent < 100 || rec.BytesReceived < 50 || rec.ContentLength != 2 || rec.ClientIP != "127.0.0.1" || rec.ClientPort == 0 {
		t.Errorf("log sizes/addresses: sent %d received %d len %d client %s:%d", rec.BytesSent, rec.BytesReceived, rec.ContentLength, rec.ClientIP, rec.ClientPort)
	}
}

func TestOriginGroupFailover(t *testing.T) {
	e := newTestEnv(t)
	primary, _ := e.httpsOrigin("127.0.0.2", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
	}), "primary.example.test")
	secondary, _ := e.httpsOrigin("127.0.0.3", hello("secondary"), "secondary.example.test")
	closed := listen(t, "127.0.0.4")
	closedAddr := closed.Addr().String()
	closed.Close()
	for _, tt := range []struct{ name, primary string }{{"failover status", primary}, {"connection refused", closedAddr}} {
		t.Run(tt.name, func(t *testing.T) {
			re := e.startEdge(e.edgeConfig("", fmt.Sprintf(`    origins:
      - {id: p, domain_name: primary.example.test, connect_to: %q, trusted_ca: %q, connection_attempts: 1}
      - {id: s, domain_name: secondary.example.test, connect_to: %q, trusted_ca: %q}
    origin_groups: [{id: ha, members: [p, s], failover_criteria: [503]}]
    default_behavior: {target: ha}`, tt.primary, e.caFile, secondary, e.caFile)))
			resp, body := get(t, re.client(false), "https://www.example.test/x")
			if resp.StatusCode != 200 || !strings.HasPrefix(body, "hello from secondary for secondary.example.test") {
				t.Fatalf("status %d body %q", resp.StatusCode, body)
			}
		})
	}
}

// Pooled keep-alive: 1,000 sequential requests cost a handful of TLS
// handshakes at the origin, not one each.
func TestOriginKeepAlive(t *testing.T) {
	e := newTestEnv(t)
	origin, handshakes := e.httpsOrigin("127.0.0.2", hello("app"), "app.example.test")
	re := e.startEdge(e.edgeConfig("", fmt.Sprintf(`    origins: [{id: app, domain_name: app.example.test, connect_to: %q, trusted_ca: %q, keepalive_timeout: 30s}]
    default_behavior: {target: app}`, origin, e.caFile)))
	c := re.client(false)
	for i := range 1000 {
		resp, _ := get(t, c, fmt.Sprintf("https://www.example.test/item/%d", i))
		if resp.StatusCode != 200 {
			t.Fatalf("request %d: %d", i, resp.StatusCode)
		}
	}
	if n := handshakes.get(); n > 5 {
		t.Fatalf("1,000 sequential requests cost %d TLS handshakes at the origin, want at most 5", n)
	}
}

// 10,000 concurrent requests give 10,000 log lines whose ids match the
// responses, over HTTP/1.1 and HTTP/2.
func TestEveryRequestLogged(t *testing.T) {
	e := newTestEnv(t)
	origin, _ := e.httpsOrigin("127.0.0.2", hello("app"), "app.example.test")
	re := e.startEdge(e.edgeConfig("", fmt.Sprintf(`    origins: [{id: app, domain_name: app.example.test, connect_to: %q, trusted_ca: %q}]
    default_behavior: {target: app}`, origin, e.caFile)))
	const n = 10000
	clients := []*http.Client{re.client(false), re.client(true)}
	ids := make([]string, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 200)
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			url := fmt.Sprintf("https://www.example.test/r/%d", i)
			if i%5 == 0 {
				url = fmt.Sprintf("http://www.example.test/r/%d", i) // redirects are logged too
			}
			resp, err := clients[i%2].Get(url)
			if err != nil {
				errs <- err
				return
			}
			resp.Body.Close()
			ids[i] = resp.Header.Get("X-Edge-Request-Id")
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("request failed: %v", err)
	}
	recs := re.records()
	if len(recs) != n {
		t.Fatalf("%d log lines for %d requests", len(recs), n)
	}
	logged := make(map[string]bool, n)
	for _, r := range recs {
		logged[r.RequestID] = true
	}
	for i, id := range ids {
		if id == "" || !logged[id] {
			t.Fatalf("response %d has request id %q with no log line", i, id)
		}
	}
}

// Shutdown drains in-flight requests: a slow request that started before
// the shutdown completes, and its line is written.
func TestShutdownDrains(t *testing.T) {
	e := newTestEnv(t)
	started := make(chan struct{})
	origin, _ := e.httpsOrigin("127.0.0.2", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		time.Sleep(500 * time.Millisecond)
		fmt.Fprint(w, "finished")
	}), "app.example.test")
	re := e.startEdge(e.edgeConfig("", fmt.Sprintf(`    origins: [{id: app, domain_name: app.example.test, connect_to: %q, trusted_ca: %q}]
    default_behavior: {target: app}`, origin, e.caFile)))
	c := re.client(false)
	done := make(chan string, 1)
	go func() {
		resp, body := get(t, c, "https://www.example.test/slow")
		done <- fmt.Sprint(resp.StatusCode, " ", body)
	}()
	<-started
	recs := re.records() // shuts down while the request is in flight
	if got := <-done; got != "200 finished" {
		t.Fatalf("in-flight request got %q", got)
	}
	if len(recs) != 1 || recs[0].Status != 200 {
		t.Fatalf("log after drain: %+v", recs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var d net.Dialer
	if conn, err := d.DialContext(ctx, "tcp", re.Addr("https")); err == nil {
		conn.Close()
		t.Fatal("edge still accepts connections after shutdown")
	}
}

// Mutual TLS to the origin: an origin that requires a client certificate
// from the edge's CA refuses an edge without one and serves one with it.
func TestOriginMutualTLS(t *testing.T) {
	e := newTestEnv(t)
	serverCert := e.issue(pkiLeaf("app.example.test", false))
	addr, _ := e.tlsOrigin("127.0.0.2", hello("mtls"), &tls.Config{
		Certificates: []tls.Certificate{serverCert.TLS()},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    e.ca.Pool(),
	})
	clientCert := e.issue(pkiLeaf("edge.example.test", true))
	certFile, keyFile, err := clientCert.WriteFiles(e.dir, "edge-client")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, extra string
		status      int
	}{
		{"without a client certificate", "", 502},
		{"with the edge's client certificate", fmt.Sprintf(", client_certificate: {cert: %q, key: %q}", certFile, keyFile), 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			re := e.startEdge(e.edgeConfig("", fmt.Sprintf(`    origins: [{id: app, domain_name: app.example.test, connect_to: %q, trusted_ca: %q, connection_attempts: 1%s}]
    default_behavior: {target: app, cache_policy: disabled}`, addr, e.caFile, tt.extra)))
			resp, _ := get(t, re.client(false), "https://www.example.test/")
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
		})
	}
}

func pkiLeaf(name string, client bool) pki.LeafOptions {
	return pki.LeafOptions{Names: []string{name}, Client: client}
}
