package acme

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"slices"
	"time"
)

// expiryAlerts are the fractions of a certificate's lifetime left at which
// an unrenewed certificate is reported. Renewal is due at 1/2 (under 10
// days) or 1/3 of the lifetime left, or earlier by ARI: a certificate still
// served at 1/5 has missed its renewal, at 1/20 it is about to fail
// handshakes.
var expiryAlerts = []float64{1.0 / 5, 1.0 / 10, 1.0 / 20}

// renewalWindowRatio is the fraction of a certificate's lifetime left at
// which it is renewed when the CA offers no ARI window: half for a
// lifetime under 10 days (six-day certificates then renew after three
// days, leaving as much again for retries), a third above.
func renewalWindowRatio(lifetime time.Duration) float64 {
	if lifetime < 10*24*time.Hour {
		return 1.0 / 2
	}
	return 1.0 / 3
}

// certExpiry is a served certificate's name and validity.
type certExpiry struct {
	name      string
	notBefore time.Time
	notAfter  time.Time
	serial    string
}

// expiries lists, sorted by name, the certificate currently served for
// each configured name.
func (m *Manager) expiries() []certExpiry {
	var out []certExpiry
	add := func(name string, leaf *x509.Certificate) {
		if leaf != nil {
			out = append(out, certExpiry{name, leaf.NotBefore, leaf.NotAfter, leaf.SerialNumber.String()})
		}
	}
	for n := range m.names {
		if m.magic != nil && m.acmeNames[n] {
			var newest *x509.Certificate
			for _, c := range m.cache.AllMatchingCertificates(n) {
				if c.Leaf != nil && (newest == nil || c.Leaf.NotAfter.After(newest.NotAfter)) {
					newest = c.Leaf
				}
			}
			if newest != nil {
				add(n, newest)
				continue
			}
		}
		if c := m.find(n); c != nil {
			add(n, c.Leaf)
		}
	}
	slices.SortFunc(out, func(a, b certExpiry) int {
		if a.name < b.name {
			return -1
		}
		if a.name > b.name {
			return 1
		}
		return 0
	})
	return out
}

// WriteMetrics writes, in the Prometheus text format, the seconds left
// before the certificate served for each configured name expires
// (negative once expired).
func (m *Manager) WriteMetrics(w io.Writer) {
	fmt.Fprintln(w, "# HELP edgegate_certificate_expiry_seconds Seconds until the certificate served for a name expires.")
	fmt.Fprintln(w, "# TYPE edgegate_certificate_expiry_seconds gauge")
	now := time.Now()
	for _, e := range m.expiries() {
		fmt.Fprintf(w, "edgegate_certificate_expiry_seconds{name=%q} %.0f\n", e.name, e.notAfter.Sub(now).Seconds())
	}
}

// watchExpiry logs, once per certificate and threshold, a certificate that
// is still served with less than an alert fraction of its lifetime left:
// its renewal has failed so far, and it keeps being served until it
// expires.
func (m *Manager) watchExpiry(ctx context.Context, every time.Duration) {
	alerted := map[string]int{} // serial → alerts sent
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		now := time.Now()
		for _, e := range m.expiries() {
			life := e.notAfter.Sub(e.notBefore)
			if life <= 0 {
				continue
			}
			left := e.notAfter.Sub(now)
			frac := float64(left) / float64(life)
			n := 0
			for _, a := range expiryAlerts {
				if frac < a {
					n++
				}
			}
			if n <= alerted[e.serial] {
				continue
			}
			alerted[e.serial] = n
			ev := m.opts.Logger.Warn()
			if n == len(expiryAlerts) {
				ev = m.opts.Logger.Error()
			}
			ev.Str("component", "acme").Str("name", e.name).Str("serial", e.serial).Time("not_after", e.notAfter).
				Float64("lifetime_left", frac).
				Msgf("certificate for %s expires in %s (%.0f%% of its lifetime left) and has not been renewed; it is served until it expires", e.name, left.Round(time.Second), 100*frac)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
