package edge

import (
	"crypto/tls"
	"net/http"
	"slices"
)

// securityPolicy is a CloudFront viewer security policy: the lowest TLS
// version and, for TLS 1.2, the cipher suites a viewer may use.
type securityPolicy struct {
	minVersion uint16
	ciphers    []uint16 // nil = Go's secure defaults
}

var (
	gcmSuites = []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	}
	chachaSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256}
)

// securityPolicies maps CloudFront's policy names to what they allow.
// (A function, not a package variable, so nothing can mutate it.)
func securityPolicies() map[string]securityPolicy {
	return map[string]securityPolicy{
		"TLSv1":        {minVersion: tls.VersionTLS10},
		"TLSv1_2016":   {minVersion: tls.VersionTLS10},
		"TLSv1.1_2016": {minVersion: tls.VersionTLS11},
		"TLSv1.2_2018": {minVersion: tls.VersionTLS12},
		"TLSv1.2_2019": {minVersion: tls.VersionTLS12, ciphers: slices.Concat(gcmSuites, chachaSuites)},
		"TLSv1.2_2021": {minVersion: tls.VersionTLS12, ciphers: slices.Concat(gcmSuites, chachaSuites)},
		"TLSv1.2_2025": {minVersion: tls.VersionTLS12, ciphers: slices.Clone(gcmSuites)},
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
