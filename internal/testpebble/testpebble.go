// Package testpebble runs Pebble, Let's Encrypt's test ACME server, as a
// real process on loopback for edgegate's tests and its demo: the binary is
// the module's pinned tool (`go tool pebble`), validation goes to the ports
// the caller's edge listens on, and names resolve through the caller's DNS
// server. It counts the orders Pebble accepts, by reading its log, so that
// tests can assert how many orders a scenario placed.
package testpebble

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgegate/edgegate/internal/pki"
)

// Config says where Pebble validates and resolves.
type Config struct {
	// DNS is the HOST:PORT of the DNS server Pebble resolves names with
	// (Pebble asks for AAAA first and uses TCP).
	DNS string
	// HTTPPort and TLSPort are where Pebble connects for HTTP-01 and
	// TLS-ALPN-01 validation: the edge's HTTP and HTTPS ports.
	HTTPPort, TLSPort int
	// Validity is the lifetime of issued certificates; Pebble's default
	// (90 days) when zero. Short lifetimes exercise renewal.
	Validity time.Duration
	// Dir holds Pebble's config, TLS key pair and roots.
	Dir string
	// Log, when set, receives Pebble's output as it runs.
	Log io.Writer
	// Binary is the pebble executable; found with `go tool -n pebble`
	// (building the pinned tool if needed) when empty.
	Binary string
	// Base, when set, is a Pebble config file (such as the compose demo's)
	// whose settings are kept, but for the listen addresses (loopback, free
	// ports) and the validation ports (HTTPPort and TLSPort); its API key
	// pair and that pair's CA (pebble-api-ca.pem) are taken from CertDir
	// by file name, instead of a throw-away authority.
	Base, CertDir string
}

// Pebble is a running Pebble process.
type Pebble struct {
	// Directory is the ACME directory URL.
	Directory string
	// APIRoots is the PEM file to trust for Pebble's own HTTPS API (the
	// certificates block's trusted_roots).
	APIRoots string
	// IssuerRoots is the PEM file of the root Pebble signs certificates
	// with, fetched from its management API: what a viewer must trust.
	IssuerRoots string
	// Management is the management API's base URL.
	Management string

	cmd  *exec.Cmd
	done chan struct{}

	mu     sync.Mutex
	orders int
	lines  []string
}

