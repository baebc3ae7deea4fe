package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

// appHandler is the demo application behind the origin tier: it says which
// instance answered, so that load balancing is visible from the viewer's side.
// Its answers may be cached for maxAge: long enough that a walk through the
// demo by hand sees its Hits.
func appHandler(name string, maxAge time.Duration) http.Handler {
	cacheControl := fmt.Sprintf("max-age=%d", int(maxAge.Seconds()))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			fmt.Fprintln(w, "ok")
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", cacheControl)
		w.Header().Set("X-App", name)
		fmt.Fprintf(w, "hello from %s: %s %s (Host: %s, X-Forwarded-For: %s)\n", name, r.Method, r.URL.RequestURI(), r.Host, r.Header.Get("X-Forwarded-For"))
	})
}

func runApp(ctx context.Context, e *env, args []string) int {
	fs := newFlags(e, "app", "",
		"  edgegate app -name app1 -listen :8080     # GET / answers \"hello from app1: ...\"; /healthz answers ok\n")
	name := fs.String("name", "app", "the `NAME` the app answers with (body and X-App header)")
	listen := fs.String("listen", ":8080", "`HOST:PORT` to serve plain HTTP on")
	maxAge := fs.Duration("max-age", time.Minute, "Cache-Control max-age of the answers, a `DURATION`")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", *listen)
	if err != nil {
		fmt.Fprintf(e.stderr, "edgegate app: %v\n", err)
		return exitFailure
	}
	srv := &http.Server{
		Handler:           appHandler(*name, *maxAge),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
	}
	fmt.Fprintf(e.stderr, "edgegate app %s: serving on %s\n", *name, ln.Addr())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		fmt.Fprintf(e.stderr, "edgegate app: %v\n", err)
		return exitFailure
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		fmt.Fprintf(e.stderr, "edgegate app: shutdown: %v\n", err)
		return exitFailure
	}
	return exitOK
}

// runHealth is a container health check that needs no shell or curl in the
// image: it GETs one URL and succeeds on a 2xx answer.
func runHealth(ctx context.Context, e *env, args []string) int {
	fs := newFlags(e, "health", "URL",
		"  edgegate health http://127.0.0.1:9901/healthz\n  edgegate health -cacert /etc/pebble/certs/pebble-api-ca.pem https://localhost:14000/dir\n")
	caFile := fs.String("cacert", "", "PEM `FILE` of roots to trust for an https:// URL (system roots otherwise)")
	timeout := fs.Duration("timeout", 5*time.Second, "give up after this `DURATION`")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		return usageError(e, fs, "health", "want exactly one URL")
	}
	tr := &http.Transport{Proxy: nil, DisableKeepAlives: true}
	if *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			fmt.Fprintf(e.stderr, "edgegate health: -cacert: %v\n", err)
			return exitUsage
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			fmt.Fprintf(e.stderr, "edgegate health: -cacert %s: no PEM certificate in it\n", *caFile)
			return exitUsage
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fs.Arg(0), nil)
	if err != nil {
		fmt.Fprintf(e.stderr, "edgegate health: %v\n", err)
		return exitUsage
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		var ue interface{ Unwrap() error }
		if errors.As(err, &ue) {
			err = ue.Unwrap()
		}
		fmt.Fprintf(e.stderr, "edgegate health: %s: %v\n", fs.Arg(0), err)
		return exitFailure
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		fmt.Fprintf(e.stderr, "edgegate health: %s: %s\n", fs.Arg(0), resp.Status)
		return exitFailure
	}
	fmt.Fprintf(e.stdout, "%s: %s\n", fs.Arg(0), resp.Status)
	return exitOK
}
