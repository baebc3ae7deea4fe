package acme

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/edgegate/edgegate/internal/testpebble"
)

// Over DNS-01, with TXT records published by TSIG-signed RFC 2136 updates
// to a real authoritative server that Pebble's VA asks, a wildcard alias
// gets one certificate that serves two names under it; the apex, which
// the wildcard does not cover, gets none; the challenge records are
// removed afterwards.
func TestWildcardOverDNS01(t *testing.T) {
	auth := startAuthDNS(t, "example.test", map[string]string{"a.example.test": "127.0.0.1", "b.example.test": "127.0.0.1"})
	r := newRigWith(t, nil, testpebble.Config{DNS: auth.addr}, 0)
	cfg := r.config(ChallengeDNS01)
	cfg.ACME.DNS = auth.dnsConfig()
	if ps := cfg.Validate(); len(ps) > 0 {
		t.Fatalf("config problems: %v", ps)
	}
	m := r.serve(cfg, Options{}, "*.example.test")
	waitFor(t, 60*time.Second, "the wildcard certificate", func() bool { return m.Covers("*.example.test") })
	viewer := r.viewer()
	for _, host := range []string{"a.example.test", "b.example.test"} {
		body, cert, err := r.get(viewer, "https://"+host+"/")
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		if body != "hello from "+host || len(cert.DNSNames) != 1 || cert.DNSNames[0] != "*.example.test" {
			t.Errorf("%s: body %q, certificate for %v; want the wildcard", host, body, cert.DNSNames)
		}
	}
	if _, _, err := r.get(viewer, "https://example.test/"); err == nil {
		t.Error("the apex was served, but the wildcard does not cover it and it is not configured")
	}
	if n := r.pebble.Orders(); n != 1 {
		t.Errorf("Pebble saw %d orders, want 1", n)
	}
	// pre-flight add+delete, challenge add+delete
	waitFor(t, 10*time.Second, "the challenge record's removal", func() bool {
		auth.mu.Lock()
		defer auth.mu.Unlock()
		return len(auth.txt["_acme-challenge.example.test."]) == 0
	})
	if n := auth.updates.Load(); n < 4 {
		t.Errorf("the DNS server took %d updates, want at least 4 (pre-flight and challenge, each added and removed)", n)
	}
}

// A TSIG key the zone's server does not accept fails the DNS pre-flight:
// no order is placed at the CA (no failed authorization spent), and the log
// says why.
func TestDNSPreflightRefusedUpdateOrdersNothing(t *testing.T) {
	auth := startAuthDNS(t, "example.test", nil)
	r := newRigWith(t, nil, testpebble.Config{DNS: auth.addr}, 0)
	cfg := r.config(ChallengeDNS01)
	cfg.ACME.DNS = auth.dnsConfig()
	cfg.ACME.DNS.TSIG.Secret = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXk="
	r.serve(cfg, Options{}, "*.example.test")
	waitFor(t, 30*time.Second, "the pre-flight's failure in the log", func() bool {
		return strings.Contains(r.logs.String(), "DNS pre-flight for *.example.test")
	})
	if n := r.pebble.Orders(); n != 0 {
		t.Errorf("Pebble saw %d orders after a refused pre-flight", n)
	}
	if n := auth.updates.Load(); n != 0 {
		t.Errorf("the server accepted %d updates signed with the wrong key", n)
	}
}

// Wildcards and IP addresses are refused in config, naming what they
// need, unless the certificates block can obtain them.
func TestNameProblem(t *testing.T) {
	dns := &DNSConfig{Provider: ProviderRFC2136, Server: "127.0.0.1:53", TSIG: TSIGConfig{Name: "k", Secret: "c2VjcmV0"}}
	for _, tt := range []struct {
		acme *IssuerConfig
		name string
		want string
	}{
		{&IssuerConfig{}, "*.example.com", "needs the DNS-01 challenge"},
		{&IssuerConfig{Challenges: []string{ChallengeDNS01}, DNS: dns}, "*.example.com", ""},
		{&IssuerConfig{}, "192.0.2.7", "needs certificates.acme.profile: shortlived"},
		{&IssuerConfig{Profile: "classic"}, "2001:db8::7", "needs certificates.acme.profile: shortlived"},
		{&IssuerConfig{Profile: "shortlived"}, "2001:db8::7", ""},
		{&IssuerConfig{}, "www.example.com", ""},
	} {
		got := (&Config{ACME: tt.acme}).NameProblem(tt.name)
		if tt.want == "" && got != "" || !strings.Contains(got, tt.want) {
			t.Errorf("NameProblem(%s) with %+v = %q, want %q", tt.name, tt.acme, got, tt.want)
		}
	}
	bad := Config{ACME: &IssuerConfig{Directory: "https://ca.example/dir", Challenges: []string{ChallengeDNS01, ChallengeHTTP01}}}
	var keys []string
	for _, p := range bad.Validate() {
		keys = append(keys, p.Key)
	}
	if got := strings.Join(keys, " "); got != "acme.challenges[0] acme.dns" {
		t.Errorf("problems at %q, want dns-01 combined with another challenge and the missing dns block", got)
	}
	_ = context.Background
}
