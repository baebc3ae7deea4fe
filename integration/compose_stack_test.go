package integration

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/edgegate/edgegate/internal/syncbuf"
	"github.com/edgegate/edgegate/internal/testdns"
	"github.com/edgegate/edgegate/internal/testpebble"
	"github.com/edgegate/edgegate/internal/testredis"
)

// Loopback addresses that stand in for the compose services' containers
// (and for the README's real-domain edge and its load balancer).
const (
	redisIP, appIP1, appIP2, originIP = "127.0.0.60", "127.0.0.61", "127.0.0.62", "127.0.0.63"
	edgeIP, edge2IP, realEdgeIP, lbIP = "127.0.0.64", "127.0.0.65", "127.0.0.66", "127.0.0.67"
)

// acmeHost is Pebble and a DNS server for edges run as processes: Pebble is
// started from the compose stack's own config file and key pair, and every
// edge listens on its own loopback address on the same two ports, which is
// where Pebble validates (as containers share their ports).
type acmeHost struct {
	dns                 *testdns.Server
	pebble              *testpebble.Pebble
	httpPort, httpsPort string
	root                *x509.CertPool // Pebble's root: what viewers trust
}

func startACMEHost(ctx context.Context, t *testing.T, p *types.Project) *acmeHost {
	t.Helper()
	a := &acmeHost{httpPort: freePort(t, edgeIP, edge2IP, realEdgeIP), httpsPort: freePort(t, edgeIP, edge2IP, realEdgeIP)}
	hp, _ := strconv.Atoi(a.httpPort)
	tp, _ := strconv.Atoi(a.httpsPort)
	a.dns = testdns.Start(t, map[string]string{"www.example.test": edgeIP})
	s := p.Services["pebble"]
	a.pebble = testpebble.Start(t, testpebble.Config{
		DNS: a.dns.Addr(), HTTPPort: hp, TLSPort: tp, Dir: t.TempDir(),
		Base:    bindSource(t, s, flagValue(s.Command, "-config")),
		CertDir: "../configs/compose/certs",
	})
	a.root = fetchPebbleRoot(ctx, t, a.pebble.Management+"/roots/0", "../configs/compose/certs/pebble-api-ca.pem")
	return a
}

// stackHost is one compose service run as a process: its loopback address
// stands in for the container's, and env for what compose's DNS and port
// mappings would give it.
type stackHost struct {
	name  string
	ip    string
	env   []string
	admin string // where its compose health check asks
	out   *syncbuf.Buffer
	cmd   *execCmd
}

// composeStack is compose.yaml's topology as processes on 127.0.0.x: each
// service's command from compose.yaml, its config files from
// configs/compose/ (the bind mounts' sources), its peers' addresses through
// the variables the configs read.
type composeStack struct {
	t        *testing.T
	p        *types.Project
	acme     *acmeHost
	redis    *testredis.Server
	hosts    map[string]*stackHost
	started  []*stackHost
	edgeLogs map[string]string // service → its logs volume
	origin   string            // the origin tier's HTTPS address
}

