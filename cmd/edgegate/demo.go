package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/edgegate/edgegate/edge"
	"github.com/edgegate/edgegate/internal/pki"
	"github.com/edgegate/edgegate/internal/testpebble"
	"github.com/edgegate/edgegate/origin"
	"github.com/miekg/dns"
	"github.com/rs/zerolog"
)

// demoName is the viewer-facing name the demo's edge gets a certificate for.
const demoName = "www.example.test"

// demoOptions are the demo's flags.
type demoOptions struct {
	httpAddr, httpsAddr, logs, pebble string
}

func runDemo(ctx context.Context, e *env, args []string) int {
	fs := newFlags(e, "demo", "[-http ADDR] [-https ADDR] [-logs DIR] [-pebble FILE]",
		"  edgegate demo                      # then run the curl line it prints; Ctrl-C stops everything\n  edgegate demo -https 127.0.0.1:9443\n")
	var o demoOptions
	fs.StringVar(&o.httpAddr, "http", "127.0.0.1:8080", "edge HTTP listener (loopback; Pebble validates HTTP-01 here)")
	fs.StringVar(&o.httpsAddr, "https", "127.0.0.1:8443", "edge HTTPS listener (loopback; Pebble validates TLS-ALPN-01 here)")
	fs.StringVar(&o.logs, "logs", "demo-logs", "directory for the edge's standard logs (the origin tier logs to DIR-origin, Pebble to DIR-pebble.log), so `edgegate logs summary DIR` reads only CloudFront-format files")
	fs.StringVar(&o.pebble, "pebble", "", "pebble executable (default: the module's pinned tool, built with `go tool -n pebble`)")
	level := fs.String("log-level", "info", "operational log level")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	log, err := newLogger(e.stderr, *level)
	if err != nil {
		fmt.Fprintf(e.stderr, "edgegate demo: %v\n", err)
		return exitUsage
	}
	for _, a := range []struct{ flag, addr string }{{"-http", o.httpAddr}, {"-https", o.httpsAddr}} {
		host, port, err := net.SplitHostPort(a.addr)
		ip := net.ParseIP(host)
		if err != nil || ip == nil || !ip.IsLoopback() || ip.To4() == nil || port == "0" {
			fmt.Fprintf(e.stderr, "edgegate demo: %s %q: use a loopback IPv4 HOST:PORT with a fixed port (the ACME server validates there)\n", a.flag, a.addr)
			return exitUsage
		}
	}
	if err := demo(ctx, e, log, o); err != nil {
		fmt.Fprintf(e.stderr, "edgegate demo: %v\n", err)
		return exitFailure
	}
	return exitOK
}

