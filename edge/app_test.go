package edge

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/textproto"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgegate/edgegate/edge/accesslog"
	"github.com/edgegate/edgegate/internal/pki"
)

// shopApp is a small real application: a login that sets a session
// cookie, pages for the logged-in viewer, an API that reads Authorization
// and its own header, a public asset, a page in two languages, a list that
// POST changes, Early Hints, and an object whose origin can be made to fail.
type shopApp struct {
	mu    sync.Mutex
	items []string
	down  atomic.Value // "" or "503"
}

const appCSS = "body { font-family: sans-serif; color: #222; background: #fafafa; margin: 0 auto; width: 40em }\n"

func (a *shopApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	user := ""
	if c, err := r.Cookie("session"); err == nil {
		user = strings.TrimPrefix(c.Value, "user-")
	}
	switch r.URL.Path {
	case "/login":
		if r.Method != http.MethodPost {
			http.Error(w, "POST a user", http.StatusMethodNotAllowed)
			return
		}
		_ = r.ParseForm()
		http.SetCookie(w, &http.Cookie{Name: "session", Value: "user-" + r.PostForm.Get("user"), Path: "/"})
		fmt.Fprint(w, "welcome")
	case "/account":
		if user == "" {
			http.Error(w, "log in first", http.StatusUnauthorized)
			return
		}
		// A common mistake: a personal page with a shared-looking lifetime.
		w.Header().Set("Cache-Control", "max-age=60")
		fmt.Fprintf(w, "account of %s", user)
	case "/api/me":
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok {
			w.Header().Set("WWW-Authenticate", "Bearer")
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Cache-Control", "max-age=60")
		fmt.Fprintf(w, "token %s, tag %s, query %s", tok, r.Header.Get("X-Request-Tag"), r.URL.RawQuery)
	case "/static/app.css":
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Header().Set("Content-Type", "text/css")
		w.Header().Set("ETag", `"css1"`)
		fmt.Fprint(w, appCSS)
	case "/greeting":
		w.Header().Set("Cache-Control", "max-age=600")
		w.Header().Set("Vary", "Accept-Language")
		if strings.HasPrefix(r.Header.Get("Accept-Language"), "fr") {
			fmt.Fprint(w, "Bonjour")
		} else {
			fmt.Fprint(w, "Hello")
		}
	case "/items":
		a.mu.Lock()
		defer a.mu.Unlock()
		if r.Method == http.MethodPost {
			a.items = append(a.items, fmt.Sprint(len(a.items)+1))
			w.Header().Set("Location", "/items/"+a.items[len(a.items)-1])
			w.WriteHeader(http.StatusCreated)
			return
		}
		w.Header().Set("Cache-Control", "max-age=600")
		fmt.Fprintf(w, "items: %s", strings.Join(a.items, ","))
	case "/hints":
		w.Header().Set("Link", "</static/app.css>; rel=preload; as=style")
		w.WriteHeader(http.StatusEarlyHints)
		w.Header().Del("Link")
		w.Header().Set("Cache-Control", "max-age=600")
		fmt.Fprint(w, "hinted")
	case "/big":
		w.Header().Set("Cache-Control", "max-age=600")
		w.Header().Set("Content-Length", "1000000")
		if r.Method != http.MethodHead {
			_, _ = w.Write(make([]byte, 1000000))
		}
	case "/split":
		// The edge obeys its own field; browsers get a minute.
		w.Header().Set("Cache-Control", "max-age=60")
		w.Header().Set("Edgegate-CDN-Cache-Control", "max-age=86400")
		fmt.Fprint(w, "split")
	case "/news":
		if a.down.Load() == "503" {
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Cache-Control", "max-age=0")
		w.Header().Set("ETag", `"n1"`)
		fmt.Fprint(w, "today's news")
	default:
		if r.Method == "M-SEARCH" {
			fmt.Fprint(w, "searched")
			return
		}
		http.NotFound(w, r)
	}
}

// TestEdgeInFrontOfAnApplication is issue 12's acceptance test: the edge
// with its default origin request policy in front of a real application.
func TestEdgeInFrontOfAnApplication(t *testing.T) {
	e := newTestEnv(t)
	app := &shopApp{}
	app.down.Store("")
	leaf := e.issue(pki.LeafOptions{Names: []string{"app.example.test"}})
	l := listen(t, "127.0.0.2")
	origin := &http.Server{Handler: app, ReadHeaderTimeout: 5 * time.Second, ErrorLog: quietLog()}
	origin.TLSConfig = &tls.Config{Certificates: []tls.Certificate{leaf.TLS()}}
	go func() { _ = origin.ServeTLS(l, "", "") }()
	t.Cleanup(func() { origin.Close() })

	re := e.startEdge(e.edgeConfig("", fmt.Sprintf(`    origins: [{id: app, domain_name: app.example.test, connect_to: %q, trusted_ca: %q}]
    default_behavior:
      target: app
      allowed_methods: [GET, HEAD, OPTIONS, PUT, POST, PATCH, DELETE]
      cache_policy: {default_ttl: 1h, stale_if_error: 1h}`, l.Addr().String(), e.caFile)))
	c := re.client(false)
	send := func(method, path string, kv ...string) (*http.Response, string) {
		t.Helper()
		var body io.Reader
		if method == http.MethodPost {
			body = strings.NewReader("user=alice")
		}
		req, _ := http.NewRequest(method, "https://www.example.test"+path, body)
		if body != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		for i := 0; i+1 < len(kv); i += 2 {
			req.Header.Set(kv[i], kv[i+1])
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	xcache := func(r *http.Response) string { return strings.TrimSuffix(r.Header.Get("X-Cache"), " from edgegate") }

	// The login cookie, Authorization and the app's own header reach it.
	resp, _ := send("POST", "/login")
	cookie := resp.Header.Get("Set-Cookie")
	if resp.StatusCode != 200 || !strings.HasPrefix(cookie, "session=user-alice") {
		t.Fatalf("login: %d %q", resp.StatusCode, cookie)
	}
	if resp, body := send("GET", "/account", "Cookie", "session=user-alice"); body != "account of alice" {
		t.Fatalf("logged-in page: %d %q", resp.StatusCode, body)
	}
	if _, body := send("GET", "/api/me?page=2", "Authorization", "Bearer t-alice", "X-Request-Tag", "req-7"); body != "token t-alice, tag req-7, query page=2" {
		t.Fatalf("API: %q", body)
	}
	// A logged-in page is never served to another viewer, though its
	// origin said max-age=60: the cookie is forwarded but not in the key.
	for _, tc := range []struct{ kv []string }{{[]string{"Cookie", "session=user-bob"}}, {nil}} {
		resp, body := send("GET", "/account", tc.kv...)
		if strings.Contains(body, "alice") || xcache(resp) == "Hit" {
			t.Fatalf("%v got %s %q", tc.kv, xcache(resp), body)
		}
	}
	if _, body := send("GET", "/api/me?page=2", "Authorization", "Bearer t-bob"); strings.Contains(body, "alice") {
		t.Fatalf("another token got %q", body)
	}

	// A public asset is a Hit for everybody, logged in or not.
	send("GET", "/static/app.css", "Cookie", "session=user-alice")
	for _, kv := range [][]string{nil, {"Cookie", "session=user-bob"}, {"Authorization", "Bearer t-carol"}} {
		if resp, body := send("GET", "/static/app.css", kv...); xcache(resp) != "Hit" || body != appCSS {
			t.Errorf("asset for %v: %s", kv, xcache(resp))
		}
	}

	// Vary: Accept-Language stores two variants and serves each its own.
	send("GET", "/greeting", "Accept-Language", "en-GB")
	send("GET", "/greeting", "Accept-Language", "fr-FR")
	for lang, want := range map[string]string{"en-GB": "Hello", "fr-FR": "Bonjour"} {
		if resp, body := send("GET", "/greeting", "Accept-Language", lang); xcache(resp) != "Hit" || body != want {
			t.Errorf("%s: %s %q", lang, xcache(resp), body)
		}
	}

	// A POST invalidates the stored GET.
	send("GET", "/items")
	if resp, body := send("GET", "/items"); xcache(resp) != "Hit" || body != "items: " {
		t.Fatalf("items: %s %q", xcache(resp), body)
	}
	if resp, _ := send("POST", "/items"); resp.StatusCode != http.StatusCreated {
		t.Fatalf("POST /items: %d", resp.StatusCode)
	}
	if resp, body := send("GET", "/items"); xcache(resp) != "Miss" || body != "items: 1" {
		t.Fatalf("after POST: %s %q", xcache(resp), body)
	}

	// curl -I gives the stored Content-Length on a hit, and the origin's on
	// a HEAD miss, which reaches the origin as a HEAD.
	_, port, _ := net.SplitHostPort(re.Addr("https"))
	curlHead := func(path string) string {
		t.Helper()
		out, err := exec.Command("curl", "-sS", "-I", "--max-time", "10", "--cacert", e.caFile,
			"--resolve", "www.example.test:"+port+":127.0.0.1", "https://www.example.test:"+port+path).CombinedOutput()
		if err != nil {
			t.Fatalf("curl -I %s: %v\n%s", path, err, out)
		}
		return strings.ToLower(string(out))
	}
	if out := curlHead("/static/app.css"); !strings.Contains(out, "content-length: "+strconv.Itoa(len(appCSS))+"\r\n") || !strings.Contains(out, "x-cache: hit") {
		t.Errorf("curl -I on a stored object:\n%s", out)
	}
	if out := curlHead("/big"); !strings.Contains(out, "content-length: 1000000\r\n") {
		t.Errorf("curl -I on a HEAD miss:\n%s", out)
	}

	// 103 Early Hints reach the viewer and are not stored.
	var hints []string
	trace := &httptrace.ClientTrace{Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
		hints = append(hints, fmt.Sprint(code, " ", h.Get("Link")))
		return nil
	}}
	req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), "GET", "https://www.example.test/hints", nil)
	hresp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	hbody, _ := io.ReadAll(hresp.Body)
	hresp.Body.Close()
	if len(hints) != 1 || hints[0] != "103 </static/app.css>; rel=preload; as=style" || string(hbody) != "hinted" || hresp.Header.Get("Link") != "" {
		t.Errorf("early hints %q, final %d %q Link %q", hints, hresp.StatusCode, hbody, hresp.Header.Get("Link"))
	}
	if resp, body := send("GET", "/hints"); xcache(resp) != "Hit" || body != "hinted" {
		t.Errorf("after hints: %s %q", xcache(resp), body)
	}

	// A 404 without freshness of its own is cached for the error caching
	// minimum TTL (10s), not default_ttl.
	send("GET", "/nope")
	resp, _ = send("GET", "/nope")
	ttlText, isHit := strings.CutPrefix(resp.Header.Get("Cache-Status"), "edgegate; hit; ttl=")
	if ttl, err := strconv.Atoi(ttlText); resp.StatusCode != 404 || !isHit || err != nil || ttl <= 0 || ttl > 10 {
		t.Errorf("404: %d %q", resp.StatusCode, resp.Header.Get("Cache-Status"))
	}

	// An extension method passes when the behavior allows all methods.
	if resp, body := send("M-SEARCH", "/ssdp"); resp.StatusCode != 200 || body != "searched" {
		t.Errorf("M-SEARCH: %d %q", resp.StatusCode, body)
	}
	if resp, _ := send("TRACE", "/"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("TRACE: %d", resp.StatusCode)
	}

	// Edgegate-CDN-Cache-Control steers the edge, never the viewer.
	send("GET", "/split")
	if resp, _ := send("GET", "/split"); resp.Header.Get("Edgegate-CDN-Cache-Control") != "" || resp.Header.Get("Cache-Control") != "max-age=60" ||
		!strings.HasPrefix(resp.Header.Get("Cache-Status"), "edgegate; hit; ttl=8639") {
		t.Errorf("split: %v", resp.Header)
	}

	// stale_if_error: 1h: a 503, then a killed origin, serve the stale copy
	// with their own result types.
	if resp, _ := send("GET", "/news"); xcache(resp) != "Miss" {
		t.Fatalf("news: %s", xcache(resp))
	}
	app.down.Store("503")
	status503, body := send("GET", "/news")
	if status503.StatusCode != 200 || body != "today's news" || status503.Header.Get("Cache-Status") != "edgegate; hit; fwd=stale; detail=StaleHitOriginError" {
		t.Fatalf("origin 503: %d %q %q", status503.StatusCode, body, status503.Header.Get("Cache-Status"))
	}
	origin.Close()
	killed, body := send("GET", "/news")
	if killed.StatusCode != 200 || body != "today's news" || xcache(killed) != "Hit" ||
		killed.Header.Get("Cache-Status") != "edgegate; hit; fwd=stale; detail=StaleHitOriginConnectError" {
		t.Fatalf("origin killed: %d %q %s %q", killed.StatusCode, body, xcache(killed), killed.Header.Get("Cache-Status"))
	}
	recs := re.records()
	for resp, want := range map[*http.Response]accesslog.ResultType{status503: accesslog.ResultStaleHitOriginError, killed: accesslog.ResultStaleHitOriginConnectError} {
		rec := byID(t, recs, resp.Header.Get("X-Edge-Request-Id"))
		if rec.ResultType != accesslog.ResultHit || rec.DetailedResultType != want || rec.Status != 200 {
			t.Errorf("log: %s/%s %d, want Hit/%s 200", rec.ResultType, rec.DetailedResultType, rec.Status, want)
		}
	}
}

// What reaches the origin follows each behavior's origin request policy,
// cached or not.
func TestOriginRequestPolicies(t *testing.T) {
	e := newTestEnv(t)
	seen := make(chan *http.Request, 1)
	addr, _ := e.httpsOrigin("127.0.0.2", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r
		w.Header().Set("Edgegate-CDN-Cache-Control", "no-store")
		fmt.Fprint(w, "ok")
	}), "app.example.test")
	re := e.startEdge(e.edgeConfig("", fmt.Sprintf(`    origins: [{id: app, domain_name: app.example.test, connect_to: %q, trusted_ca: %q}]
    behaviors:
      - {path_pattern: "/plain/*", target: app, cache_policy: disabled}
      - path_pattern: "/custom/*"
        target: app
        cache_policy: disabled
        origin_request_policy: {headers: [X-Original-URL, Authorization], cookies: [lang], query_strings: {all_except: [utm]}}
      - {path_pattern: "/all/*", target: app, cache_policy: disabled, origin_request_policy: AllViewer}
      - {path_pattern: "/ua/*", target: app, origin_request_policy: UserAgentRefererHeaders}
    default_behavior: {target: app}`, addr, e.caFile)))
	c := re.client(false)
	ask := func(path string) *http.Request {
		t.Helper()
		req, _ := http.NewRequest("GET", "https://www.example.test"+path, nil)
		for k, v := range map[string]string{"Authorization": "Bearer x", "Cookie": "session=s; lang=fr", "X-Original-URL": "/admin",
			"X-Forwarded-Host": "evil.example", "User-Agent": "ua/1", "Referer": "https://ref.example/", "X-App": "a",
			"X-Forwarded-For": "203.0.113.7"} {
			req.Header.Set(k, v)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if v := resp.Header.Get("Edgegate-CDN-Cache-Control"); v != "" {
			t.Errorf("%s: the viewer saw Edgegate-CDN-Cache-Control: %s", path, v)
		}
		select {
		case r := <-seen:
			return r
		default:
			t.Fatalf("%s did not reach the origin", path)
			return nil
		}
	}
	type want struct{ header, value string }
	for _, tc := range []struct {
		path  string
		query string
		host  string
		wants []want
	}{
		{"/plain/p?utm=1&v=2", "utm=1&v=2", "app.example.test", []want{{"Authorization", "Bearer x"}, {"Cookie", "session=s; lang=fr"},
			{"X-App", "a"}, {"X-Original-Url", ""}, {"X-Forwarded-Host", "www.example.test"}}},
		{"/custom/p?utm=1&v=2", "v=2", "app.example.test", []want{{"Authorization", "Bearer x"}, {"Cookie", "lang=fr"},
			{"X-App", ""}, {"X-Original-Url", "/admin"}, {"User-Agent", ""}}},
		{"/all/p", "", "www.example.test", []want{{"X-App", "a"}, {"X-Original-Url", ""}}},
		{"/ua/p?v=1", "", "app.example.test", []want{{"User-Agent", "ua/1"}, {"Referer", "https://ref.example/"},
			{"Authorization", ""}, {"Cookie", ""}, {"X-App", ""}}},
	} {
		r := ask(tc.path)
		if r.URL.RawQuery != tc.query || r.Host != tc.host {
			t.Errorf("%s: query %q host %q, want %q %q", tc.path, r.URL.RawQuery, r.Host, tc.query, tc.host)
		}
		for _, w := range tc.wants {
			if got := r.Header.Get(w.header); got != w.value {
				t.Errorf("%s: %s = %q, want %q", tc.path, w.header, got, w.value)
			}
		}
		if xff := r.Header.Get("X-Forwarded-For"); xff != "203.0.113.7, 127.0.0.1" {
			t.Errorf("%s: X-Forwarded-For %q", tc.path, xff)
		}
	}
}

