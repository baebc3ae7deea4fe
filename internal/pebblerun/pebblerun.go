// Package pebblerun runs Pebble, Let's Encrypt's test ACME server, inside
// the calling process: its ca, db, va and wfe packages behind two HTTPS
// listeners on loopback (the ACME API and the management API). The demo
// uses it, so that the shipped binary needs no Go toolchain and no separate
// pebble executable, and so do the tests (through internal/testpebble).
//
// Validation goes to the ports the caller's edge listens on and names
// resolve through the caller's DNS server. The server counts the orders it
// accepts, so that tests can assert how many orders a scenario placed.
package pebblerun

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/edgegate/edgegate/internal/pki"
	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
)

// Config says where Pebble validates and resolves, and where it keeps its
// files.
type Config struct {
	// DNS is the HOST:PORT of the DNS server Pebble resolves names with
	// (Pebble asks for AAAA first and uses TCP); the system resolver when
	// empty.
	DNS string
	// HTTPPort and TLSPort are where Pebble connects for HTTP-01 and
	// TLS-ALPN-01 validation: the edge's HTTP and HTTPS ports.
	HTTPPort, TLSPort int
	// Validity is the lifetime of issued certificates; Pebble's default
	// (90 days) when zero. Short lifetimes exercise renewal. A Base
	// config's profiles take precedence.
	Validity time.Duration
	// Profiles, when set, are the profiles the CA advertises in its
	// directory's meta.profiles (name → certificate lifetime), as Let's
	// Encrypt offers classic, tlsserver and shortlived. Pebble picks one at
	// random for an order that names none, so a client that drops its
	// profile on renewal shows. They replace Validity's single profile.
	Profiles map[string]time.Duration
	// Dir receives the PEM files named by Server.APIRoots (unless Base is
	// set) and Server.IssuerRoots. Required.
	Dir string
	// EAB, when set, makes External Account Binding required (as ZeroSSL
	// and Google Trust Services do) with these key IDs → base64url MAC
	// keys.
	EAB map[string]string
	// Log, when set, receives Pebble's log as it runs.
	Log io.Writer
	// Base, when set, is a Pebble config file (such as the compose demo's)
	// whose settings are kept, but for the listen addresses (loopback, free
	// ports) and the validation ports (HTTPPort and TLSPort); its API key
	// pair and that pair's CA (pebble-api-ca.pem) are taken from CertDir
	// by file name, instead of a throw-away authority.
	Base, CertDir string
}

// Server is a running in-process Pebble.
type Server struct {
	// Directory is the ACME directory URL.
	Directory string
	// APIRoots is the PEM file to trust for Pebble's own HTTPS API (the
	// certificates block's trusted_roots).
	APIRoots string
	// IssuerRoots is the PEM file of the root Pebble signs certificates
	// with (new on every start): what a viewer must trust.
	IssuerRoots string
	// Management is the management API's base URL (GET /roots/0, ...).
	Management string

	servers []*http.Server
	log     *orderCounter

	mu      sync.Mutex
	tlsConf *tls.Config
	addrs   []string       // listen addresses, kept for Resume
	hands   []http.Handler // handlers, kept for Resume
	down    bool
}

// settings are the Pebble config keys Start understands, as Pebble's own
// command reads them (JSON, case-insensitive keys).
type settings struct {
	Certificate                    string
	PrivateKey                     string
	OCSPResponderURL               string
	ExternalAccountBindingRequired bool
	ExternalAccountMACKeys         map[string]string
	CAAIdentities                  []string
	DomainBlocklist                []string
	KeyAlgorithm                   string
	Profiles                       map[string]ca.Profile
	RetryAfter                     struct{ Authz, Order int }

	// Read and replaced: the listeners are loopback with free ports, and
	// validation goes to Config's ports.
	ListenAddress, ManagementListenAddress string
	HTTPPort, TLSPort                      int
}

// pebbleEnv is what Pebble's constructors read from the environment, set
// for fast and deterministic runs: no validation sleeps, no rejected
// nonces, no reuse of valid authorizations (so that every order
// validates), validation always done for real.
var pebbleEnv = map[string]string{
	"PEBBLE_VA_NOSLEEP":      "1",
	"PEBBLE_VA_ALWAYS_VALID": "",
	"PEBBLE_WFE_NONCEREJECT": "0",
	"PEBBLE_AUTHZREUSE":      "0",
}

// envMu serialises constructions: Pebble's va and wfe read their knobs
// from the process environment in their constructors and offer no other
// way to set them, so Start sets them, constructs, and restores them.
var envMu sync.Mutex