// Binary returns the path of the module's pinned pebble tool, building it
// if needed. It needs the Go toolchain and the module directory (dir).
func Binary(ctx context.Context, dir string) (string, error) {
	cmd := exec.CommandContext(ctx, "go", "tool", "-n", "pebble")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", fmt.Errorf("go tool -n pebble: %v: %s", err, ee.Stderr)
		}
		return "", fmt.Errorf("go tool -n pebble (the Go toolchain is needed to build the pinned Pebble): %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// Run starts Pebble and waits until its APIs answer; ctx bounds the start
// only. Stop it with Stop.
func Run(ctx context.Context, cfg Config) (*Pebble, error) {
	bin := cfg.Binary
	if bin == "" {
		var err error
		if bin, err = Binary(ctx, ""); err != nil {
			return nil, err
		}
	}
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	p := &Pebble{
		Directory:   fmt.Sprintf("https://127.0.0.1:%d/dir", ports[0]),
		Management:  fmt.Sprintf("https://127.0.0.1:%d", ports[1]),
		APIRoots:    filepath.Join(cfg.Dir, "pebble-api-ca.pem"),
		IssuerRoots: filepath.Join(cfg.Dir, "pebble-root.pem"),
		done:        make(chan struct{}),
	}
	validity := int64(cfg.Validity / time.Second)
	if validity == 0 {
		validity = 90 * 24 * 3600
	}
	settings := map[string]any{
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": false,
		"retryAfter":                     map[string]int{"authz": 1, "order": 1},
		"profiles": map[string]any{
			"default": map[string]any{"description": "edgegate tests", "validityPeriod": validity},
		},
	}
	if cfg.Base != "" {
		var base struct {
			Pebble map[string]any `json:"pebble"`
		}
		data, err := os.ReadFile(cfg.Base)
		if err == nil {
			err = json.Unmarshal(data, &base)
		}
		if err == nil && base.Pebble == nil {
			err = errors.New(`no "pebble" object`)
		}
		if err != nil {
			return nil, fmt.Errorf("pebble config %s: %w", cfg.Base, err)
		}
		settings = base.Pebble
		for _, k := range []string{"certificate", "privateKey"} {
			f, _ := settings[k].(string)
			settings[k] = filepath.Join(cfg.CertDir, filepath.Base(f))
		}
		p.APIRoots = filepath.Join(cfg.CertDir, "pebble-api-ca.pem")
	} else {
		// Pebble's own HTTPS certificate, from a throw-away authority, so
		// that nothing depends on files in the module cache.
		ca, err := pki.NewAuthority("edgegate Pebble API CA")
		if err != nil {
			return nil, err
		}
		leaf, err := ca.Issue(pki.LeafOptions{Names: []string{"127.0.0.1", "localhost"}})
		if err != nil {
			return nil, err
		}
		certFile, keyFile, err := leaf.WriteFiles(cfg.Dir, "pebble-api")
		if err != nil {
			return nil, err
		}
		if err := ca.WriteFile(p.APIRoots); err != nil {
			return nil, err
		}
		settings["certificate"], settings["privateKey"] = certFile, keyFile
	}
	settings["listenAddress"] = fmt.Sprintf("127.0.0.1:%d", ports[0])
	settings["managementListenAddress"] = fmt.Sprintf("127.0.0.1:%d", ports[1])
	settings["httpPort"], settings["tlsPort"] = cfg.HTTPPort, cfg.TLSPort
	conf := map[string]any{"pebble": settings}
	roots, err := os.ReadFile(p.APIRoots)
	if err != nil {
		return nil, fmt.Errorf("pebble API roots: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(roots) {
		return nil, fmt.Errorf("pebble API roots %s: no PEM certificate", p.APIRoots)
	}
	b, _ := json.MarshalIndent(conf, "", "  ")
	confFile := filepath.Join(cfg.Dir, "pebble-config.json")
	if err := os.WriteFile(confFile, b, 0o644); err != nil {
		return nil, fmt.Errorf("write Pebble config: %w", err)
	}
	args := []string{"-config", confFile}
	if cfg.DNS != "" {
		args = append(args, "-dnsserver", cfg.DNS)
	}
	p.cmd = exec.Command(bin, args...)
	// Fast and deterministic: no validation sleeps, no rejected nonces, and
	// no reuse of valid authorizations (so that every order validates).
	p.cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=0")
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p.cmd.Stderr = p.cmd.Stdout
	if err := p.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go p.read(out, cfg.Log)
	if err := p.waitReady(ctx, pool); err != nil {
		p.Stop()
		return nil, fmt.Errorf("pebble did not come up: %w\n%s", err, p.Output())
	}
	return p, nil
}

// read counts orders in Pebble's log: it logs `Added order "ID" to the db`
// once for each new order, which is the only order counter it exposes.
func (p *Pebble) read(r io.Reader, tee io.Writer) {
	defer close(p.done)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		p.mu.Lock()
		if strings.Contains(line, "Added order") {
			p.orders++
		}
		p.lines = append(p.lines, line)
		if len(p.lines) > 2000 {
			p.lines = p.lines[1000:]
		}
		p.mu.Unlock()
		if tee != nil {
			fmt.Fprintln(tee, line)
		}
	}
}

func (p *Pebble) waitReady(ctx context.Context, roots *x509.CertPool) error {
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := p.fetchRoots(ctx, client)
		if err == nil {
			return nil
		}
		select {
		case <-p.done:
			return errors.New("pebble exited")
		default:
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// fetchRoots saves the issuing root (new on every start) from the
// management API, after checking that the ACME directory answers too.
func (p *Pebble) fetchRoots(ctx context.Context, client *http.Client) error {
	for _, u := range []string{p.Directory, p.Management + "/roots/0"} {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s %v", u, resp.Status, err)
		}
		if strings.HasSuffix(u, "/roots/0") {
			if err := os.WriteFile(p.IssuerRoots, body, 0o644); err != nil {
				return fmt.Errorf("write Pebble root: %w", err)
			}
		}
	}
	return nil
}

// Orders is the number of orders Pebble has accepted so far.
func (p *Pebble) Orders() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.orders
}

// Output is Pebble's recent log, for failure messages.
func (p *Pebble) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

// Stop ends the Pebble process and waits for it.
func (p *Pebble) Stop() {
	if p.cmd.Process != nil {
		_ = p.cmd.Process.Kill()
	}
	<-p.done
	_ = p.cmd.Wait()
}

// Start runs Pebble for a test, stopping it when the test ends and printing
// its log if the test failed. A missing toolchain or pebble fails the test.
func Start(t testing.TB, cfg Config) *Pebble {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("testpebble: %v", err)
	}
	t.Cleanup(func() {
		p.Stop()
		if t.Failed() {
			t.Logf("pebble log:\n%s", p.Output())
		}
	})
	return p
}

// freePorts picks n free loopback ports, holding them all at once so that
// they differ.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("free port: %w", err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// FreePort returns a port free on every loopback address in hosts at the
// time of the call (a test binds it right after).
func FreePort(hosts ...string) (int, error) {
	for range 50 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		ok := true
		for _, h := range hosts {
			l2, err := net.Listen("tcp", net.JoinHostPort(h, strconv.Itoa(port)))
			if err != nil {
				ok = false
				break
			}
			l2.Close()
		}
		if ok {
			return port, nil
		}
	}
	return 0, errors.New("no port free on all of the loopback addresses")
}
