package integration

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
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

// stackHost is one compose service run as a process: its loopback address
// stands in for the container's, and env for what compose's DNS and port
// mappings would give it.
type stackHost struct {
	ip  string
	env []string
	out *syncbuf.Buffer
	cmd *execCmd
}

// TestComposeStackAsProcesses runs compose.yaml's topology as processes on
// 127.0.0.x: each service's command from compose.yaml, its config files
// from configs/compose/ (the bind mounts' sources), its peers' addresses
// through the variables the configs read; then it makes the README's
// compose requests and waits with the compose health checks.
func TestComposeStackAsProcesses(t *testing.T) {
	p := loadCompose(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	const (
		appIP1, appIP2, originIP, edgeIP, edge2IP = "127.0.0.61", "127.0.0.62", "127.0.0.63", "127.0.0.64", "127.0.0.65"
	)
	port := func(hosts ...string) string {
		n, err := testpebble.FreePort(hosts...)
		if err != nil {
			t.Fatal(err)
		}
		return strconv.Itoa(n)
	}
	redis := testredis.StartOn(t, "127.0.0.60")
	dns := testdns.Start(t, map[string]string{"www.example.test": edgeIP})
	// The edges share their ports on two addresses, as containers do: the
	// CA validates on one port whichever edge the name leads to.
	httpPort, httpsPort := port(edgeIP, edge2IP), port(edgeIP, edge2IP)
	hp, _ := strconv.Atoi(httpPort)
	tp, _ := strconv.Atoi(httpsPort)

	// pebble: the compose config file and key pair, on loopback ports.
	pebbleService := p.Services["pebble"]
	pebble := testpebble.Start(t, testpebble.Config{
		DNS: dns.Addr(), HTTPPort: hp, TLSPort: tp, Dir: t.TempDir(),
		Base:    bindSource(t, pebbleService, flagValue(pebbleService.Command, "-config")),
		CertDir: "../configs/compose/certs",
	})
	pebbleAddr := strings.TrimSuffix(strings.TrimPrefix(pebble.Directory, "https://"), "/dir")

	apps := map[string]*stackHost{
		"app1": {ip: appIP1},
		"app2": {ip: appIP2},
	}
	var appAddrs []string
	for _, n := range []string{"app1", "app2"} {
		h := apps[n]
		addr := net.JoinHostPort(h.ip, port(h.ip))
		appAddrs = append(appAddrs, addr)
		h.start(t, p.Services[n], map[string]string{"-listen": addr})
		h.waitHealthy(ctx, t, p.Services[n], addr)
	}

	originPort, originAdmin := port(originIP), net.JoinHostPort(originIP, port(originIP))
	originLogs := t.TempDir()
	origin := &stackHost{ip: originIP, env: []string{
		"ORIGIN_ADDRESS=" + originIP, "ORIGIN_PORT=" + originPort, "ORIGIN_ADMIN=" + originAdmin,
		"ORIGIN_LOGS=" + originLogs, "APP1=" + appAddrs[0], "APP2=" + appAddrs[1],
	}}
	origin.start(t, p.Services["origin"], nil)
	origin.waitHealthy(ctx, t, p.Services["origin"], originAdmin)

	edges := map[string]*stackHost{}
	edgeLogs := map[string]string{}
	edgeAdmin := map[string]string{}
	for _, e := range []struct{ name, ip string }{{"edge", edgeIP}, {"edge2", edge2IP}} {
		edgeLogs[e.name] = t.TempDir()
		edgeAdmin[e.name] = net.JoinHostPort(e.ip, port(e.ip))
		h := &stackHost{ip: e.ip, env: []string{
			"EDGE_HTTP=" + net.JoinHostPort(e.ip, httpPort), "EDGE_HTTPS=" + net.JoinHostPort(e.ip, httpsPort),
			"EDGE_ADMIN=" + edgeAdmin[e.name], "EDGE_LOGS=" + edgeLogs[e.name], "EDGE_RESOLVER=" + dns.Addr(),
			"PEBBLE=" + pebbleAddr, "ACME_HTTP_PORT=" + httpPort, "ACME_TLS_PORT=" + httpsPort,
			"REDIS=" + redis.Addr(), "ORIGIN=" + net.JoinHostPort(originIP, originPort),
		}}
		for k, v := range p.Services[e.name].Environment {
			h.env = append(h.env, k+"="+*v)
		}
		edges[e.name] = h
	}
	edges["edge"].start(t, p.Services["edge"], nil)
	edges["edge"].waitHealthy(ctx, t, p.Services["edge"], edgeAdmin["edge"])

	// README: curl --cacert configs/compose/certs/pebble-api-ca.pem https://localhost:15000/roots/0 > pebble-root.pem
	root := fetchPebbleRoot(ctx, t, pebble.Management+"/roots/0", "../configs/compose/certs/pebble-api-ca.pem")

	// The edge gets its certificate from Pebble over ACME.
	waitCertificate(ctx, t, net.JoinHostPort(edgeIP, httpsPort), root, edges["edge"])

	// README: curl --resolve www.example.test:443:127.0.0.1 --cacert pebble-root.pem https://www.example.test/
	viewer := viewerClient(root)
	get := func(ip, path string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://www.example.test:"+httpsPort+path, nil)
		resp, err := viewer(ip).Do(req)
		if err != nil {
			t.Fatalf("GET %s via %s: %v\nedge log:\n%s", path, ip, err, edges["edge"].out)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(body)
	}
	resp, body := get(edgeIP, "/")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(body, "hello from app") || resp.Header.Get("X-Cache") != "Miss from edgegate" {
		t.Fatalf("first request: %s X-Cache %q %q\norigin log:\n%s", resp.Status, resp.Header.Get("X-Cache"), body, origin.out)
	}
	resp, body2 := get(edgeIP, "/")
	if resp.Header.Get("X-Cache") != "Hit from edgegate" || body2 != body {
		t.Errorf("second request: X-Cache %q, body %q; want a Hit with %q", resp.Header.Get("X-Cache"), body2, body)
	}
	// Round robin over both apps behind the origin tier.
	answered := map[string]bool{}
	for i := range 6 {
		_, b := get(edgeIP, "/page/"+strconv.Itoa(i))
		answered[strings.Fields(b)[2]] = true
	}
	if !answered["app1:"] || !answered["app2:"] {
		t.Errorf("answers came from %v; want both app1 and app2", answered)
	}

	// README: curl -i --resolve www.example.test:80:127.0.0.1 http://www.example.test/   (301 to HTTPS)
	plain := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 10 * time.Second}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(edgeIP, httpPort)+"/hello?x=1", nil)
	req.Host = "www.example.test"
	resp, err := plain.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// The edge names its HTTPS port when it is not 443, as here on loopback.
	wantLocation := "https://www.example.test:" + httpsPort + "/hello?x=1"
	if resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != wantLocation {
		t.Errorf("http:// answered %s, Location %q; want 301 to %s", resp.Status, resp.Header.Get("Location"), wantLocation)
	}

	// A viewer going around the edge to the origin tier is refused: it has
	// no certificate of the edges' CA.
	originPool := x509.NewCertPool()
	originCA, _ := os.ReadFile("../configs/compose/certs/origin-ca.pem")
	originPool.AppendCertsFromPEM(originCA)
	direct := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: originPool, ServerName: "origin.example.test"}}}
	if resp, err := direct.Get("https://" + net.JoinHostPort(originIP, originPort) + "/"); err == nil {
		resp.Body.Close()
		t.Errorf("a direct viewer without a client certificate got %s from the origin tier", resp.Status)
	}

	// README: docker compose --profile cluster up: a second edge sharing
	// Redis places no order and serves the first edge's fill as a Hit.
	orders := pebble.Orders()
	edges["edge2"].start(t, p.Services["edge2"], nil)
	edges["edge2"].waitHealthy(ctx, t, p.Services["edge2"], edgeAdmin["edge2"])
	waitCertificate(ctx, t, net.JoinHostPort(edge2IP, httpsPort), root, edges["edge2"])
	resp, body3 := get(edge2IP, "/")
	if resp.Header.Get("X-Cache") != "Hit from edgegate" || body3 != body || !strings.Contains(resp.Header.Get("Via"), "DEMO2") {
		t.Errorf("edge2: X-Cache %q, Via %q, body %q; want a Hit of edge's fill through DEMO2", resp.Header.Get("X-Cache"), resp.Header.Get("Via"), body3)
	}
	if got := pebble.Orders(); got != orders || orders != 1 {
		t.Errorf("Pebble saw %d orders before edge2 and %d after; want 1 for the whole cluster", orders, got)
	}

	// README: docker compose exec edge edgegate logs summary /var/log/edgegate
	// (lines reach the file within the writer's flush interval).
	var summary string
	for i := 0; ; i++ {
		out, err := exec.CommandContext(ctx, binaryPath(), "logs", "summary", "-format", "json", edgeLogs["edge"]).Output()
		var s struct {
			Requests    int `json:"requests"`
			ResultTypes []struct {
				Key   string `json:"key"`
				Count int    `json:"count"`
			} `json:"result_types"`
		}
		if err == nil && json.Unmarshal(out, &s) == nil && s.Requests >= 9 {
			got := map[string]int{}
			for _, r := range s.ResultTypes {
				got[r.Key] = r.Count
			}
			if got["Miss"] != 7 || got["Hit"] != 1 || got["Redirect"] != 1 {
				t.Errorf("logs summary: result types %v, want 7 Miss, 1 Hit, 1 Redirect", got)
			}
			break
		}
		if i == 50 {
			t.Fatalf("logs summary never showed the 9 requests: %v\n%s", err, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	out, err := exec.CommandContext(ctx, binaryPath(), "logs", "summary", edgeLogs["edge"]).CombinedOutput()
	summary = string(out)
	if err != nil || !strings.Contains(summary, "hit ratio") || !strings.Contains(summary, "0 malformed") {
		t.Errorf("logs summary (table): %v\n%s", err, summary)
	}

	// docker compose stop: SIGTERM, and each process drains and exits 0.
	for _, h := range []*stackHost{edges["edge2"], edges["edge"], origin, apps["app1"], apps["app2"]} {
		h.cmd.stop(syscall.SIGTERM, 30*time.Second)
		if code := h.cmd.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("%s exited %d after SIGTERM:\n%s", h.ip, code, h.out)
		}
	}
}

// start runs the service's compose command with edgegate, its -config
// mapped to the bind mount's source in configs/compose and the flags in
// set replaced.
func (h *stackHost) start(t *testing.T, s types.ServiceConfig, set map[string]string) {
	t.Helper()
	args := append([]string(nil), s.Command...)
	for i := 0; i+1 < len(args); i++ {
		if v, ok := set[args[i]]; ok {
			args[i+1] = v
		}
		if args[i] == "-config" {
			args[i+1] = bindSource(t, s, args[i+1])
		}
	}
	h.out = &syncbuf.Buffer{}
	h.cmd = startBinaryEnv(t, h.out, h.env, args...)
}

// waitHealthy runs the service's compose health check (edgegate health
// URL) against addr, where the container's check asks 127.0.0.1, until it
// passes; bounded by ctx.
func (h *stackHost) waitHealthy(ctx context.Context, t *testing.T, s types.ServiceConfig, addr string) {
	t.Helper()
	test := s.HealthCheck.Test
	if len(test) < 4 || test[0] != "CMD" || test[2] != "health" {
		t.Fatalf("%s: health check %v is not edgegate health", s.Name, test)
	}
	args := append([]string(nil), test[2:]...)
	u := args[len(args)-1]
	rest := u[strings.Index(u, "://")+3:]
	args[len(args)-1] = u[:strings.Index(u, "://")+3] + addr + rest[strings.IndexByte(rest, '/'):]
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
	pemData, _ := io.ReadAll(resp.Body)
	root := x509.NewCertPool()
	if !root.AppendCertsFromPEM(pemData) {
		t.Fatalf("Pebble root: %s %q", resp.Status, pemData)
	}
	return root
}

// waitCertificate waits until addr presents a certificate for
// www.example.test that chains to root.
func waitCertificate(ctx context.Context, t *testing.T, addr string, root *x509.CertPool, h *stackHost) {
	t.Helper()
	d := tls.Dialer{Config: &tls.Config{ServerName: "www.example.test", RootCAs: root}}
	for {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
			return
		}
		if h.cmd.exited() || ctx.Err() != nil {
			t.Fatalf("no certificate for www.example.test at %s: %v\n%s", addr, err, h.out)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// viewerClient returns, for an edge address, a client that sends
// www.example.test there (curl --resolve) and trusts root.
func viewerClient(root *x509.CertPool) func(ip string) *http.Client {
	return func(ip string) *http.Client {
		return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: root},
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				_, port, _ := net.SplitHostPort(addr)
				var d net.Dialer
				return d.DialContext(ctx, network, net.JoinHostPort(ip, port))
			},
		}}
	}
}