// Start runs Pebble until Close; ctx bounds the start only.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Dir == "" {
		return nil, errors.New("pebblerun: Config.Dir is required")
	}
	st, err := loadSettings(cfg)
	if err != nil {
		return nil, err
	}
	s := &Server{
		APIRoots:    filepath.Join(cfg.Dir, "pebble-api-ca.pem"),
		IssuerRoots: filepath.Join(cfg.Dir, "pebble-root.pem"),
		log:         &orderCounter{tee: cfg.Log},
	}
	apiCert, err := s.apiCertificate(cfg, st)
	if err != nil {
		return nil, err
	}
	logger := log.New(s.log, "Pebble ", log.LstdFlags)

	store := db.NewMemoryStore()
	keyAlg := st.KeyAlgorithm
	if keyAlg == "" {
		keyAlg = "ecdsa" // quicker to generate than Pebble's default RSA
	}
	if keyAlg != "rsa" && keyAlg != "ecdsa" {
		return nil, fmt.Errorf("pebblerun: keyAlgorithm %q: use rsa or ecdsa", keyAlg)
	}
	caa := st.CAAIdentities
	if len(caa) == 0 {
		caa = []string{"pebble.letsencrypt.org"}
	}
	var w wfe.WebFrontEndImpl
	if err := withPebbleEnv(func() error {
		authority := ca.New(logger, store, st.OCSPResponderURL, keyAlg, 0, 1, st.Profiles)
		validator := va.New(logger, st.HTTPPort, st.TLSPort, false, cfg.DNS, store)
		if len(cfg.EAB) > 0 {
			st.ExternalAccountBindingRequired = true
			if st.ExternalAccountMACKeys == nil {
				st.ExternalAccountMACKeys = map[string]string{}
			}
			for id, key := range cfg.EAB {
				st.ExternalAccountMACKeys[id] = key
			}
		}
		for id, key := range st.ExternalAccountMACKeys {
			if err := store.AddExternalAccountKeyByID(id, key); err != nil {
				return fmt.Errorf("pebblerun: externalAccountMACKeys %s: %w", id, err)
			}
		}
		for _, name := range st.DomainBlocklist {
			if err := store.AddBlockedDomain(name); err != nil {
				return fmt.Errorf("pebblerun: domainBlocklist %s: %w", name, err)
			}
		}
		w = wfe.New(logger, store, validator, authority, caa, false, st.ExternalAccountBindingRequired, st.RetryAfter.Authz, st.RetryAfter.Order)
		root := authority.GetRootCert(0)
		if root == nil {
			return errors.New("pebblerun: Pebble made no root")
		}
		if err := os.WriteFile(s.IssuerRoots, root.PEM(), 0o644); err != nil {
			return fmt.Errorf("pebblerun: write the issuing root: %w", err)
		}
		return nil
	}); err != nil {
		return nil, err
	}

	s.tlsConf = &tls.Config{Certificates: []tls.Certificate{apiCert}, MinVersion: tls.VersionTLS12}
	s.addrs = []string{"127.0.0.1:0", "127.0.0.1:0"}
	s.hands = []http.Handler{w.Handler(), w.ManagementHandler()}
	if err := s.listen(ctx); err != nil {
		return nil, err
	}
	s.Directory = "https://" + s.addrs[0] + wfe.DirectoryPath
	s.Management = "https://" + s.addrs[1]
	logger.Printf("ACME directory available at: %s", s.Directory)
	logger.Printf("Root CA certificate available at: %s/roots/0", s.Management)
	return s, nil
}

// listen serves the API and management handlers on s.addrs, recording
// the ports taken.
func (s *Server) listen(ctx context.Context) error {
	var lc net.ListenConfig
	for i, h := range s.hands {
		ln, err := lc.Listen(ctx, "tcp", s.addrs[i])
		if err != nil {
			s.closeServers()
			return fmt.Errorf("pebblerun: listen: %w", err)
		}
		s.addrs[i] = ln.Addr().String()
		srv := &http.Server{
			Handler:           h,
			TLSConfig:         s.tlsConf,
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       60 * time.Second,
			ErrorLog:          log.New(s.log, "Pebble http: ", log.LstdFlags),
		}
		s.servers = append(s.servers, srv)
		go func() { _ = srv.Serve(tls.NewListener(ln, s.tlsConf)) }()
	}
	return nil
}

// Stop takes Pebble off the network, as a CA outage does: connections to
// its directory are refused until Resume. Its state (accounts, orders,
// roots) is kept.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = true
	s.closeServers()
}

// Resume serves Pebble again at the same addresses after Stop.
func (s *Server) Resume(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.down {
		return nil
	}
	s.down = false
	return s.listen(ctx)
}

