// Package origin is edgegate's origin tier: a load balancer in the manner of
// AWS ALB and NLB that the edge re-originates to over HTTPS, in front of the
// application servers. It shares nothing with the edge but the network.
//
// # Listeners
//
//   - HTTP: plain HTTP, forwarded to an HTTP(S) target group or redirected
//     (301 by default) to HTTPS. It also answers ACME HTTP-01 challenges for
//     the ACME listeners of the same load balancer.
//   - HTTPS: TLS terminated here (HTTP/2 and HTTP/1.1 to clients), requests
//     proxied over pooled HTTP/1.1 to the targets.
//   - TLS: TLS terminated here, the decrypted byte stream forwarded to TCP
//     targets (or re-encrypted to TLS targets).
//   - TCP: bytes passed through untouched, so TLS ends at the targets with
//     their own certificates. With sni_routes, the server name of the
//     ClientHello (read without consuming it) chooses the target group.
//
// Certificates come from files, from a self-signed pair generated for the
// given names, or over ACME, through package acme. The first certificate is
// served to clients whose SNI matches none, as ALB's default certificate.
//
// # Balancing
//
// HTTP(S) listeners balance each request: round_robin (default) or
// least_outstanding_requests. TCP and TLS listeners balance each
// connection: a target is chosen when the connection opens and keeps it
// until it closes. Behind a TCP passthrough listener the load balancer
// cannot see requests, so a browser that sends many requests over one
// keep-alive (or HTTP/2) connection stays on one target until that
// connection closes; only new connections move to other targets. That is
// NLB's behaviour too. On a connection failure (nothing sent yet) the next
// target is tried, for TCP/TLS connections and for HTTP requests without a
// body.
//
// # Health checks
//
// Each target group checks each target over TCP (connect), HTTP or HTTPS
// (GET path, status against matcher; target certificates are not
// verified, as ALB does not). Defaults are ALB's: interval 30s, timeout 5s
// (at most half the interval when only the interval is set), healthy
// threshold 5, unhealthy threshold 2, matcher 200, path /, port
// traffic-port; the protocol defaults to the group's (TCP for TLS groups).
// A target's first check decides its state at once; after that it becomes
// unhealthy after unhealthy_threshold consecutive failures and healthy
// again after healthy_threshold consecutive successes. An unhealthy target
// gets no new requests or connections; when every target of a group is
// unhealthy the group fails open and uses them all, as ALB does.
//
// # Mutual TLS
//
// mutual_tls {mode: verify, trust_store, crl} on an HTTPS or TLS listener
// refuses, during the handshake, a client with no certificate, one not
// chaining to the trust store, an expired one and one on the CRL (each
// logged with its reason). On HTTPS listeners the verified certificate is
// described to targets in X-Client-Cert-Subject, -Issuer, -Serial-Number,
// -Validity and -Leaf; any X-Client-Cert-* header a client sends is
// removed, on every HTTP(S) listener, so targets can trust them.
//
// # Requests to targets
//
// Requests go through httputil.ReverseProxy with Rewrite: hop-by-hop headers
// are removed; X-Forwarded-For gets the client address appended,
// X-Forwarded-Proto and X-Forwarded-Port name the listener's; Host is kept.
// A refused or broken target connection is answered 502, a timeout 504; a
// client that leaves first is logged as 460.
//
// # Access logs and admin
//
// logs.dir receives one line per HTTP request and one per TCP/TLS
// connection (failed TLS handshakes included), in the format defined by
// package origin/accesslog, which also parses it. admin.listen serves
// /healthz (503 while draining), /targets (JSON health of every target)
// and /metrics (Prometheus text format).
//
// # Timeouts and shutdown
//
// Every socket is bounded (timeouts block, defaults in the Default*
// constants): target connect 10s, TLS handshakes 10s, request headers 10s,
// keep-alive idle 60s, target response headers 60s, TCP/TLS idle 350s,
// request headers at most 64KiB. When Run's context ends, listeners stop
// accepting, and requests and connections in flight get timeouts.shutdown
// (30s) to finish before the rest are closed.
//
// # Use
//
//	cfg, err := origin.LoadConfig(path) // FILE:LINE: key: problem errors
//	srv, err := origin.New(cfg, logger)  // reads trust stores and CRLs
//	err = srv.Run(ctx)                   // serves until ctx ends, then drains
package origin
