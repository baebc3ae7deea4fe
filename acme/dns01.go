package acme

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/libdns/libdns"
	"github.com/miekg/dns"
	"go.uber.org/zap"
)

// DNSConfig is the DNS provider the DNS-01 challenge publishes its TXT
// records with.
type DNSConfig struct {
	// Provider is the kind of DNS service: rfc2136 (dynamic update, as
	// BIND, Knot and PowerDNS accept).
	Provider string `yaml:"provider"`
	// Server is the HOST:PORT of the zone's primary authoritative server,
	// which takes the updates (port 53 when omitted).
	Server string `yaml:"server"`
	// TSIG is the key updates are signed with.
	TSIG TSIGConfig `yaml:"tsig"`
}

// TSIGConfig is an RFC 8945 transaction signature key.
type TSIGConfig struct {
	// Name is the key's name, as the server knows it.
	Name string `yaml:"name"`
	// Algorithm is hmac-sha256 (default), hmac-sha384, hmac-sha512 or
	// hmac-sha1.
	Algorithm string `yaml:"algorithm"`
	// Secret is the key, base64-encoded (as tsig-keygen prints it).
	Secret string `yaml:"secret"`
}

// DNS provider names understood in DNSConfig.Provider.
const ProviderRFC2136 = "rfc2136"

// dnsPropagationTimeout bounds the wait for a TXT record to be visible at
// the zone's authoritative server, in the pre-flight and before the CA is
// asked to look.
const dnsPropagationTimeout = 2 * time.Minute

var tsigAlgorithms = map[string]string{
	"hmac-sha1":   dns.HmacSHA1,
	"hmac-sha256": dns.HmacSHA256,
	"hmac-sha384": dns.HmacSHA384,
	"hmac-sha512": dns.HmacSHA512,
}

func (d *DNSConfig) validate() []Problem {
	var ps []Problem
	if d.Provider != ProviderRFC2136 {
		ps = append(ps, Problem{"acme.dns.provider", fmt.Sprintf("%q: use rfc2136", d.Provider)})
	}
	if d.Server == "" {
		ps = append(ps, Problem{"acme.dns.server", "missing: the HOST:PORT of the zone's primary server, which accepts dynamic updates"})
	} else if _, _, err := net.SplitHostPort(d.serverAddr()); err != nil {
		ps = append(ps, Problem{"acme.dns.server", fmt.Sprintf("%q is not HOST:PORT", d.Server)})
	}
	if d.TSIG.Name == "" {
		ps = append(ps, Problem{"acme.dns.tsig.name", "missing: updates must be signed with a TSIG key"})
	}
	if _, ok := tsigAlgorithms[d.tsigAlgorithm()]; !ok {
		ps = append(ps, Problem{"acme.dns.tsig.algorithm", fmt.Sprintf("%q: use hmac-sha256, hmac-sha384, hmac-sha512 or hmac-sha1", d.TSIG.Algorithm)})
	}
	if b, err := base64.StdEncoding.DecodeString(d.TSIG.Secret); err != nil || len(b) == 0 {
		ps = append(ps, Problem{"acme.dns.tsig.secret", "missing or not base64"})
	}
	return ps
}

func (d *DNSConfig) serverAddr() string {
	if _, _, err := net.SplitHostPort(d.Server); err != nil && !strings.Contains(d.Server, ":") {
		return net.JoinHostPort(d.Server, "53")
	}
	return d.Server
}

func (d *DNSConfig) tsigAlgorithm() string {
	if d.TSIG.Algorithm == "" {
		return "hmac-sha256"
	}
	return strings.ToLower(strings.TrimSuffix(d.TSIG.Algorithm, "."))
}

// rfc2136 is a libdns provider (what certmagic's DNS-01 solver drives)
// that adds and deletes records with TSIG-signed RFC 2136 updates.
// No libdns RFC 2136 provider is available from the module proxy, and
// miekg/dns already does the wire work.
type rfc2136 struct {
	server  string
	keyName string // FQDN
	alg     string // dns.Hmac*
	secret  string
}

func newRFC2136(d *DNSConfig) *rfc2136 {
	return &rfc2136{server: d.serverAddr(), keyName: dns.Fqdn(d.TSIG.Name), alg: tsigAlgorithms[d.tsigAlgorithm()], secret: d.TSIG.Secret}
}

// AppendRecords adds records to zone.
func (p *rfc2136) AppendRecords(ctx context.Context, zone string, recs []libdns.Record) ([]libdns.Record, error) {
	rrs, err := p.toRRs(zone, recs)
	if err != nil {
		return nil, err
	}
	m := new(dns.Msg)
	m.SetUpdate(dns.Fqdn(zone))
	m.Insert(rrs)
	if err := p.exchange(ctx, m); err != nil {
		return nil, err
	}
	return recs, nil
}