// loadSettings reads the Base config, or makes the tests' defaults.
func loadSettings(cfg Config) (settings, error) {
	var st settings
	if cfg.Base != "" {
		var file struct {
			Pebble *settings `json:"pebble"`
		}
		data, err := os.ReadFile(cfg.Base)
		if err != nil {
			return st, fmt.Errorf("pebble config: %w", err)
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&file); err != nil {
			return st, fmt.Errorf("pebble config %s: %w", cfg.Base, err)
		}
		if file.Pebble == nil {
			return st, fmt.Errorf(`pebble config %s: no "pebble" object`, cfg.Base)
		}
		st = *file.Pebble
	} else {
		validity := uint64(cfg.Validity / time.Second)
		st.Profiles = map[string]ca.Profile{"default": {Description: "edgegate", ValidityPeriod: validity}}
		if len(cfg.Profiles) > 0 {
			st.Profiles = make(map[string]ca.Profile, len(cfg.Profiles))
			for name, d := range cfg.Profiles {
				st.Profiles[name] = ca.Profile{Description: "edgegate test profile " + name, ValidityPeriod: uint64(d / time.Second)}
			}
		}
		st.RetryAfter.Authz, st.RetryAfter.Order = 1, 1
	}
	if len(st.Profiles) == 0 {
		st.Profiles = map[string]ca.Profile{"default": {Description: "The default profile"}}
	}
	st.HTTPPort, st.TLSPort = cfg.HTTPPort, cfg.TLSPort
	return st, nil
}

// apiCertificate is Pebble's own HTTPS key pair: the Base config's, from
// CertDir, or one from a throw-away authority written to Dir, so that
// nothing depends on files in the module cache.
func (s *Server) apiCertificate(cfg Config, st settings) (tls.Certificate, error) {
	if cfg.Base != "" {
		s.APIRoots = filepath.Join(cfg.CertDir, "pebble-api-ca.pem")
		cert, err := tls.LoadX509KeyPair(filepath.Join(cfg.CertDir, filepath.Base(st.Certificate)), filepath.Join(cfg.CertDir, filepath.Base(st.PrivateKey)))
		if err != nil {
			return cert, fmt.Errorf("pebble API key pair: %w", err)
		}
		return cert, nil
	}
	authority, err := pki.NewAuthority("edgegate Pebble API CA")
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := authority.Issue(pki.LeafOptions{Names: []string{"127.0.0.1", "localhost"}})
	if err != nil {
		return tls.Certificate{}, err
	}
	if err := authority.WriteFile(s.APIRoots); err != nil {
		return tls.Certificate{}, err
	}
	return leaf.TLS(), nil
}

// withPebbleEnv runs f with pebbleEnv set, restoring the environment after.
func withPebbleEnv(f func() error) error {
	envMu.Lock()
	defer envMu.Unlock()
	for k, v := range pebbleEnv {
		old, had := os.LookupEnv(k)
		if v == "" {
			os.Unsetenv(k)
		} else {
			os.Setenv(k, v)
		}
		if had {
			defer os.Setenv(k, old)
		} else {
			defer os.Unsetenv(k)
		}
	}
	return f()
}

// Orders is the number of orders Pebble has accepted so far.
func (s *Server) Orders() int { return s.log.count() }

// Output is Pebble's recent log, for failure messages.
func (s *Server) Output() string { return s.log.output() }

// Close stops both listeners, waiting a little for requests in flight.
// Pebble's validation queue keeps one idle goroutine until the process
// ends: its va package has no way to stop it.
func (s *Server) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeServers()
}

func (s *Server) closeServers() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, srv := range s.servers {
		if srv.Shutdown(ctx) != nil {
			_ = srv.Close()
		}
	}
	s.servers = nil
}

// orderCounter is Pebble's log: it counts `Added order "ID" to the db`,
// logged once for each new order (Pebble exposes no other counter), keeps
// the recent lines, and copies them to tee.
type orderCounter struct {
	tee io.Writer

	mu     sync.Mutex
	orders int
	lines  []string
}

// Write takes one log line: log.Logger writes each entry in one call.
func (c *orderCounter) Write(p []byte) (int, error) {
	line := strings.TrimRight(string(p), "\n")
	c.mu.Lock()
	if strings.Contains(line, "Added order") {
		c.orders++
	}
	c.lines = append(c.lines, line)
	if len(c.lines) > 2000 {
		c.lines = append(c.lines[:0:0], c.lines[1000:]...)
	}
	if c.tee != nil {
		_, _ = c.tee.Write(p)
	}
	c.mu.Unlock()
	return len(p), nil
}

func (c *orderCounter) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.orders
}

func (c *orderCounter) output() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.lines, "\n")
}
