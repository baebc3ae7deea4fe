package acme

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// With the CA down, a certificate that cannot be renewed is still served,
// the expiry metric counts down, and the operational log warns as its
// remaining life crosses the alert fractions.
func TestUnrenewedCertificateServedAndAlerted(t *testing.T) {
	const lifetime = 12 * time.Second
	r := newRig(t, map[string]string{"stale.example.test": "127.0.0.1"}, lifetime)
	m := r.serve(r.config(ChallengeHTTP01), Options{renewCheck: time.Second, expiryCheck: 100 * time.Millisecond}, "stale.example.test")
	waitFor(t, 60*time.Second, "the certificate", func() bool { return m.Covers("stale.example.test") })
	r.pebble.Stop()
	viewer := r.viewer()
	_, first, err := r.get(viewer, "https://stale.example.test/")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, lifetime, "the 1/5 alert", func() bool {
		return strings.Contains(r.logs.String(), "of its lifetime left) and has not been renewed")
	})
	_, now, err := r.get(viewer, "https://stale.example.test/")
	if err != nil {
		t.Fatalf("after a failed renewal, before expiry: %v", err)
	}
	if now.SerialNumber.Cmp(first.SerialNumber) != 0 {
		t.Fatal("a certificate was renewed with the CA down")
	}
	var b bytes.Buffer
	m.WriteMetrics(&b)
	mm := regexp.MustCompile(`edgegate_certificate_expiry_seconds\{name="stale.example.test"\} (-?\d+)`).FindStringSubmatch(b.String())
	if mm == nil {
		t.Fatalf("no expiry metric for stale.example.test in:\n%s", b.String())
	}
	if left, _ := strconv.Atoi(mm[1]); left < 0 || left > int(lifetime/5/time.Second)+1 {
		t.Errorf("expiry metric %d s, want at most a fifth of %s left", left, lifetime)
	}
	for _, tt := range []struct {
		life time.Duration
		want float64
	}{{160 * time.Hour, 0.5}, {6 * time.Minute, 0.5}, {45 * 24 * time.Hour, 1.0 / 3}, {90 * 24 * time.Hour, 1.0 / 3}} {
		if got := renewalWindowRatio(tt.life); got != tt.want {
			t.Errorf("renewalWindowRatio(%s) = %v, want %v", tt.life, got, tt.want)
		}
	}
}
