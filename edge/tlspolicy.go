package edge

import (
	"crypto/tls"
	"net/http"
	"slices"
)

// securityPolicy is a CloudFront viewer security policy: the lowest TLS
// version and the TLS 1.0-1.2 cipher suites a viewer may use.
type securityPolicy struct {
	minVersion uint16
	ciphers    []uint16 // nil: TLS 1.3 only, where Go picks the suites
}

// The cipher groups of CloudFront's table "Supported protocols and ciphers
// between viewers and CloudFront" (OpenSSL names in the comments), as far as
// Go implements them. Go has no ECDHE-*-AES256-SHA384 (CBC with SHA-384),
// no RC4-MD5 and no SSLv3, and does not let a server choose TLS 1.3 suites
// (TLSv1.3_2025 leaves out TLS_CHACHA20_POLY1305_SHA256; Go keeps it).
// Each suite needs a certificate of its key type: the ECDHE-ECDSA suites an
// ECDSA certificate, the others an RSA one.
var (
	// ECDHE-{ECDSA,RSA}-AES128-GCM-SHA256, ECDHE-{ECDSA,RSA}-AES256-GCM-SHA384
	ecdheGCM = []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	}
	// ECDHE-{ECDSA,RSA}-CHACHA20-POLY1305
	ecdheChaCha = []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256}
	// ECDHE-{ECDSA,RSA}-AES128-SHA256
	ecdheSHA256 = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256}
	// ECDHE-{ECDSA,RSA}-AES128-SHA, ECDHE-{ECDSA,RSA}-AES256-SHA
	ecdheSHA1 = []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
	}
	// AES128-GCM-SHA256, AES256-GCM-SHA384, AES128-SHA256 (RSA key exchange)
	rsaTLS12 = []uint16{tls.TLS_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_RSA_WITH_AES_256_GCM_SHA384, tls.TLS_RSA_WITH_AES_128_CBC_SHA256}
	// AES256-SHA, AES128-SHA
	rsaSHA1 = []uint16{tls.TLS_RSA_WITH_AES_256_CBC_SHA, tls.TLS_RSA_WITH_AES_128_CBC_SHA}
	// DES-CBC3-SHA
	rsa3DES = []uint16{tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA}
)

// securityPolicies maps CloudFront's policy names to what they allow.
// (A function, not a package variable, so nothing can mutate it.)
func securityPolicies() map[string]securityPolicy {
	legacy := slices.Concat(ecdheGCM, ecdheSHA256, ecdheSHA1, ecdheChaCha, rsaTLS12, rsaSHA1)
	return map[string]securityPolicy{
		"TLSv1":        {minVersion: tls.VersionTLS10, ciphers: slices.Concat(legacy, rsa3DES)},
		"TLSv1_2016":   {minVersion: tls.VersionTLS10, ciphers: legacy},
		"TLSv1.1_2016": {minVersion: tls.VersionTLS11, ciphers: slices.Clone(legacy)},
		"TLSv1.2_2018": {minVersion: tls.VersionTLS12, ciphers: slices.Concat(ecdheGCM, ecdheSHA256, ecdheChaCha, rsaTLS12)},
		"TLSv1.2_2019": {minVersion: tls.VersionTLS12, ciphers: slices.Concat(ecdheGCM, ecdheSHA256, ecdheChaCha)},
		"TLSv1.2_2021": {minVersion: tls.VersionTLS12, ciphers: slices.Concat(ecdheGCM, ecdheChaCha)},
		"TLSv1.2_2025": {minVersion: tls.VersionTLS12, ciphers: slices.Clone(ecdheGCM)},
		"TLSv1.3_2025": {minVersion: tls.VersionTLS13},
	}
}

func securityPolicyNames() []string {
	var names []string
	for n := range securityPolicies() {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// isHopByHop reports the connection-level headers a proxy must not forward
// (RFC 9110 §7.6.1); those named in Connection are found at run time.
// Header keys are nearly always canonical already, and then
// CanonicalHeaderKey costs no allocation (unlike a ToLower per header).
func isHopByHop(h string) bool {
	switch http.CanonicalHeaderKey(h) {
	case "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
		"Te", "Trailer", "Transfer-Encoding", "Upgrade":
		return true
	}
	return false
}
