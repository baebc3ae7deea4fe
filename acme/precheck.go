package acme

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/edgegate/edgegate/internal/pki"
	"github.com/rs/zerolog"
)

// Failure budget: Let's Encrypt allows 5 failed validations per account,
// per hostname, per hour. One failed order can cost two validations
// (acmez retries a failed authorization with the other challenge type),
// so the budget is counted in validations and kept below the CA's limit.
const (
	failureWindow = time.Hour
	failureBudget = 4
)

// precheckPrefix marks the pre-check's own tokens, so that requests for the
// CA's tokens never cost a storage lookup for them.
const precheckPrefix = "edgegate-precheck-"

// precheck proves, before an order, that a name's HTTP-01 path reaches this
// edge (or its cluster): it publishes a random token in the shared storage,
// serves it through HTTPChallengeHandler, and fetches it by the name, as
// the CA will, through the configured resolver. A wrong DNS record then
// costs a log line instead of a failed validation at the CA.
//
// With http-01 off, the same proof goes over TLS on the TLS-ALPN-01 port:
// a throw-away certificate, published in storage, is what this cluster
// presents to a client offering the precheckALPN protocol.
type precheck struct {
	storage  certmagic.Storage
	resolver *net.Resolver
	httpPort string // set: check over HTTP on this port
	tlsPort  string // set (and httpPort not): check over TLS on this port
	log      zerolog.Logger

	mu       sync.Mutex
	tokens   map[string]string           // token → expected body, for this node's checks
	tlsCerts map[string]*tls.Certificate // name → certificate, for this node's checks
}

// precheckALPN is the protocol a TLS pre-check offers, so that the
// handshake is told apart from viewers and from the CA.
const precheckALPN = "edgegate-precheck"

func newPrecheck(storage certmagic.Storage, resolver string, log zerolog.Logger) *precheck {
	r := net.DefaultResolver
	if resolver != "" {
		r = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, resolver)
		}}
	}
	return &precheck{storage: storage, resolver: r, log: log, tokens: map[string]string{}, tlsCerts: map[string]*tls.Certificate{}}
}

func precheckKey(token string) string { return "edgegate/precheck/" + token }

// serve answers a pre-check token request, from memory or (when another
// cluster node runs the check) from storage. It reports whether it did.
func (p *precheck) serve(w http.ResponseWriter, r *http.Request) bool {
	token := strings.TrimPrefix(r.URL.Path, challengePath)
	if !strings.HasPrefix(token, precheckPrefix) || len(token) > 100 || strings.ContainsAny(token, "/.") {
		return false
	}
	p.mu.Lock()
	body, ok := p.tokens[token]
	p.mu.Unlock()
	if !ok {
		b, err := p.storage.Load(r.Context(), precheckKey(token))
		if err != nil {
			http.NotFound(w, r)
			return true
		}
		body = string(b)
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = io.WriteString(w, body)
	return true
}

// check returns nil when every address name resolves to serves this
// cluster's token on the HTTP-01 port, and an error saying what is wrong
// otherwise. It tries for a short while before giving up, because the
// first check runs while the edge is still opening its listeners, and
// certmagic's next retry is a minute away.
func (p *precheck) check(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	deadline := time.Now().Add(precheckPatience)
	for {
		err := p.checkOnce(ctx, name)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// precheckPatience is how long check retries a failing pre-check.
const precheckPatience = 5 * time.Second

func (p *precheck) checkOnce(ctx context.Context, name string) error {
	addrs, err := p.resolver.LookupHost(ctx, name)
	if err != nil || len(addrs) == 0 {
		return fmt.Errorf("%s does not resolve (%v), so the CA could not reach this edge", name, err)
	}
	if p.httpPort == "" {
		return p.checkTLS(ctx, name, addrs)
	}
	rnd := make([]byte, 16)
	_, _ = rand.Read(rnd)
	token := precheckPrefix + hex.EncodeToString(rnd)
	_, _ = rand.Read(rnd)
	want := hex.EncodeToString(rnd)
	p.mu.Lock()
	p.tokens[token] = want
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.tokens, token)
		p.mu.Unlock()
		_ = p.storage.Delete(context.WithoutCancel(ctx), precheckKey(token))
	}()
	if err := p.storage.Store(ctx, precheckKey(token), []byte(want)); err != nil {
		return fmt.Errorf("pre-check of %s: store token: %w", name, err)
	}
	var bad []string
	var why []string
	for _, a := range addrs {
		if err := p.fetch(ctx, name, a, token, want); err != nil {
			bad = append(bad, a)
			why = append(why, err.Error())
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%s resolves to %s, which is not this edge (%s)", name, strings.Join(bad, ", "), strings.Join(why, "; "))
	}
	return nil
}

// fetch asks addr for the token over HTTP with Host: name, as the CA does.
func (p *precheck) fetch(ctx context.Context, name, addr, token, want string) error {
	client := &http.Client{
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				var d net.Dialer
				return d.DialContext(ctx, network, net.JoinHostPort(addr, p.httpPort))
			},
			DisableKeepAlives: true,
			Proxy:             nil,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       10 * time.Second,
	}
	host := name
	if p.httpPort != "80" {
		host = net.JoinHostPort(name, p.httpPort)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+host+challengePath+token, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("%s:%s: %v", addr, p.httpPort, errors.Unwrap(err))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(string(body))), []byte(want)) != 1 {
		return fmt.Errorf("%s:%s answered %s without this edge's token", addr, p.httpPort, resp.Status)
	}
	return nil
}

