package origin

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// A reload under load swaps a target (b out, c in): no request fails, the
// HTTPS listener keeps its socket, requests after the reload never reach
// b, the slow ones already on b finish within its deregistration delay,
// and a broken config is refused with its place while the running one
// stays.
func TestReloadTargetsUnderLoad(t *testing.T) {
	e, path := newEdgeEnv(t, fastHealth...)
	srv := runServer(t, path)
	srv.SetConfigPath(path)
	e.started(t, srv)
	c := startApp(t, "c", "127.0.0.4", nil)
	client := httpClient(e.https, e.pki.clientTLS(e.pki.good), true)
	ld := startLoad(client, "https://alb.example.test/")
	defer ld.finish()
	waitFor(t, 10*time.Second, "load on both targets", func() bool {
		_, a := ld.since(time.Time{}, "a")
		_, b := ld.since(time.Time{}, "b")
		return a > 10 && b > 10
	})

	// Slow requests in flight when b is removed.
	type slowResult struct {
		status int
		app    string
		err    error
	}
	slow := make(chan slowResult, 6)
	slowClient := httpClient(e.https, e.pki.clientTLS(e.pki.good), false)
	for range 6 {
		go func() {
			resp, r, err := get(slowClient, "https://alb.example.test/?sleep=700ms")
			res := slowResult{app: r.App, err: err}
			if resp != nil {
				res.status = resp.StatusCode
			}
			slow <- res
		}()
	}
	waitFor(t, 5*time.Second, "slow requests on b", func() bool { return e.b.sleeping.Load() > 0 })

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	next := strings.Replace(string(data), fmt.Sprintf("%q, %q", e.a.addr, e.b.addr), fmt.Sprintf("%q, %q", e.a.addr, c.addr), 1)
	next = strings.Replace(next, "algorithm: round_robin\n", "algorithm: round_robin\n      deregistration_delay: 2s\n", 1)
	if err := os.WriteFile(path, []byte(next), 0o644); err != nil {
		t.Fatal(err)
	}
	httpsBefore := srv.Addrs()[1].String()
	reloaded := time.Now()
	if err := srv.Reload(context.Background()); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if got := srv.Addrs()[1].String(); got != httpsBefore {
		t.Errorf("HTTPS listener moved from %s to %s", httpsBefore, got)
	}
	waitFor(t, 10*time.Second, "requests on the new target", func() bool { _, n := ld.since(reloaded, "c"); return n > 10 })

	// A broken config is refused; traffic goes on.
	if err := os.WriteFile(path, []byte(next+"bogus: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := srv.Reload(context.Background()); err == nil || !strings.Contains(err.Error(), path+":") {
		t.Errorf("broken config: %v", err)
	}
	mark := time.Now()
	waitFor(t, 10*time.Second, "requests after the refused reload", func() bool { n, _ := ld.since(mark, ""); return n > 20 })

	results := ld.finish()
	for _, r := range results {
		if r.err != nil || r.status != http.StatusOK {
			t.Errorf("request started %v after the reload failed: %d %v", r.start.Sub(reloaded), r.status, r.err)
		}
		// A request picked just before the swap may still go to b.
		if r.app == "b" && r.start.After(reloaded.Add(50*time.Millisecond)) {
			t.Errorf("request started %v after the reload went to the removed target", r.start.Sub(reloaded))
		}
	}
	onB := 0
	for range 6 {
		r := <-slow
		if r.err != nil || r.status != http.StatusOK {
			t.Errorf("a slow request in flight during the reload failed: %d %v", r.status, r.err)
		}
		if r.app == "b" {
			onB++
		}
	}
	if onB == 0 {
		t.Error("no slow request was on the removed target: the drain was not exercised")
	}
	t.Logf("%d requests through the reload, 0 failed; %d slow requests finished on the removed target", len(results), onB)
}

// A removed target keeps what is in flight for its deregistration delay
// and no longer: a request still running on it then is cut.
func TestDeregistrationDelayCutsWhatIsLeft(t *testing.T) {
	e, path := newEdgeEnv(t, "algorithm: round_robin\n", "algorithm: round_robin\n      deregistration_delay: 300ms\n")
	srv := runServer(t, path)
	srv.SetConfigPath(path)
	e.started(t, srv)
	client := httpClient(e.https, e.pki.clientTLS(e.pki.good), false)
	type result struct {
		status  int
		app     string
		err     error
		elapsed time.Duration
	}
	results := make(chan result, 4)
	for range 4 {
		go func() {
			start := time.Now()
			resp, r, err := get(client, "https://alb.example.test/?sleep=2s")
			res := result{app: r.App, err: err, elapsed: time.Since(start)}
			if resp != nil {
				res.status = resp.StatusCode
			}
			results <- res
		}()
	}
	waitFor(t, 5*time.Second, "slow requests on both targets", func() bool { return e.a.sleeping.Load() > 0 && e.b.sleeping.Load() > 0 })
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	next := strings.Replace(string(data), fmt.Sprintf("%q, %q", e.a.addr, e.b.addr), fmt.Sprintf("%q", e.a.addr), 1)
	if err := os.WriteFile(path, []byte(next), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := srv.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	cut, finished := 0, 0
	for range 4 {
		r := <-results
		switch {
		case r.status == http.StatusOK && r.app == "a":
			finished++
		case r.status >= 500 && r.elapsed < 1500*time.Millisecond:
			cut++ // the one on b, cut at the end of its delay
		default:
			t.Errorf("unexpected: %d %q %v after %v", r.status, r.app, r.err, r.elapsed)
		}
	}
	if cut == 0 || finished == 0 {
		t.Errorf("%d cut on the removed target, %d finished on the kept one", cut, finished)
	}
}

// A listener whose config changes on the same port is re-bound there (a
// second socket with SO_REUSEPORT, then the old one drains): requests
// after the reload get the new behaviour on the same address.
func TestReloadRebindsChangedListenerOnItsPort(t *testing.T) {
	e, path := newEdgeEnv(t)
	srv := runServer(t, path)
	srv.SetConfigPath(path)
	e.started(t, srv)
	// A new connection per request, so that each one shows which listener
	// accepted it: none may be reset (the old socket closing with queued
	// connections) or dropped (net/http closing a connection whose request
	// it reads after Shutdown began), since the new listener inherits the
	// socket and the old one lets what it accepted arrive first.
	noRedirect := &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport:     &http.Transport{DisableKeepAlives: true},
		Timeout:       5 * time.Second,
	}
	status := func() int {
		resp, err := noRedirect.Get("http://" + e.http + "/x")
		if err != nil {
			t.Fatalf("GET around the reload: %v", err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := status(); s != http.StatusMovedPermanently {
		t.Fatalf("before: %d", s)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := strings.Cut(e.http, ":")
	// The HTTP listener was on port 0: pin it to the port it got, with a
	// new redirect status.
	next := strings.Replace(string(data), "port: 0\n      address: 127.0.0.1\n      default_action: {redirect: {protocol: HTTPS, port: 443, status: 301}}",
		"port: "+port+"\n      address: 127.0.0.1\n      default_action: {redirect: {protocol: HTTPS, port: 443, status: 308}}", 1)
	if next == string(data) {
		t.Fatalf("the HTTP listener was not found in:\n%s", data)
	}
	if err := os.WriteFile(path, []byte(next), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := srv.Reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := srv.Addrs()[0].String(); got != e.http {
		t.Errorf("HTTP listener on %s, want %s", got, e.http)
	}
	waitFor(t, 5*time.Second, "the new redirect status", func() bool { return status() == http.StatusPermanentRedirect })
}
