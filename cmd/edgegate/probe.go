package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/edgegate/edgegate/edge/originconn"
)

func runProbe(ctx context.Context, e *env, args []string) int {
	fs := newFlags(e, "probe", "https://NAME[:PORT]/",
		`  edgegate probe https://alb.example.com/
  edgegate probe -connect 10.0.1.5:443 https://alb.example.com/     # like curl --resolve
  edgegate probe -ca private-ca.pem -cert edge.pem -key edge-key.pem https://origin.internal:8443/
`)
	sni := fs.String("sni", "", "server `NAME` to send and verify (default: the URL's host), as the origin's domain_name")
	ca := fs.String("ca", "", "PEM `FILE` of extra trusted roots, as the origin's trusted_ca")
	connect := fs.String("connect", "", "`HOST:PORT` to dial instead of resolving the name, as the origin's connect_to")
	cert := fs.String("cert", "", "client certificate `FILE` (PEM), as the origin's client_certificate.cert")
	key := fs.String("key", "", "client key `FILE` (PEM), as the origin's client_certificate.key")
	resolver := fs.String("resolver", "", "DNS server `HOST:PORT` (default: the system resolver)")
	protocols := fs.String("ssl-protocols", "TLSv1.2,TLSv1.3", "allowed TLS `VERSIONS`, as the origin's ssl_protocols")
	timeout := fs.Duration("timeout", 10*time.Second, "connection timeout per attempt, a `DURATION`")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		return usageError(e, fs, "probe", "give exactly one URL, e.g. https://alb.example.com/")
	}
	u, err := url.Parse(fs.Arg(0))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Hostname() == "" {
		fmt.Fprintf(e.stderr, "edgegate probe: %q is not an http:// or https:// URL\n", fs.Arg(0))
		return exitUsage
	}
	o := originconn.Options{
		DomainName:         u.Hostname(),
		ConnectTo:          *connect,
		ConnectionAttempts: 1,
		ConnectionTimeout:  *timeout,
		ResponseTimeout:    *timeout,
		Resolver:           *resolver,
	}
	if *sni != "" {
		o.DomainName = *sni
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil {
			fmt.Fprintf(e.stderr, "edgegate probe: bad port in %q\n", fs.Arg(0))
			return exitUsage
		}
		o.HTTPSPort, o.HTTPPort = n, n
	}
	if o.RootCAs, err = originconn.LoadRoots(*ca); err != nil {
		fmt.Fprintf(e.stderr, "edgegate probe: -ca: %v\n", err)
		return exitUsage
	}
	names := strings.Split(*protocols, ",")
	for i := range names {
		names[i] = strings.TrimSpace(names[i])
	}
	if o.MinVersion, o.MaxVersion, err = originconn.ParseSSLProtocols(names); err != nil {
		fmt.Fprintf(e.stderr, "edgegate probe: -ssl-protocols: %v\n", err)
		return exitUsage
	}
	if (*cert == "") != (*key == "") {
		fmt.Fprintln(e.stderr, "edgegate probe: give both -cert and -key, or neither")
		return exitUsage
	}
	if *cert != "" {
		c, err := tls.LoadX509KeyPair(*cert, *key)
		if err != nil {
			fmt.Fprintf(e.stderr, "edgegate probe: client certificate: %v\n", err)
			return exitUsage
		}
		o.ClientCertificate = &c
	}
	rep := originconn.Probe(ctx, o, u)
	fmt.Fprintln(e.stdout, rep.String())
	if !rep.OK {
		return exitFailure
	}
	return exitOK
}