// An origin that stops answering in time is stood in for by the stale copy,
// logged as its own kind of stale hit.
func TestStaleOnOriginTimeout(t *testing.T) {
	e := newTestEnv(t)
	var slow atomic.Bool
	release := make(chan struct{})
	addr, _ := e.httpsOrigin("127.0.0.2", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if slow.Load() {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		w.Header().Set("Cache-Control", "max-age=0")
		w.Header().Set("ETag", `"v1"`)
		fmt.Fprint(w, "report")
	}), "app.example.test")
	t.Cleanup(func() { close(release) })
	re := e.startEdge(e.edgeConfig("", fmt.Sprintf(`    origins: [{id: app, domain_name: app.example.test, connect_to: %q, trusted_ca: %q, response_timeout: 300ms}]
    default_behavior: {target: app, cache_policy: {default_ttl: 1h, stale_if_error: 1h, stale_on_status: [503]}}`, addr, e.caFile)))
	c := re.client(false)
	if resp, body := get(t, c, "https://www.example.test/report"); resp.Header.Get("X-Cache") != "Miss from edgegate" || body != "report" {
		t.Fatalf("fill: %s %q", resp.Header.Get("X-Cache"), body)
	}
	slow.Store(true)
	resp, body := get(t, c, "https://www.example.test/report")
	if resp.StatusCode != 200 || body != "report" || resp.Header.Get("Cache-Status") != "edgegate; hit; fwd=stale; detail=StaleHitOriginCommError" {
		t.Fatalf("origin too slow: %d %q %q", resp.StatusCode, body, resp.Header.Get("Cache-Status"))
	}
	rec := byID(t, re.records(), resp.Header.Get("X-Edge-Request-Id"))
	if rec.ResultType != accesslog.ResultHit || rec.DetailedResultType != accesslog.ResultStaleHitOriginCommError {
		t.Errorf("log: %s/%s", rec.ResultType, rec.DetailedResultType)
	}
}