// DeleteRecords removes exactly the given records from zone.
func (p *rfc2136) DeleteRecords(ctx context.Context, zone string, recs []libdns.Record) ([]libdns.Record, error) {
	rrs, err := p.toRRs(zone, recs)
	if err != nil {
		return nil, err
	}
	m := new(dns.Msg)
	m.SetUpdate(dns.Fqdn(zone))
	m.Remove(rrs)
	if err := p.exchange(ctx, m); err != nil {
		return nil, err
	}
	return recs, nil
}

func (p *rfc2136) toRRs(zone string, recs []libdns.Record) ([]dns.RR, error) {
	out := make([]dns.RR, 0, len(recs))
	for _, r := range recs {
		rr := r.RR()
		if rr.Type != "TXT" {
			return nil, fmt.Errorf("rfc2136: record type %s: only TXT is published", rr.Type)
		}
		ttl := uint32(rr.TTL / time.Second)
		if ttl == 0 {
			ttl = 60
		}
		out = append(out, &dns.TXT{
			Hdr: dns.RR_Header{Name: libdns.AbsoluteName(rr.Name, dns.Fqdn(zone)), Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: ttl},
			Txt: []string{rr.Data},
		})
	}
	return out, nil
}

// exchange sends a signed update over TCP and checks the answer.
func (p *rfc2136) exchange(ctx context.Context, m *dns.Msg) error {
	m.SetTsig(p.keyName, p.alg, 300, time.Now().Unix())
	c := &dns.Client{Net: "tcp", Timeout: 10 * time.Second, TsigSecret: map[string]string{p.keyName: p.secret}}
	r, _, err := c.ExchangeContext(ctx, m, p.server)
	if err != nil {
		return fmt.Errorf("dynamic update at %s: %w", p.server, err)
	}
	if r.Rcode != dns.RcodeSuccess {
		return fmt.Errorf("dynamic update at %s refused: %s", p.server, dns.RcodeToString[r.Rcode])
	}
	return nil
}

// dnsPreflight is the DNS-01 counterpart of the HTTP pre-check: before an
// order spends an authorization at the CA, it publishes a throw-away TXT
// record next to the challenge's, waits (bounded) until the zone's
// primary server answers it, and deletes it. A wrong TSIG key, a zone the
// server is not primary for, or an update policy that refuses the name
// then costs no failed validation.
func (p *rfc2136) preflight(ctx context.Context, name string) error {
	fqdn := dns.Fqdn("_acme-challenge." + strings.TrimPrefix(name, "*."))
	zone, err := p.zoneOf(ctx, fqdn)
	if err != nil {
		return err
	}
	rnd := make([]byte, 16)
	_, _ = rand.Read(rnd)
	value := "edgegate-preflight-" + hex.EncodeToString(rnd)
	rec := []libdns.Record{libdns.TXT{Name: libdns.RelativeName(fqdn, zone), TTL: 60 * time.Second, Text: value}}
	if _, err := p.AppendRecords(ctx, zone, rec); err != nil {
		return fmt.Errorf("DNS pre-flight for %s in zone %s: %w", name, zone, err)
	}
	defer func() { _, _ = p.DeleteRecords(context.WithoutCancel(ctx), zone, rec) }()
	ctx, cancel := context.WithTimeout(ctx, dnsPropagationTimeout)
	defer cancel()
	for {
		seen, err := p.hasTXT(ctx, fqdn, value)
		if seen {
			return nil
		}
		select {
		case <-ctx.Done():
			if err == nil {
				err = errors.New("not visible")
			}
			return fmt.Errorf("DNS pre-flight for %s: the TXT record %s was accepted but is not answered by %s after %s: %v", name, fqdn, p.server, dnsPropagationTimeout, err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// zoneOf finds the zone fqdn is in by asking the server for SOA records,
// walking up from fqdn.
func (p *rfc2136) zoneOf(ctx context.Context, fqdn string) (string, error) {
	zone, err := certmagic.FindZoneByFQDN(ctx, zap.NewNop(), fqdn, []string{p.server})
	if err != nil {
		return "", fmt.Errorf("zone of %s at %s: %w", fqdn, p.server, err)
	}
	return zone, nil
}

func (p *rfc2136) hasTXT(ctx context.Context, fqdn, value string) (bool, error) {
	m := new(dns.Msg)
	m.SetQuestion(fqdn, dns.TypeTXT)
	c := &dns.Client{Net: "tcp", Timeout: 5 * time.Second}
	r, _, err := c.ExchangeContext(ctx, m, p.server)
	if err != nil {
		return false, err
	}
	for _, rr := range r.Answer {
		if t, ok := rr.(*dns.TXT); ok && strings.Join(t.Txt, "") == value {
			return true, nil
		}
	}
	return false, nil
}
