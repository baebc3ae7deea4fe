package edge

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgegate/edgegate/internal/pki"
	"github.com/edgegate/edgegate/internal/tlsname"
)

// cloudFrontViewerCiphers is CloudFront's table "Supported protocols and
// ciphers between viewers and CloudFront" (docs.aws.amazon.com, CloudFront
// developer guide), restricted to what Go implements: for each policy, the
// TLS versions and the OpenSSL names of the TLS 1.0-1.2 suites. It is
// written out here, apart from tlspolicy.go, so that the test checks the
// handshakes against the table and not against the code.
var cloudFrontViewerCiphers = map[string]struct {
	versions []string
	ecdsa    []string // with an ECDSA certificate
	rsa      []string // with an RSA certificate
}{
	"TLSv1": {[]string{"TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"},
		[]string{"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES128-SHA256", "ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-ECDSA-AES256-SHA"},
		[]string{"ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-SHA256", "ECDHE-RSA-AES128-SHA", "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-CHACHA20-POLY1305", "ECDHE-RSA-AES256-SHA",
			"AES128-GCM-SHA256", "AES256-GCM-SHA384", "AES128-SHA256", "AES256-SHA", "AES128-SHA", "DES-CBC3-SHA"}},
	"TLSv1_2016": {[]string{"TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"},
		[]string{"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES128-SHA256", "ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-ECDSA-AES256-SHA"},
		[]string{"ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-SHA256", "ECDHE-RSA-AES128-SHA", "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-CHACHA20-POLY1305", "ECDHE-RSA-AES256-SHA",
			"AES128-GCM-SHA256", "AES256-GCM-SHA384", "AES128-SHA256", "AES256-SHA", "AES128-SHA"}},
	"TLSv1.1_2016": {[]string{"TLSv1.1", "TLSv1.2", "TLSv1.3"},
		[]string{"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES128-SHA256", "ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-ECDSA-AES256-SHA"},
		[]string{"ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-SHA256", "ECDHE-RSA-AES128-SHA", "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-CHACHA20-POLY1305", "ECDHE-RSA-AES256-SHA",
			"AES128-GCM-SHA256", "AES256-GCM-SHA384", "AES128-SHA256", "AES256-SHA", "AES128-SHA"}},
	"TLSv1.2_2018": {[]string{"TLSv1.2", "TLSv1.3"},
		[]string{"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES128-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305"},
		[]string{"ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-SHA256", "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-CHACHA20-POLY1305",
			"AES128-GCM-SHA256", "AES256-GCM-SHA384", "AES128-SHA256"}},
	"TLSv1.2_2019": {[]string{"TLSv1.2", "TLSv1.3"},
		[]string{"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES128-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305"},
		[]string{"ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-SHA256", "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-CHACHA20-POLY1305"}},
	"TLSv1.2_2021": {[]string{"TLSv1.2", "TLSv1.3"},
		[]string{"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-ECDSA-CHACHA20-POLY1305"},
		[]string{"ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-CHACHA20-POLY1305"}},
	"TLSv1.2_2025": {[]string{"TLSv1.2", "TLSv1.3"},
		[]string{"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384"},
		[]string{"ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384"}},
	"TLSv1.3_2025": {[]string{"TLSv1.3"}, nil, nil},
}