// demo runs Pebble (with a DNS responder for it), two apps behind an
// origin-tier load balancer, and an edge that gets its certificate for
// www.example.test from Pebble over ACME, until ctx ends.
func demo(ctx context.Context, e *env, log zerolog.Logger, o demoOptions) error {
	state, err := os.MkdirTemp("", "edgegate-demo-")
	if err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	defer os.RemoveAll(state)
	if err := os.MkdirAll(o.logs, 0o755); err != nil {
		return fmt.Errorf("logs directory: %w", err)
	}
	edgeIP, httpPort, _ := net.SplitHostPort(o.httpAddr)
	_, httpsPort, _ := net.SplitHostPort(o.httpsAddr)
	hp, _ := strconv.Atoi(httpPort)
	tp, _ := strconv.Atoi(httpsPort)

	// 1. DNS for Pebble (and the edge's pre-check): www.example.test is the
	// edge's loopback address.
	dnsAddr, stopDNS, err := demoDNS(map[string]string{demoName: edgeIP})
	if err != nil {
		return err
	}
	defer stopDNS()

	// 2. Pebble, Let's Encrypt's test CA, validating on the edge's ports.
	pebbleLog, err := os.Create(o.logs + "-pebble.log")
	if err != nil {
		return fmt.Errorf("pebble log: %w", err)
	}
	defer pebbleLog.Close()
	pctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	pebble, err := testpebble.Run(pctx, testpebble.Config{DNS: dnsAddr, HTTPPort: hp, TLSPort: tp, Dir: state, Log: pebbleLog, Binary: o.pebble})
	if err != nil {
		return fmt.Errorf("start Pebble: %w", err)
	}
	defer pebble.Stop()
	log.Info().Str("directory", pebble.Directory).Msg("demo: Pebble ACME server running")

	// 3. Two apps, plain HTTP on loopback.
	var lc net.ListenConfig
	var targets []string
	for _, name := range []string{"app1", "app2"} {
		ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("listen for %s: %w", name, err)
		}
		app := &http.Server{Handler: appHandler(name, time.Minute), ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := app.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error().Err(err).Str("app", name).Msg("demo app stopped")
			}
		}()
		defer app.Close()
		targets = append(targets, strconv.Quote(ln.Addr().String()))
	}

	// 4. The origin tier: HTTPS with a private-CA certificate for
	// origin.example.test, round robin over the apps.
	ca, err := pki.NewAuthority("edgegate demo origin CA")
	if err != nil {
		return err
	}
	caFile := filepath.Join(state, "origin-ca.pem")
	if err := ca.WriteFile(caFile); err != nil {
		return err
	}
	originCert, err := ca.Issue(pki.LeafOptions{Names: []string{"origin.example.test"}})
	if err != nil {
		return err
	}
	certFile, keyFile, err := originCert.WriteFiles(state, "origin.example.test")
	if err != nil {
		return err
	}
	originText := fmt.Sprintf(`origin:
  listeners:
    - protocol: HTTPS
      address: 127.0.0.1
      port: 0
      certificates: {files: [{cert: %q, key: %q}]}
      default_action: {forward: app}
  target_groups:
    - name: app
      protocol: HTTP
      algorithm: round_robin
      targets: [%s]
      health_check: {protocol: HTTP, path: /healthz, interval: 2s, timeout: 1s, healthy_threshold: 2, unhealthy_threshold: 2}
  logs: {dir: %q, rotate: 1h}
  timeouts: {shutdown: 5s}
`, certFile, keyFile, strings.Join(targets, ", "), o.logs+"-origin")
	ocfg, err := origin.ParseConfig("demo origin config", []byte(originText))
	if err != nil {
		return err
	}
	osrv, err := origin.New(ocfg, log.With().Str("tier", "origin").Logger())
	if err != nil {
		return fmt.Errorf("origin tier: %w", err)
	}
	octx, stopOrigin := context.WithCancel(context.WithoutCancel(ctx))
	originDone := make(chan error, 1)
	go func() { originDone <- osrv.Run(octx) }()
	<-osrv.Ready()
	if len(osrv.Addrs()) == 0 { // Run failed before binding
		stopOrigin()
		return fmt.Errorf("origin tier: %w", <-originDone)
	}
	defer func() {
		stopOrigin()
		<-originDone
	}()
	originAddr := osrv.Addrs()[0].String()

	// 5. The edge, with its certificate from Pebble over ACME.
	edgeText := fmt.Sprintf(`edge:
  location: DEMO1
  listen: {http: %q, https: %q}
  resolver: %q
  certificates:
    acme:
      directory: %q
      email: demo@example.test
      trusted_roots: %q
      challenges: [http-01, tls-alpn-01]
      http_port: %d
      tls_port: %d
    storage: %q
  cache: {memory: 64MiB, disk: {path: %q, size: 1GiB}}
  logs: {dir: %q, rotate: 1h}
distributions:
  - aliases: [%s]
    viewer_protocol_policy: redirect-to-https
    origins:
      - id: origin-tier
        domain_name: origin.example.test
        connect_to: %q
        trusted_ca: %q
    default_behavior: {target: origin-tier}
`, o.httpAddr, o.httpsAddr, dnsAddr, pebble.Directory, pebble.APIRoots, hp, tp,
		"file://"+filepath.Join(state, "certificates"), filepath.Join(state, "cache"), o.logs, demoName,
		originAddr, caFile)
	cfg, err := edge.ParseConfig("demo edge config", []byte(edgeText))
	if err != nil {
		return err
	}
	srv, err := edge.New(ctx, cfg, edge.Options{Logger: log})
	if err != nil {
		return err
	}
	if err := srv.Start(ctx); err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := waitDemoCertificate(ctx, o.httpsAddr, pebble.IssuerRoots); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, `edgegate demo is running on 127.0.0.1: Pebble (ACME CA), an edge (DEMO1) with an ACME certificate
for %[5]s, and an origin-tier load balancer over two apps.

Try:
  curl --resolve %[5]s:%[1]s:%[6]s --cacert %[2]s https://%[5]s:%[1]s/hello
  curl -i --resolve %[5]s:%[3]s:%[6]s http://%[5]s:%[3]s/hello     # redirects to HTTPS
Standard logs are written under %[4]s/ (the origin tier's in %[4]s-origin/, Pebble's in %[4]s-pebble.log). Press Ctrl-C to stop.
`, httpsPort, pebble.IssuerRoots, httpPort, o.logs, demoName, edgeIP)
	<-ctx.Done()
	log.Info().Msg("demo: stopping")
	return nil
}

// waitDemoCertificate waits until the edge presents a certificate for the
// demo name that chains to Pebble's root, so that the printed curl works.
func waitDemoCertificate(ctx context.Context, addr, rootsFile string) error {
	pem, err := os.ReadFile(rootsFile)
	if err != nil {
		return fmt.Errorf("read the Pebble root: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	d := tls.Dialer{Config: &tls.Config{ServerName: demoName, RootCAs: pool}}
	for {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			return c.Close()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no certificate for %s from Pebble: %v (see the log above)", demoName, err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// demoDNS answers A queries for names (and an empty AAAA) over UDP and
// TCP on loopback, as Pebble needs; every other name is NXDOMAIN.
func demoDNS(names map[string]string) (addr string, stop func(), err error) {
	zone := map[string]net.IP{}
	for n, ip := range names {
		zone[dns.Fqdn(strings.ToLower(n))] = net.ParseIP(ip)
	}
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Authoritative = true
		if len(r.Question) == 1 {
			q := r.Question[0]
			ip, ok := zone[strings.ToLower(q.Name)]
			switch {
			case !ok:
				m.Rcode = dns.RcodeNameError
			case q.Qtype == dns.TypeA:
				m.Answer = append(m.Answer, &dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET}, A: ip})
			}
		}
		_ = w.WriteMsg(m)
	})
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("demo DNS: %w", err)
	}
	ln, err := net.Listen("tcp", pc.LocalAddr().String())
	if err != nil {
		pc.Close()
		return "", nil, fmt.Errorf("demo DNS over TCP: %w", err)
	}
	udp := &dns.Server{PacketConn: pc, Handler: h}
	tcp := &dns.Server{Listener: ln, Handler: h}
	go func() { _ = udp.ActivateAndServe() }()
	go func() { _ = tcp.ActivateAndServe() }()
	return pc.LocalAddr().String(), func() { _ = udp.Shutdown(); _ = tcp.Shutdown() }, nil
}
