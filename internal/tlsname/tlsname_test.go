package tlsname

import (
	"crypto/tls"
	"strings"
	"testing"
)

// opensslName derives OpenSSL's name of a TLS 1.2-and-below suite from its
// IANA name: the readable rule the constants in Cipher must follow.
func opensslName(iana string) string {
	kx, enc, _ := strings.Cut(strings.TrimPrefix(iana, "TLS_"), "_WITH_")
	prefix := map[string]string{"RSA": "", "ECDHE_RSA": "ECDHE-RSA-", "ECDHE_ECDSA": "ECDHE-ECDSA-"}[kx]
	cipher := map[string]string{
		"AES_128_GCM_SHA256": "AES128-GCM-SHA256", "AES_256_GCM_SHA384": "AES256-GCM-SHA384",
		"CHACHA20_POLY1305_SHA256": "CHACHA20-POLY1305", "AES_128_CBC_SHA": "AES128-SHA",
		"AES_256_CBC_SHA": "AES256-SHA", "AES_128_CBC_SHA256": "AES128-SHA256",
		"3DES_EDE_CBC_SHA": "DES-CBC3-SHA", "RC4_128_SHA": "RC4-SHA",
	}[enc]
	return prefix + cipher
}

func TestCipherCoversEverySuiteCryptoTLSKnows(t *testing.T) {
	for _, s := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		want := s.Name // TLS 1.3: the IANA name
		if strings.Contains(s.Name, "_WITH_") {
			want = opensslName(s.Name)
		}
		if got := Cipher(s.ID); got != want {
			t.Errorf("Cipher(%s) = %q, want %q", s.Name, got, want)
		}
	}
}

func TestCipherExamples(t *testing.T) {
	// Names as CloudFront's ssl-cipher field shows them.
	for id, want := range map[uint16]string{
		tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256:         "ECDHE-RSA-AES128-GCM-SHA256",
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: "ECDHE-ECDSA-CHACHA20-POLY1305",
		tls.TLS_AES_128_GCM_SHA256:                        "TLS_AES_128_GCM_SHA256",
		tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA:                 "DES-CBC3-SHA",
		0x1234:                                            "0x1234",
	} {
		if got := Cipher(id); got != want {
			t.Errorf("Cipher(0x%04x) = %q, want %q", id, got, want)
		}
	}
}

func TestVersion(t *testing.T) {
	for v, want := range map[uint16]string{tls.VersionTLS10: "TLSv1", tls.VersionTLS11: "TLSv1.1",
		tls.VersionTLS12: "TLSv1.2", tls.VersionTLS13: "TLSv1.3", 0x0300: ""} {
		if got := Version(v); got != want {
			t.Errorf("Version(0x%04x) = %q, want %q", v, got, want)
		}
	}
	if got := VersionOrHex(0x0300); got != "TLS version 0x0300" {
		t.Errorf("VersionOrHex(SSLv3) = %q", got)
	}
}

func BenchmarkCipher(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		_ = Cipher(tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)
	}
}
