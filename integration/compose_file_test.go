package integration

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/edgegate/edgegate/edge"
	"github.com/edgegate/edgegate/origin"
)

// No Docker engine runs where the tests run, so compose.yaml is checked by
// loading it with the compose-spec library, as `docker compose` does, and
// by checking that every config the containers are given works with the
// files mounted beside it.

// loadCompose loads ../compose.yaml with every profile enabled.
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{"../compose.yaml"},
		cli.WithWorkingDirectory(".."), cli.WithProfiles([]string{"*"}), cli.WithResolvedPaths(true),
		cli.WithEnv([]string{}), cli.WithDiscardEnvFile)
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("compose.yaml does not load: %v", err)
	}
	return p
}

// container mirrors a service's view of its bind mounts in a directory, so
// that configs can be loaded with the paths the container sees.
func container(t *testing.T, s types.ServiceConfig) string {
	t.Helper()
	root := t.TempDir()
	for _, v := range s.Volumes {
		if v.Type != types.VolumeTypeBind {
			continue
		}
		data, err := os.ReadFile(v.Source)
		if err != nil {
			t.Fatalf("service %s mounts %s: %v", s.Name, v.Source, err)
		}
		dst := filepath.Join(root, v.Target)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// flagValue returns the value after name in a command line.
func flagValue(cmd []string, name string) string {
	if i := slices.Index(cmd, name); i >= 0 && i+1 < len(cmd) {
		return cmd[i+1]
	}
	return ""
}

func TestComposeFile(t *testing.T) {
	p := loadCompose(t)
	var names []string
	for n := range p.Services {
		names = append(names, n)
	}
	sort.Strings(names)
	want := []string{"app1", "app2", "edge", "edge2", "origin", "pebble", "redis"}
	if !slices.Equal(names, want) {
		t.Fatalf("services %v, want %v", names, want)
	}
	for _, n := range names {
		s := p.Services[n]
		t.Run(n, func(t *testing.T) {
			// Health checks on each service, so depends_on can wait for them.
			if s.HealthCheck == nil || s.HealthCheck.Disable || len(s.HealthCheck.Test) < 2 {
				t.Errorf("no health check")
			}
			wantProfiles := []string(nil)
			if n == "edge2" {
				wantProfiles = []string{"cluster"}
			}
			if !slices.Equal(s.Profiles, wantProfiles) {
				t.Errorf("profiles %v, want %v", s.Profiles, wantProfiles)
			}
			for _, v := range s.Volumes {
				switch v.Type {
				case types.VolumeTypeBind:
					fi, err := os.Stat(v.Source)
					if err != nil || !fi.Mode().IsRegular() {
						t.Errorf("bind mount %s -> %s: not a file in the repository (%v)", v.Source, v.Target, err)
					}
					if !v.ReadOnly {
						t.Errorf("bind mount %s is writable; configs and keys are mounted read-only", v.Target)
					}
				case types.VolumeTypeVolume:
					if _, ok := p.Volumes[v.Source]; !ok {
						t.Errorf("volume %s is not declared", v.Source)
					}
				}
			}
		})
	}

	// Ports: only what the README's requests use (and HTTP/3's UDP beside
	// HTTPS for browsers), and only on loopback.
	published := map[string][]string{}
	for _, n := range names {
		for _, port := range p.Services[n].Ports {
			p := fmt.Sprintf("%s:%s->%d", port.HostIP, port.Published, port.Target)
			if port.Protocol != "" && port.Protocol != "tcp" {
				p += "/" + port.Protocol
			}
			published[n] = append(published[n], p)
		}
	}
	wantPorts := map[string][]string{
		"edge":   {"127.0.0.1:80->80", "127.0.0.1:443->443", "127.0.0.1:443->443/udp", "127.0.0.1:9901->9901"},
		"edge2":  {"127.0.0.1:8080->80", "127.0.0.1:8443->443"},
		"pebble": {"127.0.0.1:15000->15000"},
	}
	if fmt.Sprint(published) != fmt.Sprint(wantPorts) {
		t.Errorf("published ports %v, want %v", published, wantPorts)
	}

	// Named volumes: certificates (in Redis) and logs survive the containers.
	mounts := map[string]string{}
	for _, n := range names {
		for _, v := range p.Services[n].Volumes {
			if v.Type == types.VolumeTypeVolume {
				mounts[n+":"+v.Target] = v.Source
			}
		}
	}
	wantMounts := map[string]string{
		"redis:/data":                     "redis-data",
		"edge:/var/log/edgegate":          "edge-logs",
		"edge2:/var/log/edgegate":         "edge2-logs",
		"origin:/var/log/edgegate-origin": "origin-logs",
	}
	if fmt.Sprint(mounts) != fmt.Sprint(wantMounts) {
		t.Errorf("named volume mounts %v, want %v", mounts, wantMounts)
	}
	for v := range p.Volumes {
		if !slices.Contains(slices.Collect(maps.Values(mounts)), v) {
			t.Errorf("volume %s is declared but not mounted", v)
		}
	}

	// Start order: each waits for what it talks to to be healthy.
	wantDeps := map[string][]string{
		"origin": {"app1", "app2"},
		"edge":   {"origin", "pebble", "redis"},
		"edge2":  {"origin", "pebble", "redis"},
	}
	for n, deps := range wantDeps {
		var got []string
		for d, c := range p.Services[n].DependsOn {
			if c.Condition != types.ServiceConditionHealthy {
				t.Errorf("%s depends on %s with condition %q, want service_healthy", n, d, c.Condition)
			}
			got = append(got, d)
		}
		sort.Strings(got)
		if !slices.Equal(got, deps) {
			t.Errorf("%s depends on %v, want %v", n, got, deps)
		}
	}

	checkComposeEdges(t, p)
	checkComposeOrigin(t, p)
	checkComposePebble(t, p)
}

// checkComposeEdges loads each edge's config as its container sees it.
func checkComposeEdges(t *testing.T, p *types.Project) {
	for _, n := range []string{"edge", "edge2"} {
		s := p.Services[n]
		root := container(t, s)
		cfgPath := flagValue(s.Command, "-config")
		if s.Command[0] != "edge" || cfgPath == "" {
			t.Fatalf("%s: command %v does not run an edge with -config", n, s.Command)
		}
		for k, v := range s.Environment {
			if v != nil {
				t.Setenv(k, *v)
			}
		}
		cfg, err := edge.LoadConfig(filepath.Join(root, cfgPath))
		if err != nil {
			t.Fatalf("%s: %s does not load as the container sees it: %v", n, cfgPath, err)
		}
		if err := cfg.CheckFiles(); err != nil {
			t.Errorf("%s: a file the config names is not mounted: %v", n, err)
		}
		if n == "edge2" && cfg.Edge.Location != "DEMO2" {
			t.Errorf("edge2 logs as location %q; its environment should make it DEMO2", cfg.Edge.Location)
		}
		// Pebble resolves the viewer name through compose's DNS: the edge
		// must carry it as an alias.
		aliases := s.Networks["default"]
		for _, d := range cfg.Distributions {
			for _, a := range d.Aliases {
				if aliases == nil || !slices.Contains(aliases.Aliases, a) {
					t.Errorf("%s: distribution alias %s is not a network alias of the service, so Pebble cannot reach it", n, a)
				}
			}
		}
		// Its peers are services of the stack, at the ports they listen on.
		host := func(raw string) string {
			u, err := url.Parse(raw)
			if err != nil {
				t.Fatalf("%s: %v", n, err)
			}
			return u.Host
		}
		for _, peer := range []struct{ what, got, want string }{
			{"certificate storage", host(cfg.Edge.Certificates.Storage), "redis:6379"},
			{"shared cache", host(cfg.Edge.Cache.Redis), "redis:6379"},
			{"ACME directory", host(cfg.Edge.Certificates.ACME.Directory), "pebble:14000"},
			{"origin", cfg.Distributions[0].Origins[0].ConnectTo, "origin:443"},
		} {
			if peer.got != peer.want {
				t.Errorf("%s: %s at %q, want the stack's %q", n, peer.what, peer.got, peer.want)
			}
		}
		if _, port, _ := net.SplitHostPort(cfg.Edge.Listen.HTTPS); port != "443" {
			t.Errorf("%s: HTTPS on %s, want :443", n, cfg.Edge.Listen.HTTPS)
		}
		if cfg.Edge.Logs.Dir != "/var/log/edgegate" {
			t.Errorf("%s: logs to %s, not the logs volume", n, cfg.Edge.Logs.Dir)
		}
		// Healthy means serving: --wait and depends_on hold until the
		// edge has its certificates.
		if hc := s.HealthCheck.Test; !strings.HasSuffix(hc[len(hc)-1], portOf(cfg.Edge.Admin.Listen)+"/readyz") {
			t.Errorf("%s: health check %v does not ask the admin listener %s for /readyz", n, hc, cfg.Edge.Admin.Listen)
		}
	}
}

func portOf(addr string) string {
	_, port, _ := net.SplitHostPort(addr)
	return ":" + port
}

// checkComposeOrigin loads the origin tier's config as its container sees
// it, and checks that it forwards to the apps where they listen.
func checkComposeOrigin(t *testing.T, p *types.Project) {
	s := p.Services["origin"]
	root := container(t, s)
	cfgPath := flagValue(s.Command, "-config")
	cfg, err := origin.LoadConfig(filepath.Join(root, cfgPath))
	if err != nil {
		t.Fatalf("origin: %s does not load as the container sees it: %v", cfgPath, err)
	}
	if err := cfg.CheckFiles(); err != nil {
		t.Errorf("origin: a file the config names is not mounted: %v", err)
	}
	var targets []string
	for _, g := range cfg.Origin.TargetGroups {
		targets = append(targets, g.Targets...)
	}
	var apps []string
	for _, n := range []string{"app1", "app2"} {
		apps = append(apps, n+portOf(flagValue(p.Services[n].Command, "-listen")))
	}
	if !slices.Equal(targets, apps) {
		t.Errorf("origin targets %v, want the apps %v", targets, apps)
	}
	l := cfg.Origin.Listeners[0]
	if l.Protocol != "HTTPS" || l.Port == nil || *l.Port != 443 || l.MutualTLS == nil || l.MutualTLS.Mode != "verify" {
		t.Errorf("origin listener %+v: want HTTPS on 443 with mutual TLS", l)
	}
	if hc := s.HealthCheck.Test; !strings.HasSuffix(hc[len(hc)-1], portOf(cfg.Origin.Admin.Listen)+"/healthz") {
		t.Errorf("origin: health check %v does not ask the admin listener %s", hc, cfg.Origin.Admin.Listen)
	}
	if cfg.Origin.Logs.Dir != "/var/log/edgegate-origin" {
		t.Errorf("origin: logs to %s, not the logs volume", cfg.Origin.Logs.Dir)
	}
}

// checkComposePebble checks Pebble's config against its mounts and the
// edges' ports, and the demo PKI against the names it must serve.
func checkComposePebble(t *testing.T, p *types.Project) {
	s := p.Services["pebble"]
	root := container(t, s)
	var conf struct {
		Pebble struct {
			ListenAddress, ManagementListenAddress, Certificate, PrivateKey string
			HTTPPort, TLSPort                                               int
		}
	}
	data, err := os.ReadFile(filepath.Join(root, flagValue(s.Command, "-config")))
	if err != nil {
		t.Fatalf("pebble: its -config is not mounted: %v", err)
	}
	if err := json.Unmarshal(data, &conf); err != nil {
		t.Fatalf("pebble config: %v", err)
	}
	c := conf.Pebble
	if _, err := tls.LoadX509KeyPair(filepath.Join(root, c.Certificate), filepath.Join(root, c.PrivateKey)); err != nil {
		t.Errorf("pebble: its API key pair is not mounted where its config says: %v", err)
	}
	if c.HTTPPort != 80 || c.TLSPort != 443 {
		t.Errorf("pebble validates on %d and %d, but the edges listen on 80 and 443", c.HTTPPort, c.TLSPort)
	}
	if portOf(c.ListenAddress) != ":14000" || portOf(c.ManagementListenAddress) != ":15000" {
		t.Errorf("pebble listens on %s and %s; the edges and the README use 14000 and 15000", c.ListenAddress, c.ManagementListenAddress)
	}

	checkDemoPKI(t, "../configs/compose/certs/")
}

// checkDemoPKI checks the demo PKI in dir: every certificate chains to its
// CA for the names and use the stack needs, and outlives the next year.
func checkDemoPKI(t *testing.T, certs string) {
	t.Helper()

	for _, tc := range []struct {
		leaf, ca, name string
		usage          x509.ExtKeyUsage
	}{
		{"pebble-api", "pebble-api-ca", "pebble", x509.ExtKeyUsageServerAuth},
		{"pebble-api", "pebble-api-ca", "localhost", x509.ExtKeyUsageServerAuth},
		{"origin", "origin-ca", "origin.example.test", x509.ExtKeyUsageServerAuth},
		{"edge-client", "edge-ca", "", x509.ExtKeyUsageClientAuth},
	} {
		pair, err := tls.LoadX509KeyPair(certs+tc.leaf+".pem", certs+tc.leaf+"-key.pem")
		if err != nil {
			t.Errorf("%s: %v", tc.leaf, err)
			continue
		}
		leaf, _ := x509.ParseCertificate(pair.Certificate[0])
		caPEM, err := os.ReadFile(certs + tc.ca + ".pem")
		if err != nil {
			t.Fatal(err)
		}
		block, _ := pem.Decode(caPEM)
		ca, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatalf("%s: %v", tc.ca, err)
		}
		pool := x509.NewCertPool()
		pool.AddCert(ca)
		later := time.Now().Add(365 * 24 * time.Hour)
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: tc.name, Roots: pool, KeyUsages: []x509.ExtKeyUsage{tc.usage}, CurrentTime: later}); err != nil {
			t.Errorf("%s for %q a year from now: %v (regenerate with make compose-certs)", tc.leaf, tc.name, err)
		}
	}
}

// make compose-certs writes a PKI that serves the stack as well as the
// committed one.
func TestComposeCertsRegenerate(t *testing.T) {
	mk, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^compose-certs:\n\t\$\(GO\) run (\S+) -dir configs/compose/certs$`).FindSubmatch(mk)
	if m == nil {
		t.Fatal("Makefile: compose-certs does not run a generator into configs/compose/certs")
	}
	dir := t.TempDir()
	cmd := exec.Command("go", "run", string(m[1]), "-dir", dir)
	cmd.Dir = ".."
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go run %s: %v\n%s", m[1], err, out)
	}
	checkDemoPKI(t, dir+"/")
}