type tlsPrecheckPair struct {
	Cert []byte `json:"cert"`
	Key  []byte `json:"key"`
}

func precheckTLSKey(name string) string { return "edgegate/precheck-tls/" + name + ".json" }

// checkTLS proves over TLS that every address of name is this cluster: each
// must present the throw-away certificate just published.
func (p *precheck) checkTLS(ctx context.Context, name string, addrs []string) error {
	leaf, err := pki.SelfSigned(pki.LeafOptions{Names: []string{name}, NotAfter: time.Now().Add(time.Hour)})
	if err != nil {
		return err
	}
	pair := leaf.TLS()
	p.mu.Lock()
	p.tlsCerts[name] = &pair
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.tlsCerts, name)
		p.mu.Unlock()
		_ = p.storage.Delete(context.WithoutCancel(ctx), precheckTLSKey(name))
	}()
	b, _ := json.Marshal(tlsPrecheckPair{Cert: leaf.CertPEM, Key: leaf.KeyPEM})
	if err := p.storage.Store(ctx, precheckTLSKey(name), b); err != nil {
		return fmt.Errorf("pre-check of %s: store certificate: %w", name, err)
	}
	var bad, why []string
	for _, a := range addrs {
		if err := p.dialTLS(ctx, name, a, leaf.Cert.Raw); err != nil {
			bad = append(bad, a)
			why = append(why, err.Error())
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%s resolves to %s, which is not this edge (%s)", name, strings.Join(bad, ", "), strings.Join(why, "; "))
	}
	return nil
}

func (p *precheck) dialTLS(ctx context.Context, name, addr string, want []byte) error {
	d := tls.Dialer{Config: &tls.Config{
		ServerName: name,
		// http/1.1 too, so that the listener finds a protocol in common
		// and completes the handshake.
		NextProtos: []string{precheckALPN, "http/1.1"},
		// Not a trust decision: the only certificate accepted is the one
		// this check just made.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 || !bytes.Equal(cs.PeerCertificates[0].Raw, want) {
				return errors.New("presented another certificate")
			}
			return nil
		},
	}}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := d.DialContext(dctx, "tcp", net.JoinHostPort(addr, p.tlsPort))
	if err != nil {
		return fmt.Errorf("%s:%s: %v", addr, p.tlsPort, err)
	}
	return c.Close()
}

// tlsCert is the pre-check certificate for name, from memory or storage.
func (p *precheck) tlsCert(ctx context.Context, name string) (*tls.Certificate, error) {
	p.mu.Lock()
	c := p.tlsCerts[name]
	p.mu.Unlock()
	if c != nil {
		return c, nil
	}
	b, err := p.storage.Load(ctx, precheckTLSKey(name))
	if err != nil {
		return nil, fmt.Errorf("no pre-check running for %s: %w", name, err)
	}
	var pair tlsPrecheckPair
	if err := json.Unmarshal(b, &pair); err != nil {
		return nil, fmt.Errorf("pre-check certificate for %s: %w", name, err)
	}
	cert, err := tls.X509KeyPair(pair.Cert, pair.Key)
	if err != nil {
		return nil, fmt.Errorf("pre-check certificate for %s: %w", name, err)
	}
	return &cert, nil
}

// guardedIssuer is the certmagic Issuer: the ACME issuer behind a failure
// budget and the pre-check. certmagic calls Issue with the name's lock held
// and after checking storage, so only the node that would order runs them.
// Returning an error makes certmagic retry later with its backoff.
type guardedIssuer struct {
	*certmagic.ACMEIssuer
	pre *precheck
	dns *rfc2136 // set with dns-01: the DNS pre-flight replaces pre
	// budget is where failed validations are counted: each CA counts its
	// own ("" for the primary, the CA's storage key for a fallback).
	budget  string
	storage certmagic.Storage
	log     zerolog.Logger
}

// failureRecord is the stored list of recent failed validations of a name.
type failureRecord struct {
	Failures []time.Time `json:"failures"`
	// Consecutive counts failed validations since the name's last
	// issuance: Let's Encrypt pauses a name for an account after 3,600 in
	// a row (refilled at one a day), until unpaused in its portal.
	Consecutive int `json:"consecutive,omitempty"`
}

