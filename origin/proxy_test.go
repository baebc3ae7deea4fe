package origin

import (
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgegate/edgegate/origin/accesslog"
)

// TestHTTPForward runs the example's HTTP listener forwarding instead of
// redirecting, and checks what targets see and how failures are answered.
func TestHTTPForward(t *testing.T) {
	e := startEdgeEnv(t,
		"default_action: {redirect: {protocol: HTTPS, port: 443, status: 301}}", "default_action: {forward: app}",
		"timeouts: {shutdown: 30s}", "timeouts: {shutdown: 30s, response: 300ms}")
	c := httpClient(e.http, nil, true)
	port := strings.TrimPrefix(e.http, "127.0.0.1:")

	resp, r, err := get(c, "http://shop.example.test/cart",
		"X-Client-Cert-Subject", "CN=admin", "X_Client_Cert_Serial_Number", "01",
		"Connection", "X-Hop", "X-Hop", "secret", "X-Forwarded-Proto", "https")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("forward: %v", err)
	}
	for k, v := range r.Headers {
		if n := strings.ToLower(strings.ReplaceAll(k, "_", "-")); strings.HasPrefix(n, "x-client-cert-") {
			t.Errorf("client's %s: %q reached the target", k, v)
		}
	}
	want := map[string]string{"X-Forwarded-Proto": "http", "X-Forwarded-Port": port, "X-Forwarded-For": "127.0.0.1", "X-Hop": ""}
	for k, v := range want {
		if got := r.Headers.Get(k); got != v {
			t.Errorf("target saw %s = %q, want %q", k, got, v)
		}
	}
	if r.Host != "shop.example.test" {
		t.Errorf("target saw Host %q", r.Host)
	}

	// A target silent past timeouts.response: 504.
	resp, _, err = get(c, "http://shop.example.test/?sleep=2s")
	if err != nil || resp.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("slow target: %v %v; want 504", resp, err)
	}

	// A client that leaves first: logged as 460.
	impatient := httpClient(e.http, nil, false)
	impatient.Timeout = 100 * time.Millisecond
	if _, _, err := get(impatient, "http://shop.example.test/?sleep=1s"); err == nil {
		t.Fatal("impatient client got an answer")
	}

	// No target reachable at all (both down, so the group fails open and
	// tries each): 502.
	e.a.stop()
	e.b.stop()
	resp, _, err = get(c, "http://shop.example.test/")
	if err != nil || resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("targets down: %v %v; want 502", resp, err)
	}

	byReason := map[string]accesslog.Record{}
	for _, rec := range readLog(t, filepath.Join(e.dir, "logs"), 4) {
		byReason[rec.ErrorReason] = rec
	}
	checks := []struct {
		reason        string
		elb, target   int
		targetReached bool
	}{
		{"", 200, 200, true},
		{accesslog.ReasonTargetResponseTimeout, 504, 0, true},
		{accesslog.ReasonClientClosed, StatusClientClosedRequest, 0, true},
		{accesslog.ReasonTargetConnectionError, 502, 0, false},
	}
	for _, ck := range checks {
		rec, ok := byReason[ck.reason]
		if !ok {
			t.Errorf("no log line with reason %q", ck.reason)
			continue
		}
		if rec.Type != accesslog.TypeHTTP || rec.ELBStatus != ck.elb || rec.TargetStatus != ck.target || rec.Target == "" ||
			(rec.RequestProcessing >= 0) != ck.targetReached || rec.Listener != "HTTP:"+port {
			t.Errorf("reason %q logged as %s", ck.reason, rec.String())
		}
	}
	if got := byReason[""].Request; got != "GET http://shop.example.test:"+port+"/cart HTTP/1.1" {
		t.Errorf("request field %q", got)
	}
	if n, _ := strconv.Atoi(port); n == 0 {
		t.Fatal("no port")
	}
}
