// Command democerts writes the compose demo's private PKI into a directory
// (configs/compose/certs): the CA and certificate of Pebble's own HTTPS API,
// the origin tier's CA and its certificate for origin.example.test, and the
// edges' client CA and client certificate for mutual TLS to the origin tier.
// With -examples it writes instead the files the example origin-tier
// configs name (configs/certs): the origin tier's certificates for
// alb.example.com and stream.example.com, and the edges' client CA with
// its (empty) CRL, so that every file in configs/ passes edgegate check.
//
// These keys are public, committed so that `docker compose up` and the
// process-topology test use the very same files: they protect nothing but
// the demo. Never use them for a real deployment.
//
//	go run ./internal/democerts -dir configs/compose/certs   (make compose-certs)
//	go run ./internal/democerts -examples -dir configs/certs  (make example-certs)
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
	examples := flag.Bool("examples", false, "write the example configs' files instead of the compose demo's")
	flag.Parse()
	write := writeCompose
	if *examples {
		write = writeExamples
	}
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

func writeCompose(dir string) error {
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

// writeExamples writes what configs/origin.yaml and configs/origin-edge.yaml
// name under certs/.
func writeExamples(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	notAfter := time.Now().Add(validity)
	originCA, err := pki.NewAuthority("edgegate example origin CA")
	if err != nil {
		return err
	}
	if err := originCA.WriteFile(filepath.Join(dir, "origin-ca.pem")); err != nil {
		return err
	}
	for file, names := range map[string][]string{"origin": {"alb.example.com", "origin.example.test"}, "stream": {"stream.example.com"}} {
		leaf, err := originCA.Issue(pki.LeafOptions{Names: names, NotAfter: notAfter})
		if err != nil {
			return err
		}
		if _, _, err := leaf.WriteFiles(dir, file); err != nil {
			return err
		}
	}
	edgeCA, err := pki.NewAuthority("edgegate example edge client CA")
	if err != nil {
		return err
	}
	if err := edgeCA.WriteFile(filepath.Join(dir, "edge-ca.pem")); err != nil {
		return err
	}
	crl, err := edgeCA.RevocationListUntil(notAfter)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "edge-ca.crl"), crl, 0o644)
}