// consecutiveStop is where the edge stops ordering a name that keeps
// failing, well before Let's Encrypt's pause (3,600 consecutive failed
// authorizations), so that the account is never paused; with the hourly
// budget it takes more than ten days of failures to get there.
const consecutiveStop = 1000

func failureKey(name string) string { return "edgegate/validation-failures/" + name + ".json" }

// failureKey is where this CA's failed validations of name are counted.
func (g *guardedIssuer) failureKey(name string) string {
	if g.budget == "" {
		return failureKey(name)
	}
	return "edgegate/validation-failures/" + g.budget + "/" + name + ".json"
}

func (g *guardedIssuer) loadFailures(ctx context.Context, name string, now time.Time) (failureRecord, error) {
	var rec failureRecord
	b, err := g.storage.Load(ctx, g.failureKey(name))
	if errors.Is(err, fs.ErrNotExist) {
		return rec, nil
	}
	if err != nil {
		return rec, fmt.Errorf("load failed validations of %s: %w", name, err)
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return failureRecord{}, nil // a corrupt record must not block issuance forever
	}
	recent := rec.Failures[:0]
	for _, t := range rec.Failures {
		if now.Sub(t) < failureWindow {
			recent = append(recent, t)
		}
	}
	rec.Failures = recent
	return rec, nil
}

// Issue orders a certificate unless a name has spent its failure budget or
// fails the pre-check.
func (g *guardedIssuer) Issue(ctx context.Context, csr *x509.CertificateRequest) (*certmagic.IssuedCertificate, error) {
	now := time.Now()
	for _, name := range csr.DNSNames {
		rec, err := g.loadFailures(ctx, name, now)
		if err != nil {
			return nil, err
		}
		if rec.Consecutive >= consecutiveStop {
			g.log.Error().Str("name", name).Int("consecutive_failed_validations", rec.Consecutive).
				Msgf("%s: %d failed validations in a row: no more orders for it, before the CA pauses it for this account (Let's Encrypt: 3,600); fix its DNS or challenge, then delete %s from the certificate storage", name, rec.Consecutive, g.failureKey(name))
			return nil, fmt.Errorf("%s: stopped after %d consecutive failed validations", name, rec.Consecutive)
		}
		if len(rec.Failures) >= failureBudget {
			next := rec.Failures[len(rec.Failures)-failureBudget].Add(failureWindow)
			g.log.Warn().Str("name", name).Int("failed_validations", len(rec.Failures)).Time("next_try", next).
				Msgf("%s: %d failed validations in the last hour; backing off until %s to stay under the CA's limit", name, len(rec.Failures), next.UTC().Format(time.RFC3339))
			return nil, fmt.Errorf("%s: failed validation budget spent; next try at %s", name, next.UTC().Format(time.RFC3339))
		}
	}
	for _, name := range csr.DNSNames {
		check := g.pre.check
		if g.dns != nil {
			check = g.dns.preflight
		}
		if err := check(ctx, name); err != nil {
			g.log.Warn().Str("name", name).Msgf("%s; waiting instead of ordering (certmagic retries with backoff)", err)
			return nil, fmt.Errorf("pre-check: %w", err)
		}
	}
	cert, err := g.ACMEIssuer.Issue(ctx, csr)
	if err == nil {
		for _, name := range csr.DNSNames {
			// issued: the consecutive count starts again
			_ = g.storage.Delete(context.WithoutCancel(ctx), g.failureKey(name))
		}
	}
	if err != nil && isValidationFailure(err) {
		cost := 1
		if !g.DisableHTTPChallenge && !g.DisableTLSALPNChallenge {
			cost = 2 // acmez may have tried both challenge types
		}
		for _, name := range csr.DNSNames {
			g.recordFailure(context.WithoutCancel(ctx), name, cost)
		}
	}
	return cert, err
}

// recordFailure adds failed validations to the name's stored count, so that
// a restart does not reset the budget.
func (g *guardedIssuer) recordFailure(ctx context.Context, name string, n int) {
	now := time.Now()
	rec, err := g.loadFailures(ctx, name, now)
	if err != nil {
		g.log.Error().Err(err).Msg("failed validation not counted")
		return
	}
	for range n {
		rec.Failures = append(rec.Failures, now)
	}
	rec.Consecutive += n
	b, _ := json.Marshal(rec)
	if err := g.storage.Store(ctx, g.failureKey(name), b); err != nil {
		g.log.Error().Err(err).Str("name", name).Msg("failed validation not counted")
		return
	}
	g.log.Warn().Str("name", name).Int("failed_validations_last_hour", len(rec.Failures)).Int("budget", failureBudget).Msg("validation failed at the CA")
}