// Each minimum_protocol_version offers exactly CloudFront's protocols and,
// for TLS 1.0 to 1.2, exactly its cipher suites: every suite Go knows is
// tried alone at every version, with an ECDSA and with an RSA certificate.
// An unknown and a missing SNI get the documented unrecognized_name alert.
func TestSecurityPolicyHandshakes(t *testing.T) {
	e := newTestEnv(t)
	names := map[string]string{} // policy → alias
	var dists strings.Builder
	var aliases []string
	for policy := range cloudFrontViewerCiphers {
		alias := strings.ToLower(strings.NewReplacer(".", "-", "_", "-").Replace(policy)) + ".example.test"
		names[policy], aliases = alias, append(aliases, alias)
		fmt.Fprintf(&dists, `  - aliases: [%s]
    minimum_protocol_version: %s
    origins: [{id: app, domain_name: app.example.test}]
    default_behavior: {target: app}
`, alias, policy)
	}
	certs := map[string][2]string{}
	certs["ecdsa"] = e.writeLeaf("ecdsa", aliases, false)
	certs["rsa"] = e.writeLeaf("rsa", aliases, true)

	var all []uint16
	for _, cs := range slices.Concat(tls.CipherSuites(), tls.InsecureCipherSuites()) {
		all = append(all, cs.ID)
	}
	versions := map[string]uint16{"TLSv1": tls.VersionTLS10, "TLSv1.1": tls.VersionTLS11, "TLSv1.2": tls.VersionTLS12, "TLSv1.3": tls.VersionTLS13}
	for _, keyType := range []string{"ecdsa", "rsa"} {
		cfg := fmt.Sprintf(`edge:
  location: TLS1
  listen: {http: off, https: "127.0.0.1:0"}
  certificates:
    files: [{cert: %q, key: %q}]
distributions:
%s`, certs[keyType][0], certs[keyType][1], dists.String())
		re := e.startEdge(cfg)
		dial := func(sni string, c *tls.Config) (*tls.Conn, error) {
			c.ServerName, c.RootCAs = sni, e.ca.Pool()
			return tls.DialWithDialer(&netDialer, "tcp", re.Addr("https"), c)
		}
		for policy, want := range cloudFrontViewerCiphers {
			t.Run(keyType+"/"+policy, func(t *testing.T) {
				var gotVersions, gotCiphers []string
				for vname, v := range versions {
					if c, err := dial(names[policy], &tls.Config{MinVersion: v, MaxVersion: v}); err == nil {
						gotVersions = append(gotVersions, vname)
						c.Close()
					}
					if v == tls.VersionTLS13 {
						continue
					}
					for _, id := range all {
						c, err := dial(names[policy], &tls.Config{MinVersion: v, MaxVersion: v, CipherSuites: []uint16{id}})
						if err != nil {
							continue
						}
						if name := tlsname.Cipher(c.ConnectionState().CipherSuite); !slices.Contains(gotCiphers, name) {
							gotCiphers = append(gotCiphers, name)
						}
						c.Close()
					}
				}
				wantCiphers := want.ecdsa
				if keyType == "rsa" {
					wantCiphers = want.rsa
				}
				slices.Sort(gotVersions)
				slices.Sort(gotCiphers)
				wv, wc := slices.Sorted(slices.Values(want.versions)), slices.Sorted(slices.Values(wantCiphers))
				if !slices.Equal(gotVersions, wv) {
					t.Errorf("protocols %v, want %v", gotVersions, wv)
				}
				if !slices.Equal(gotCiphers, wc) {
					t.Errorf("TLS 1.0-1.2 ciphers\n got %v\nwant %v", gotCiphers, wc)
				}
			})
		}
		for _, sni := range []string{"unknown.example.test", ""} {
			_, err := dial(sni, &tls.Config{InsecureSkipVerify: sni == ""})
			if err == nil || !strings.Contains(err.Error(), "unrecognized name") {
				t.Errorf("%s certificate, SNI %q: %v, want the unrecognized_name alert", keyType, sni, err)
			}
		}
	}
}

var netDialer = net.Dialer{Timeout: 10 * time.Second}

// writeLeaf writes a certificate for names from the test CA, with an RSA
// key when rsaKey (pki issues ECDSA only), and returns its files.
func (e *testEnv) writeLeaf(name string, names []string, rsaKey bool) [2]string {
	e.t.Helper()
	if !rsaKey {
		c, k, err := e.issue(pki.LeafOptions{Names: names}).WriteFiles(e.dir, name)
		if err != nil {
			e.t.Fatal(err)
		}
		return [2]string{c, k}
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		e.t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, e.ca.Cert, key.Public(), e.ca.Key)
	if err != nil {
		e.t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(e.dir, name+".pem"), filepath.Join(e.dir, name+"-key.pem")
	chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), e.ca.CertPEM()...)
	if err := os.WriteFile(certFile, chain, 0o600); err != nil {
		e.t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		e.t.Fatal(err)
	}
	return [2]string{certFile, keyFile}
}
