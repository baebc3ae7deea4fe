package edge

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// /readyz holds back traffic until every alias served over HTTPS has a
// certificate: at once with certificate files, never while the ACME CA
// cannot be reached.
func TestReadyz(t *testing.T) {
	e := newTestEnv(t)
	addr, _ := e.httpsOrigin("127.0.0.2", hello("app"), "app.example.test")
	distribution := fmt.Sprintf(`    origins: [{id: app, domain_name: app.example.test, connect_to: %q, trusted_ca: %q}]
    default_behavior: {target: app}`, addr, e.caFile)
	admin := "\n  admin: {listen: \"127.0.0.1:0\"}"
	acme := admin + "\n  resolver: \"127.0.0.1:1\""
	files := e.edgeConfig(admin, distribution)
	unreachableCA := strings.Replace(e.edgeConfig(acme, distribution),
		fmt.Sprintf("    files: [{cert: %q, key: %q}]", e.cert, e.key),
		fmt.Sprintf("    acme: {directory: \"https://127.0.0.1:1/dir\"}\n    storage: %q", "file://"+filepath.Join(e.dir, "storage")), 1)
	if unreachableCA == e.edgeConfig(acme, distribution) {
		t.Fatal("the ACME config was not substituted")
	}
	for _, tt := range []struct {
		name, config string
		status       int
		body         string
	}{
		{"certificate files", files, http.StatusOK, "ready\n"},
		{"ACME CA unreachable", unreachableCA, http.StatusServiceUnavailable, "waiting for certificates: api.example.test, www.example.test\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			re := e.startEdge(tt.config)
			resp, err := http.Get("http://" + re.Addr("admin") + "/readyz")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status || string(body) != tt.body {
				t.Errorf("/readyz: %d %q, want %d %q", resp.StatusCode, body, tt.status, tt.body)
			}
		})
	}
}

const testAdminToken = "test-admin-token-0123456789"

// adminCall makes one admin request with a bearer token ("" for none) and
// a JSON body ("" for none), returning the response with its body read.
func adminCall(t *testing.T, addr, method, path, token, body string, header ...string) *http.Response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://"+addr+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "Host" {
			req.Host = header[i+1]
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(strings.NewReader(string(b)))
	return resp
}

// The admin listener refuses what a stranger, a web page or a rebound DNS
// name could send, and serves the operator who has the token.
func TestAdminLockedDown(t *testing.T) {
	e := newTestEnv(t)
	addr, _ := e.httpsOrigin("127.0.0.2", hello("app"), "app.example.test")
	distribution := fmt.Sprintf(`    origins: [{id: app, domain_name: app.example.test, connect_to: %q, trusted_ca: %q,
               custom_headers: {X-Origin-Verify: origin-shared-secret}}]
    default_behavior: {target: app}`, addr, e.caFile)
	re := e.startEdge(e.edgeConfig(fmt.Sprintf("  admin: {listen: \"127.0.0.1:0\", token: %q}", testAdminToken), distribution))
	admin := re.Addr("admin")
	inv := `{"paths": ["/*"]}`
	for _, tc := range []struct {
		name, method, path, token, body string
		header                          []string
		status                          int
	}{
		{"untokened POST", "POST", "/invalidations", "", inv, nil, http.StatusUnauthorized},
		{"wrong token", "POST", "/invalidations", "guess", inv, nil, http.StatusUnauthorized},
		{"rebinding Host", "POST", "/invalidations", testAdminToken, inv, []string{"Host", "attacker.example:80"}, http.StatusMisdirectedRequest},
		{"rebinding Host, read", "GET", "/metrics", "", "", []string{"Host", "attacker.example"}, http.StatusMisdirectedRequest},
		{"text/plain cross-site POST", "POST", "/invalidations", testAdminToken, "", []string{"Content-Type", "text/plain", "Origin", "https://attacker.example", "Sec-Fetch-Site", "cross-site"}, http.StatusForbidden},
		{"text/plain POST", "POST", "/invalidations", testAdminToken, "", []string{"Content-Type", "text/plain"}, http.StatusUnsupportedMediaType},
		{"foreign Origin", "POST", "/invalidations", testAdminToken, inv, []string{"Origin", "https://attacker.example"}, http.StatusForbidden},
		{"cross-site fetch", "POST", "/invalidations", testAdminToken, inv, []string{"Sec-Fetch-Site", "cross-site"}, http.StatusForbidden},
		{"operator POST", "POST", "/invalidations", testAdminToken, inv, nil, http.StatusCreated},
		{"operator POST, localhost Host", "POST", "/invalidations", testAdminToken, inv, []string{"Host", "localhost"}, http.StatusCreated},
		{"health check, no token", "GET", "/healthz", "", "", nil, http.StatusOK},
		{"metrics on loopback, no token", "GET", "/metrics", "", "", nil, http.StatusOK},
		{"pprof needs the token", "GET", "/debug/pprof/", "", "", nil, http.StatusUnauthorized},
		{"pprof", "GET", "/debug/pprof/goroutine?debug=1", testAdminToken, "", nil, http.StatusOK},
		{"config needs the token", "GET", "/debug/config", "", "", nil, http.StatusUnauthorized},
		{"untokened reload", "POST", "/reload", "", "{}", nil, http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := adminCall(t, admin, tc.method, tc.path, tc.token, tc.body, tc.header...)
			if resp.StatusCode != tc.status {
				b, _ := io.ReadAll(resp.Body)
				t.Errorf("%s %s: %d %s, want %d", tc.method, tc.path, resp.StatusCode, b, tc.status)
			}
		})
	}

	// /metrics has the runtime's figures; /debug/config the effective
	// config without its secrets.
	body, _ := io.ReadAll(adminCall(t, admin, "GET", "/metrics", "", "").Body)
	for _, m := range []string{"go_goroutines ", "go_memory_heap_objects_bytes ", "go_gc_cycles_total "} {
		if !strings.Contains(string(body), m) {
			t.Errorf("/metrics lacks %s", m)
		}
	}
	body, _ = io.ReadAll(adminCall(t, admin, "GET", "/debug/config", testAdminToken, "").Body)
	if strings.Contains(string(body), testAdminToken) || strings.Contains(string(body), "origin-shared-secret") ||
		!strings.Contains(string(body), "X-Origin-Verify: REDACTED") || !strings.Contains(string(body), "location: TST1") {
		t.Errorf("/debug/config:\n%s", body)
	}
}
