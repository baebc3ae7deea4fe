package origin

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/edgegate/edgegate/origin/accesslog"
	"github.com/rs/zerolog"
)

func TestGracefulShutdown(t *testing.T) {
	e, path := newEdgeEnv(t, "timeouts: {shutdown: 30s}", "timeouts: {shutdown: 1s}")
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	<-srv.Ready()
	e.started(t, srv)

	// In flight when the shutdown starts: a slow request and a TLS stream.
	type result struct {
		status int
		err    error
	}
	slow := make(chan result, 1)
	go func() {
		resp, _, err := get(httpClient(e.https, e.pki.clientTLS(e.pki.good), true), "https://alb.example.test/?sleep=400ms")
		r := result{err: err}
		if resp != nil {
			r.status = resp.StatusCode
		}
		slow <- r
	}()
	cfgTLS := e.pki.clientTLS(e.pki.good)
	cfgTLS.InsecureSkipVerify = true
	stream, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", e.tls, cfgTLS)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	stream.SetDeadline(time.Now().Add(10 * time.Second))
	rd := bufio.NewReader(stream)
	fmt.Fprintf(stream, "before\n")
	if line, err := rd.ReadString('\n'); err != nil {
		t.Fatalf("stream before the shutdown: %q %v", line, err)
	}
	waitFor(t, 5*time.Second, "the slow request at a target", func() bool { return e.a.requests.Load()+e.b.requests.Load() == 1 })

	cancel()
	waitFor(t, 5*time.Second, "/healthz to say draining", func() bool {
		resp, err := http.Get("http://" + e.admin + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	waitFor(t, 5*time.Second, "the HTTPS listener to refuse connections", func() bool {
		c, err := net.DialTimeout("tcp", e.https, time.Second)
		if err == nil {
			c.Close()
		}
		return err != nil
	})
	if r := <-slow; r.err != nil || r.status != http.StatusOK {
		t.Fatalf("request in flight during the shutdown: %d %v", r.status, r.err)
	}
	// The open stream still works during the drain...
	fmt.Fprintf(stream, "during\n")
	if line, err := rd.ReadString('\n'); err != nil {
		t.Fatalf("stream during the drain: %q %v", line, err)
	}
	// ...until the grace period ends and it is closed.
	if _, err := rd.ReadString('\n'); err == nil || isTimeout(err) {
		t.Fatalf("stream after the grace period: %v; want it closed", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the grace period")
	}

	var sawSlow, sawStream bool
	for _, r := range readLog(t, filepath.Join(e.dir, "logs"), 2) {
		switch {
		case r.Type == accesslog.TypeH2 && r.ELBStatus == 200 && r.Request != "":
			sawSlow = true
		case r.Type == accesslog.TypeTLS && r.ErrorReason == accesslog.ReasonShutdown && r.ReceivedBytes == int64(len("before\nduring\n")):
			sawStream = true
		}
	}
	if !sawSlow || !sawStream {
		t.Errorf("access log: slow request logged %v, stream cut by the shutdown logged %v", sawSlow, sawStream)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
