package adminhttp

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestGuard(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") })
	const token = "s3cret"
	for _, tc := range []struct {
		name                  string
		guard                 Guard
		method, path, tok, ct string
		header                map[string]string
		want                  int
	}{
		{"read on a public listener needs the token", Guard{Token: token}, "GET", "/metrics", "", "", nil, 401},
		{"read on a public listener with the token", Guard{Token: token}, "GET", "/metrics", token, "", nil, 200},
		{"read on loopback", Guard{Token: token, Loopback: true}, "GET", "/metrics", "", "", nil, 200},
		{"open path", Guard{Token: token, Open: []string{"/healthz"}}, "GET", "/healthz", "", "", nil, 200},
		{"private path on loopback", Guard{Token: token, Loopback: true, Private: []string{"/debug/"}}, "GET", "/debug/pprof/", "", "", nil, 401},
		{"no token configured: no writes", Guard{Loopback: true}, "POST", "/reload", "", "application/json", nil, 403},
		{"write without a token", Guard{Token: token, Loopback: true}, "POST", "/reload", "", "application/json", nil, 401},
		{"write as a form", Guard{Token: token, Loopback: true}, "POST", "/reload", token, "application/x-www-form-urlencoded", nil, 415},
		{"write", Guard{Token: token, Loopback: true}, "POST", "/reload", token, "application/json; charset=utf-8", nil, 200},
		{"same-origin browser write", Guard{Token: token}, "POST", "/reload", token, "application/json", map[string]string{"Sec-Fetch-Site": "same-origin"}, 200},
		{"cross-site browser write", Guard{Token: token}, "POST", "/reload", token, "application/json", map[string]string{"Sec-Fetch-Site": "cross-site"}, 403},
		{"null Origin", Guard{Token: token}, "POST", "/reload", token, "application/json", map[string]string{"Origin": "null"}, 403},
		{"rebound name", Guard{Token: token}, "GET", "/metrics", token, "", map[string]string{"Host": "rebind.attacker.example:9901"}, 421},
		{"localhost", Guard{Token: token}, "GET", "/metrics", token, "", map[string]string{"Host": "localhost:9901"}, 200},
		{"IPv6 literal", Guard{Token: token}, "GET", "/metrics", token, "", map[string]string{"Host": "[::1]:9901"}, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.guard.Wrap(ok))
			defer srv.Close()
			var body io.Reader
			if tc.method == "POST" {
				body = strings.NewReader("{}")
			}
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, body)
			if tc.tok != "" {
				req.Header.Set("Authorization", "Bearer "+tc.tok)
			}
			if tc.ct != "" {
				req.Header.Set("Content-Type", tc.ct)
			}
			for k, v := range tc.header {
				if k == "Host" {
					req.Host = v
				} else {
					req.Header.Set(k, v)
				}
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("%d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
}

func TestIsLoopbackListen(t *testing.T) {
	for addr, want := range map[string]bool{"127.0.0.1:9901": true, "127.3.4.5:1": true, "[::1]:9901": true, "localhost:9901": true,
		":9901": false, "0.0.0.0:9901": false, "10.0.0.5:9901": false, "garbage": false} {
		if got := IsLoopbackListen(addr); got != want {
			t.Errorf("IsLoopbackListen(%q) = %v", addr, got)
		}
	}
}
