// Command democerts writes the compose demo's private PKI into a directory
// (configs/compose/certs): the CA and certificate of Pebble's own HTTPS API,
// the origin tier's CA and its certificate for origin.example.test, and the
// edges' client CA and client certificate for mutual TLS to the origin tier.
//
// These keys are public, committed so that `docker compose up` and the
// process-topology test use the very same files: they protect nothing but
// the demo. Never use them for a real deployment.
//
//	go run ./internal/democerts -dir configs/compose/certs   (make compose-certs)
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/edgegate/edgegate/internal/pki"
)

func main() {
	dir := flag.String("dir", "configs/compose/certs", "directory to write the PEM files to")
	flag.Parse()
	if err := write(*dir); err != nil {
		fmt.Fprintf(os.Stderr, "democerts: %v\n", err)
		os.Exit(1)
	}
}

// validity is long so that the committed files outlive the project's
// releases; the compose test fails a year before they expire.
const validity = 10 * 365 * 24 * time.Hour

// leafSpec is one certificate an authority issues.
type leafSpec struct {
	file   string
	names  []string
	client bool
}

func write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	notAfter := time.Now().Add(validity)
	issue := []struct {
		ca, caName string // file name and common name of the authority
		leaves     []leafSpec
	}{
		{"pebble-api-ca", "edgegate demo Pebble API CA", []leafSpec{{"pebble-api", []string{"pebble", "localhost", "127.0.0.1"}, false}}},
		{"origin-ca", "edgegate demo origin CA", []leafSpec{{"origin", []string{"origin.example.test"}, false}}},
		{"edge-ca", "edgegate demo edge client CA", []leafSpec{{"edge-client", []string{"edge.example.test"}, true}}},
	}
	for _, a := range issue {
		ca, err := pki.NewAuthority(a.caName)
		if err != nil {
			return err
		}
		if err := ca.WriteFile(filepath.Join(dir, a.ca+".pem")); err != nil {
			return err
		}
		for _, l := range a.leaves {
			leaf, err := ca.Issue(pki.LeafOptions{Names: l.names, Client: l.client, NotAfter: notAfter})
			if err != nil {
				return err
			}
			_, keyFile, err := leaf.WriteFiles(dir, l.file)
			if err != nil {
				return err
			}
			// The containers run as a non-root user that does not own the
			// bind-mounted files; git would store 0644 anyway.
			if err := os.Chmod(keyFile, 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}