// upComposeStack is `docker compose up --wait`: every service of the
// default profile started and healthy, and the edge holding its
// certificate from Pebble.
func upComposeStack(ctx context.Context, t *testing.T, p *types.Project, acme *acmeHost) *composeStack {
	t.Helper()
	port := func(ip string) string { return freePort(t, ip) }
	s := &composeStack{t: t, p: p, acme: acme, hosts: map[string]*stackHost{}, edgeLogs: map[string]string{}}
	s.redis = testredis.StartOn(t, redisIP)

	var appAddrs []string
	for _, a := range []struct{ name, ip string }{{"app1", appIP1}, {"app2", appIP2}} {
		h := &stackHost{name: a.name, ip: a.ip}
		h.admin = net.JoinHostPort(a.ip, port(a.ip))
		appAddrs = append(appAddrs, h.admin)
		s.start(ctx, h, map[string]string{"-listen": h.admin})
	}

	s.origin = net.JoinHostPort(originIP, port(originIP))
	_, originPort, _ := net.SplitHostPort(s.origin)
	origin := &stackHost{name: "origin", ip: originIP, admin: net.JoinHostPort(originIP, port(originIP))}
	origin.env = []string{
		"ORIGIN_ADDRESS=" + originIP, "ORIGIN_PORT=" + originPort, "ORIGIN_ADMIN=" + origin.admin,
		"ORIGIN_LOGS=" + t.TempDir(), "APP1=" + appAddrs[0], "APP2=" + appAddrs[1],
	}
	s.start(ctx, origin, nil)

	for _, e := range []struct{ name, ip string }{{"edge", edgeIP}, {"edge2", edge2IP}} {
		s.edgeLogs[e.name] = t.TempDir()
		h := &stackHost{name: e.name, ip: e.ip, admin: net.JoinHostPort(e.ip, port(e.ip))}
		h.env = []string{
			"EDGE_HTTP=" + net.JoinHostPort(e.ip, acme.httpPort), "EDGE_HTTPS=" + net.JoinHostPort(e.ip, acme.httpsPort),
			"EDGE_ADMIN=" + h.admin, "EDGE_LOGS=" + s.edgeLogs[e.name], "EDGE_RESOLVER=" + acme.dns.Addr(),
			"PEBBLE=" + strings.TrimSuffix(strings.TrimPrefix(acme.pebble.Directory, "https://"), "/dir"),
			"ACME_HTTP_PORT=" + acme.httpPort, "ACME_TLS_PORT=" + acme.httpsPort,
			"REDIS=" + s.redis.Addr(), "ORIGIN=" + s.origin,
		}
		for k, v := range p.Services[e.name].Environment {
			if v != nil { // a variable passed through from the shell: the process inherits it
				h.env = append(h.env, k+"="+*v)
			}
		}
		s.hosts[e.name] = h
	}
	// Its health check passes once it holds its certificate: what
	// `docker compose up --wait` waits for before the README's curl.
	s.start(ctx, s.hosts["edge"], nil)

	// A viewer going around the edge to the origin tier is refused: it has
	// no certificate of the edges' CA.
	originPool := x509.NewCertPool()
	originCA, _ := os.ReadFile("../configs/compose/certs/origin-ca.pem")
	originPool.AppendCertsFromPEM(originCA)
	direct := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: originPool, ServerName: "origin.example.test"}}}
	if resp, err := direct.Get("https://" + s.origin + "/"); err == nil {
		resp.Body.Close()
		t.Errorf("a direct viewer without a client certificate got %s from the origin tier", resp.Status)
	}
	return s
}

// upCluster is `docker compose --profile cluster up --wait`: a second edge
// sharing Redis, which must place no ACME order of its own.
func (s *composeStack) upCluster(ctx context.Context) {
	orders := s.acme.pebble.Orders()
	s.start(ctx, s.hosts["edge2"], nil)
	if got := s.acme.pebble.Orders(); got != orders || orders != 1 {
		s.t.Errorf("Pebble saw %d orders before edge2 and %d after; want 1 for the whole cluster", orders, got)
	}
}

// down is `docker compose down`: SIGTERM, and each process drains and
// exits 0, the edges first.
func (s *composeStack) down() {
	for i := len(s.started) - 1; i >= 0; i-- {
		h := s.started[i]
		h.cmd.stop(syscall.SIGTERM, 30*time.Second)
		if code := h.cmd.cmd.ProcessState.ExitCode(); code != 0 {
			s.t.Errorf("%s exited %d after SIGTERM:\n%s", h.name, code, h.out)
		}
	}
	s.started = nil
}

// substitutions maps the README's compose addresses (published on
// 127.0.0.1 by compose.yaml) to where the processes listen.
func (s *composeStack) substitutions() []string {
	a := s.acme
	return []string{
		"www.example.test:443:127.0.0.1", "www.example.test:" + a.httpsPort + ":" + edgeIP,
		"www.example.test:80:127.0.0.1", "www.example.test:" + a.httpPort + ":" + edgeIP,
		"www.example.test:8443:127.0.0.1", "www.example.test:" + a.httpsPort + ":" + edge2IP,
		"https://www.example.test:8443/", "https://www.example.test:" + a.httpsPort + "/",
		"https://www.example.test/", "https://www.example.test:" + a.httpsPort + "/",
		"http://www.example.test/", "http://www.example.test:" + a.httpPort + "/",
		"localhost:15000", "localhost:" + a.pebble.Management[strings.LastIndexByte(a.pebble.Management, ':')+1:],
		"127.0.0.1:9901", s.hosts["edge"].admin,
		"/var/log/edgegate", s.edgeLogs["edge"],
	}
}

