package acme

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgegate/edgegate/internal/testpebble"
)

// The CA's profiles as Let's Encrypt names them, with lifetimes short
// enough for a test: shortlived is picked at random by Pebble for an order
// that names no profile, so a renewal that dropped it would show as a
// 90-day certificate.
func profileRig(t *testing.T, short time.Duration) *rig {
	return newRigWith(t, map[string]string{"short.example.test": "127.0.0.1"}, rigPebble(map[string]time.Duration{
		"classic":    90 * 24 * time.Hour,
		"tlsserver":  45 * 24 * time.Hour,
		"shortlived": short,
	}), 0)
}

// An unknown profile is refused at start, naming the profiles the CA
// offers, before any order.
func TestUnknownProfileRefused(t *testing.T) {
	r := profileRig(t, time.Hour)
	cfg := r.config(ChallengeHTTP01)
	cfg.ACME.Profile = "sixdays"
	_, err := NewManager(context.Background(), cfg, Options{Names: []string{"www.example.test"}, Resolver: r.dns.Addr()})
	if !errors.Is(err, ErrUnknownProfile) {
		t.Fatalf("NewManager with profile sixdays: %v, want ErrUnknownProfile", err)
	}
	if !strings.Contains(err.Error(), "classic, shortlived, tlsserver") {
		t.Errorf("error %q does not name the profiles offered", err)
	}
	if n := r.pebble.Orders(); n != 0 {
		t.Errorf("Pebble saw %d orders, want none", n)
	}
	cfg.ACME.Profile = "shortlived"
	if err := CheckProfile(context.Background(), cfg.ACME); err != nil {
		t.Errorf("CheckProfile(shortlived): %v", err)
	}
}

// Under a stream of new TLS connections, a shortlived certificate is
// renewed at least five times: every handshake succeeds, every certificate
// served has the shortlived lifetime (the profile is kept on renewal), and
// Pebble sees no more orders than certificates served (one in flight at
// the end at most). The name is this test's own: certmagic's job queue is
// process-wide, and another test's retrying renewal of the same name would
// hold this one's back.
func TestShortlivedRenewedUnderLoad(t *testing.T) {
	const lifetime = 15 * time.Second
	r := profileRig(t, lifetime)
	cfg := r.config(ChallengeHTTP01)
	cfg.ACME.Profile = "shortlived"
	m := r.serve(cfg, Options{renewCheck: time.Second}, "short.example.test")
	waitFor(t, 60*time.Second, "the first certificate", func() bool { return m.Covers("short.example.test") })

	var (
		mu      sync.Mutex
		serials = map[string]time.Duration{}
		failed  atomic.Int32
		wg      sync.WaitGroup
	)
	const renewals = 5
	deadline := time.Now().Add(renewals*lifetime + 30*time.Second)
	done := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(serials) > renewals
	}
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := r.viewer()
			client.Transport.(*http.Transport).DisableKeepAlives = true
			for time.Now().Before(deadline) && !done() {
				_, cert, err := r.get(client, "https://short.example.test/")
				if err != nil {
					failed.Add(1)
					t.Errorf("handshake or request: %v", err)
					return
				}
				mu.Lock()
				serials[cert.SerialNumber.String()] = cert.NotAfter.Sub(cert.NotBefore)
				mu.Unlock()
				time.Sleep(20 * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(serials) <= renewals {
		t.Fatalf("saw %d certificates within %s, want %d (first + %d renewals)", len(serials), renewals*lifetime+30*time.Second, renewals+1, renewals)
	}
	for s, life := range serials {
		if life > lifetime {
			t.Errorf("certificate %s lives %s: not the shortlived profile (%s)", s, life, lifetime)
		}
	}
	if n := r.pebble.Orders(); n > len(serials)+1 {
		t.Errorf("Pebble saw %d orders for %d certificates served", n, len(serials))
	}
	t.Logf("%d certificates served, %d orders at Pebble", len(serials), r.pebble.Orders())
}

// rigPebble is a Pebble config offering the given profiles.
func rigPebble(profiles map[string]time.Duration) testpebble.Config {
	return testpebble.Config{Profiles: profiles}
}

// Under shortlived an IP alias is ordered as an IP certificate and served
// to a viewer that connects by address (and so sends no SNI); under any
// other profile it is not ordered, and the log says why.
func TestIPAliasUnderShortlived(t *testing.T) {
	r := profileRig(t, time.Hour)
	cfg := r.config(ChallengeHTTP01)
	cfg.ACME.Profile = "shortlived"
	m := r.serve(cfg, Options{}, "127.0.0.1")
	waitFor(t, 60*time.Second, "the IP certificate", func() bool { return m.Covers("127.0.0.1") })
	_, cert, err := r.get(r.viewer(), "https://127.0.0.1/")
	if err != nil {
		t.Fatal(err)
	}
	if len(cert.IPAddresses) != 1 || !cert.IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)) || len(cert.DNSNames) != 0 {
		t.Errorf("certificate for IPs %v, names %v; want 127.0.0.1 only", cert.IPAddresses, cert.DNSNames)
	}
	if life := cert.NotAfter.Sub(cert.NotBefore); life > time.Hour {
		t.Errorf("IP certificate lives %s: not the shortlived profile", life)
	}

	r2 := profileRig(t, time.Hour)
	cfg2 := r2.config(ChallengeHTTP01)
	cfg2.ACME.Profile = "classic"
	m2 := r2.serve(cfg2, Options{}, "127.0.0.1")
	if p := m2.Pending(); len(p) != 0 {
		t.Errorf("with profile classic, pending %v: an IP alias should not be ordered", p)
	}
	if !strings.Contains(r2.logs.String(), "an IP address is ordered only with certificates.acme.profile: shortlived") {
		t.Errorf("log does not say why the IP alias is not ordered:\n%s", r2.logs.String())
	}
	if n := r2.pebble.Orders(); n != 0 {
		t.Errorf("Pebble saw %d orders under classic", n)
	}
}
