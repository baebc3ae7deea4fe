package edge

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/edgegate/edgegate/edge/accesslog"
)

// An origin that sets headers a response headers policy overrides, keeps
// or removes, and counts the OPTIONS requests that reach it.
func headerOrigin(options *atomic.Int32) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodOptions {
			options.Add(1)
		}
		h := w.Header()
		h.Set("Content-Type", "text/plain")
		h.Set("Cache-Control", "max-age=60")
		h.Set("X-Powered-By", "PHP/5.2")
		h.Set("X-Frame-Options", "ALLOWALL")
		h.Set("Referrer-Policy", "no-referrer")
		fmt.Fprintf(w, "page %s", r.URL.Path)
	})
}

func TestResponseHeadersPolicies(t *testing.T) {
	e := newTestEnv(t)
	var options atomic.Int32
	originAddr, _ := e.httpsOrigin("127.0.0.2", headerOrigin(&options), "app.example.test")
	dead := listen(t, "127.0.0.3") // closed at once: connections are refused
	deadAddr := dead.Addr().String()
	dead.Close()
	re := e.startEdge(e.edgeConfig("", fmt.Sprintf(`    viewer_protocol_policy: allow-all
    origins:
      - {id: app, domain_name: app.example.test, connect_to: %q, trusted_ca: %q}
      - {id: dead, domain_name: app.example.test, connect_to: %q, trusted_ca: %q, connection_attempts: 1}
      - {id: fresh, domain_name: app.example.test, connect_to: %q, trusted_ca: %q}
    default_behavior: {target: app, response_headers_policy: SecurityHeadersPolicy}
    behaviors:
      - {path_pattern: "/broken/*", target: dead, response_headers_policy: SecurityHeadersPolicy}
      - {path_pattern: "/api/*", target: app, response_headers_policy: CORS-With-Preflight-and-SecurityHeadersPolicy}
      - path_pattern: "/custom/*"
        target: fresh
        response_headers_policy:
          cors: {allow_origins: [https://app.example.test], allow_methods: [GET, POST], allow_headers: [Content-Type],
                 expose_headers: [X-Request-Id], allow_credentials: true, max_age: 10m}
          security_headers:
            strict_transport_security: {max_age: 8760h, include_subdomains: true, preload: true}
            frame_options: {value: DENY, override: true}
            referrer_policy: {value: same-origin}
            content_security_policy: {value: "default-src 'self'", override: true}
          custom_headers: [{header: X-Team, value: edge}]
          remove_headers: [X-Powered-By]
          server_timing: {enabled: true}`, originAddr, e.caFile, deadAddr, e.caFile, originAddr, e.caFile)))
	c := re.client(false)
	var preflightID string

	security := map[string]string{
		"Strict-Transport-Security": "max-age=31536000",
		"X-Content-Type-Options":    "nosniff",
		"X-Frame-Options":           "ALLOWALL", // the origin's: the managed policy does not override
		"Referrer-Policy":           "no-referrer",
		"X-Xss-Protection":          "1; mode=block",
	}
	check := func(t *testing.T, resp *http.Response, want map[string]string) {
		t.Helper()
		for k, v := range want {
			if got := resp.Header.Get(k); got != v {
				t.Errorf("%s %s: %s = %q, want %q", resp.Request.Method, resp.Request.URL, k, got, v)
			}
		}
	}

	t.Run("miss and hit over HTTPS", func(t *testing.T) {
		for i, want := range []string{"Miss from edgegate", "Hit from edgegate"} {
			resp, body := get(t, c, "https://www.example.test/index.html")
			if resp.StatusCode != 200 || body != "page /index.html" || resp.Header.Get("X-Cache") != want {
				t.Fatalf("request %d: %d %q %s", i, resp.StatusCode, body, resp.Header.Get("X-Cache"))
			}
			check(t, resp, security)
		}
	})
	t.Run("no HSTS over HTTP", func(t *testing.T) {
		resp, _ := get(t, c, "http://www.example.test/index.html")
		if v := resp.Header.Get("Strict-Transport-Security"); v != "" {
			t.Errorf("HSTS over plain HTTP (RFC 6797 §7.2 forbids): %q", v)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("the other security headers are missing over HTTP: %v", resp.Header)
		}
	})
	t.Run("on the edge's own 502", func(t *testing.T) {
		resp, _ := get(t, c, "https://www.example.test/broken/x")
		if resp.StatusCode != http.StatusBadGateway {
			t.Fatalf("status %d, want 502", resp.StatusCode)
		}
		check(t, resp, map[string]string{"Strict-Transport-Security": "max-age=31536000", "X-Frame-Options": "SAMEORIGIN"})
	})
	t.Run("on an unmatched method's 403", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodDelete, "https://www.example.test/index.html", nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Strict-Transport-Security") == "" {
			t.Errorf("403: status %d, HSTS %q", resp.StatusCode, resp.Header.Get("Strict-Transport-Security"))
		}
	})
	t.Run("preflight answered at the edge", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodOptions, "https://www.example.test/api/items", nil)
		req.Header.Set("Origin", "https://shop.example.org")
		req.Header.Set("Access-Control-Request-Method", "PUT")
		req.Header.Set("Access-Control-Request-Headers", "content-type, x-csrf")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("preflight: status %d, want 204", resp.StatusCode)
		}
		check(t, resp, map[string]string{
			"Access-Control-Allow-Origin":  "*",
			"Access-Control-Allow-Methods": "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT",
			"Access-Control-Allow-Headers": "*",
			"Strict-Transport-Security":    "max-age=31536000",
		})
		if n := options.Load(); n != 0 {
			t.Errorf("the origin saw %d OPTIONS requests; the edge should have answered", n)
		}
		preflightID = resp.Header.Get("X-Edge-Request-Id")
	})
	t.Run("simple CORS request", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, "https://www.example.test/api/items", nil)
		req.Header.Set("Origin", "https://shop.example.org")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		check(t, resp, map[string]string{"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": "*"})
		// Without Origin, no CORS headers: the request is not cross-origin.
		resp, _ = get(t, c, "https://www.example.test/api/items")
		if v := resp.Header.Get("Access-Control-Allow-Origin"); v != "" {
			t.Errorf("CORS header on a same-origin request: %q", v)
		}
	})
	t.Run("custom policy", func(t *testing.T) {
		for i, cache := range []string{"cdn-cache-miss", "cdn-cache-hit"} {
			req, _ := http.NewRequest(http.MethodGet, "https://www.example.test/custom/a", nil)
			req.Header.Set("Origin", "https://app.example.test")
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			check(t, resp, map[string]string{
				"Strict-Transport-Security":        "max-age=31536000; includeSubDomains; preload",
				"X-Frame-Options":                  "DENY",        // override
				"Referrer-Policy":                  "no-referrer", // the origin's wins
				"Content-Security-Policy":          "default-src 'self'",
				"X-Team":                           "edge",
				"X-Powered-By":                     "",
				"Access-Control-Allow-Origin":      "https://app.example.test",
				"Access-Control-Allow-Credentials": "true",
				"Access-Control-Expose-Headers":    "X-Request-Id",
				"Vary":                             "Origin",
			})
			st := resp.Header.Get("Server-Timing")
			for _, part := range []string{cache, `cdn-pop;desc="TST1"`, "cdn-rid;desc=\"" + resp.Header.Get("X-Edge-Request-Id") + "\"", "cdn-cache-lookup;dur="} {
				if !strings.Contains(st, part) {
					t.Errorf("request %d: Server-Timing %q lacks %q", i, st, part)
				}
			}
			if i == 0 && (!strings.Contains(st, "cdn-upstream-fbl;dur=") || !strings.Contains(st, "cdn-upstream-connect;dur=")) {
				t.Errorf("the first miss's Server-Timing %q lacks the origin's connect and first byte", st)
			}
			if i == 1 && strings.Contains(st, "cdn-upstream") {
				t.Errorf("a hit's Server-Timing %q names the origin", st)
			}
		}
		// A preflight from an origin the policy does not name is refused.
		req, _ := http.NewRequest(http.MethodOptions, "https://www.example.test/custom/a", nil)
		req.Header.Set("Origin", "https://evil.example.org")
		req.Header.Set("Access-Control-Request-Method", "POST")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("foreign preflight: status %d, ACAO %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
		}
	})
	if preflightID != "" {
		rec := byID(t, re.records(), preflightID)
		if rec.Method != "OPTIONS" || rec.Status != 204 || rec.ResultType != accesslog.ResultHit {
			t.Errorf("preflight's log line: %s %d %s, want OPTIONS 204 Hit", rec.Method, rec.Status, rec.ResultType)
		}
	}
}

// A redirect to HTTPS carries the policy's headers, but never HSTS.
func TestResponseHeadersPolicyOnRedirect(t *testing.T) {
	e := newTestEnv(t)
	re := e.startEdge(e.edgeConfig("", `    origins: [{id: app, domain_name: app.example.test}]
    default_behavior: {target: app, response_headers_policy: CORS-and-SecurityHeadersPolicy}`))
	req, _ := http.NewRequest(http.MethodGet, "http://www.example.test/x", nil)
	req.Header.Set("Origin", "https://shop.example.org")
	resp, err := re.client(false).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMovedPermanently {
		t.Fatalf("status %d, want 301", resp.StatusCode)
	}
	if resp.Header.Get("Strict-Transport-Security") != "" {
		t.Errorf("HSTS on a plain-HTTP redirect")
	}
	if resp.Header.Get("X-Frame-Options") != "SAMEORIGIN" || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("policy headers missing on the redirect: %v", resp.Header)
	}
}