// start runs the service's compose command with edgegate, its -config
// mapped to the bind mount's source in configs/compose and the flags in
// set replaced, and waits for its compose health check to pass.
func (s *composeStack) start(ctx context.Context, h *stackHost, set map[string]string) {
	t := s.t
	t.Helper()
	svc := s.p.Services[h.name]
	args := append([]string(nil), svc.Command...)
	for i := 0; i+1 < len(args); i++ {
		if v, ok := set[args[i]]; ok {
			args[i+1] = v
		}
		if args[i] == "-config" {
			args[i+1] = bindSource(t, svc, args[i+1])
		}
	}
	h.out = &syncbuf.Buffer{}
	h.cmd = startBinaryEnv(t, h.out, h.env, args...)
	s.started = append(s.started, h)
	s.hosts[h.name] = h
	h.waitHealthy(ctx, t, svc)
}

// waitHealthy runs the service's compose health check (edgegate health
// URL) against h.admin, where the container's check asks 127.0.0.1, until
// it passes; bounded by ctx.
func (h *stackHost) waitHealthy(ctx context.Context, t *testing.T, s types.ServiceConfig) {
	t.Helper()
	test := s.HealthCheck.Test
	if len(test) < 4 || test[0] != "CMD" || test[2] != "health" {
		t.Fatalf("%s: health check %v is not edgegate health", s.Name, test)
	}
	args := append([]string(nil), test[2:]...)
	u := args[len(args)-1]
	rest := u[strings.Index(u, "://")+3:]
	args[len(args)-1] = u[:strings.Index(u, "://")+3] + h.admin + rest[strings.IndexByte(rest, '/'):]
	for {
		out, err := exec.CommandContext(ctx, binaryPath(), args...).CombinedOutput()
		if err == nil {
			return
		}
		if h.cmd.exited() || ctx.Err() != nil {
			t.Fatalf("%s never became healthy (%v: %s):\n%s", s.Name, err, out, h.out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// bindSource is the file in the repository that compose mounts at target.
func bindSource(t *testing.T, s types.ServiceConfig, target string) string {
	t.Helper()
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeBind && v.Target == target {
			return v.Source
		}
	}
	t.Fatalf("%s: nothing is mounted at %s", s.Name, target)
	return ""
}

func fetchPebbleRoot(ctx context.Context, t *testing.T, url, caFile string) *x509.CertPool {
	t.Helper()
	ca, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("Pebble root: %v", err)
	}
	defer resp.Body.Close()
	pemData, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	root := x509.NewCertPool()
	if !root.AppendCertsFromPEM(pemData) {
		t.Fatalf("Pebble root: %s %q", resp.Status, pemData)
	}
	return root
}

// waitCertificate waits until addr presents a certificate for name that
// chains to root, while cmd runs, and returns it.
func waitCertificate(ctx context.Context, t *testing.T, name, addr string, root *x509.CertPool, cmd *execCmd, out *syncbuf.Buffer) *x509.Certificate {
	t.Helper()
	d := tls.Dialer{Config: &tls.Config{ServerName: name, RootCAs: root}}
	for {
		dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		c, err := d.DialContext(dctx, "tcp", addr)
		cancel()
		if err == nil {
			cert := c.(*tls.Conn).ConnectionState().PeerCertificates[0]
			c.Close()
			return cert
		}
		if cmd.exited() || ctx.Err() != nil {
			t.Fatalf("no certificate for %s at %s: %v\n%s", name, addr, err, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// freePort returns a port free on every one of ips.
func freePort(t *testing.T, ips ...string) string {
	t.Helper()
	n, err := testpebble.FreePort(ips...)
	if err != nil {
		t.Fatal(err)
	}
	return strconv.Itoa(n)
}

// viewerClient returns a client that sends every request to ip, at the
// URL's port (curl --resolve), and trusts only root.
func viewerClient(root *x509.CertPool, ip string) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: root},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			_, port, _ := net.SplitHostPort(addr)
			var d net.Dialer
			return d.DialContext(ctx, network, net.JoinHostPort(ip, port))
		},
	}}
}
