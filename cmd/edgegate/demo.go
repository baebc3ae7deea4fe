package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
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
	"github.com/edgegate/edgegate/internal/pebblerun"
	"github.com/edgegate/edgegate/internal/pki"
	"github.com/edgegate/edgegate/origin"
	"github.com/miekg/dns"
	"github.com/rs/zerolog"
)

// demoName is the viewer-facing name the demo's edge gets a certificate for.
const demoName = "www.example.test"

// demoOptions are the demo's flags.
type demoOptions struct {
	httpAddr, httpsAddr, adminAddr, logs string
}

func runDemo(ctx context.Context, e *env, args []string) int {
	fs := newFlags(e, "demo", "",
		"  edgegate demo                      # then run the curl line it prints; Ctrl-C stops everything\n"+
			"  edgegate demo -https 127.0.0.1:9443\n"+
			"  edgegate demo -logs demo-logs      # keep the logs; then: edgegate logs summary demo-logs/edge\n")
	var o demoOptions
	fs.StringVar(&o.httpAddr, "http", "127.0.0.1:8080", "edge HTTP listener `HOST:PORT` (loopback; the ACME server validates HTTP-01 here)")
	fs.StringVar(&o.httpsAddr, "https", "127.0.0.1:8443", "edge HTTPS listener `HOST:PORT` (loopback; the ACME server validates TLS-ALPN-01 here)")
	fs.StringVar(&o.adminAddr, "admin", "127.0.0.1:9901", "edge admin listener `HOST:PORT`: /metrics, /invalidations, /healthz, /readyz")
	fs.StringVar(&o.logs, "logs", "", "keep the logs in this `DIR` after the demo stops: the edge's standard logs in DIR/edge, the origin tier's in DIR/origin, the operational log (demo.log) and the ACME server's (pebble.log); by default they live in the demo's temporary directory and go with it")
	level := fs.String("log-level", "info", "operational log `LEVEL`: debug, info, warn, error")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return usageError(e, fs, "demo", fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	if _, err := zerolog.ParseLevel(*level); err != nil || *level == "" {
		return usageError(e, fs, "demo", fmt.Sprintf("-log-level %q: use debug, info, warn or error", *level))
	}
	for _, a := range []struct{ flag, addr string }{{"-http", o.httpAddr}, {"-https", o.httpsAddr}, {"-admin", o.adminAddr}} {
		host, port, err := net.SplitHostPort(a.addr)
		ip := net.ParseIP(host)
		if err != nil || ip == nil || !ip.IsLoopback() || ip.To4() == nil || port == "0" {
			return usageError(e, fs, "demo", fmt.Sprintf("%s %q: use a loopback IPv4 HOST:PORT with a fixed port", a.flag, a.addr))
		}
	}
	if err := demo(ctx, e, *level, o); err != nil {
		fmt.Fprintf(e.stderr, "edgegate demo: %v\n", err)
		return exitFailure
	}
	return exitOK
}

// demo runs an ACME server (Pebble, in-process, with a DNS responder for
// it), two apps behind an origin-tier load balancer, and an edge that gets
// its certificate for www.example.test from that server over ACME, until
// ctx ends. Everything it writes is under one temporary directory, removed
// when it returns, but for the logs directory the user named.
func demo(ctx context.Context, e *env, level string, o demoOptions) (err error) {
	state, err := os.MkdirTemp("", "edgegate-demo-")
	if err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	logsDir := filepath.Join(state, "logs")
	if o.logs != "" {
		logsDir = o.logs
	}
	for _, d := range []string{filepath.Join(logsDir, "edge"), filepath.Join(logsDir, "origin")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			os.RemoveAll(state)
			return fmt.Errorf("logs directory: %w", err)
		}
	}
	opsFile := filepath.Join(logsDir, "demo.log")
	ops, err := os.OpenFile(opsFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		os.RemoveAll(state)
		return fmt.Errorf("operational log: %w", err)
	}
	log, _ := newLogger(ops, level)
	fmt.Fprintf(e.stdout, "Starting the demo on 127.0.0.1 (an ACME server, an origin tier over two apps and an edge)...\n"+
		"Its operational log: %s\n", opsFile)
	defer func() {
		// On a failure, what went wrong is in the operational log, which
		// goes with the temporary directory unless the user kept it.
		if err != nil && o.logs == "" {
			err = fmt.Errorf("%w\nthe end of the operational log:\n%s", err, tail(opsFile, 20))
		}
		ops.Close()
		os.RemoveAll(state)
		if o.logs != "" {
			fmt.Fprintf(e.stdout, "demo: stopped; the logs are kept in %s\n", o.logs)
		} else {
			fmt.Fprintf(e.stdout, "demo: stopped; removed %s\n", state)
		}
	}()
	edgeIP, httpPort, _ := net.SplitHostPort(o.httpAddr)
	_, httpsPort, _ := net.SplitHostPort(o.httpsAddr)
	hp, _ := strconv.Atoi(httpPort)
	tp, _ := strconv.Atoi(httpsPort)

	// 1. DNS for the ACME server (and the edge's pre-check): www.example.test
	// is the edge's loopback address.
	dnsAddr, stopDNS, err := demoDNS(map[string]string{demoName: edgeIP})
	if err != nil {
		return err
	}
	defer stopDNS()

	// 2. Pebble, Let's Encrypt's test CA, validating on the edge's ports.
	pebbleLog, err := os.OpenFile(filepath.Join(logsDir, "pebble.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("ACME server log: %w", err)
	}
	defer pebbleLog.Close()
	pctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	pebble, err := pebblerun.Start(pctx, pebblerun.Config{DNS: dnsAddr, HTTPPort: hp, TLSPort: tp, Dir: state, Log: pebbleLog})
	if err != nil {
		return fmt.Errorf("start the ACME server: %w", err)
	}
	defer pebble.Close()
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
`, certFile, keyFile, strings.Join(targets, ", "), filepath.Join(logsDir, "origin"))
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

	// 5. The edge, with its certificate from Pebble over ACME, and its
	// admin listener with the README's token ($EDGEGATE_ADMIN_TOKEN) or a
	// new one, which the block below prints.
	token, tokenText := os.Getenv("EDGEGATE_ADMIN_TOKEN"), "$EDGEGATE_ADMIN_TOKEN"
	if token == "" {
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			return fmt.Errorf("admin token: %w", err)
		}
		token = hex.EncodeToString(b)
		tokenText = token + " (export EDGEGATE_ADMIN_TOKEN=" + token + " for the README's examples)"
	}
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
  admin: {listen: %q, token: %q}
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
		"file://"+filepath.Join(state, "certificates"), filepath.Join(state, "cache"), filepath.Join(logsDir, "edge"), o.adminAddr, token, demoName,
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
	keep := "removed when the demo stops; -logs DIR keeps them"
	if o.logs != "" {
		keep = "kept when the demo stops"
	}
	fmt.Fprintf(e.stdout, `
edgegate demo is running on 127.0.0.1: an ACME CA (Pebble, built in), an edge (DEMO1) with a certificate
for %[5]s issued by it over ACME, and an origin-tier load balancer over two apps.

Try:
  curl --resolve %[5]s:%[1]s:%[6]s --cacert %[2]s https://%[5]s:%[1]s/hello
  curl -i --resolve %[5]s:%[3]s:%[6]s http://%[5]s:%[3]s/hello     # redirects to HTTPS
Admin listener (metrics, invalidations): http://%[7]s/metrics, bearer token %[10]s
Logs (%[8]s): %[4]s
  edgegate logs summary %[9]s
Press Ctrl-C to stop.
`, httpsPort, pebble.IssuerRoots, httpPort, logsDir, demoName, edgeIP, o.adminAddr, keep, filepath.Join(logsDir, "edge"), tokenText)
	<-ctx.Done()
	fmt.Fprintln(e.stdout, "demo: stopping")
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
			return fmt.Errorf("no certificate for %s from the ACME server: %v", demoName, err)
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

// tail is the last n lines of a file, for an error message.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
