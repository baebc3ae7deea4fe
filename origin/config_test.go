package origin

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

const baseConfig = `origin:
  listeners:
    - protocol: HTTP
      port: 80
      default_action: {forward: app}
  target_groups:
    - name: app
      protocol: HTTP
      targets: ["127.0.0.2:8080"]
`

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // each must appear in the error
	}{
		{"unknown key", strings.Replace(baseConfig, "port: 80", "port: 80\n      prot: 1", 1),
			[]string{"cfg.yaml:5: origin.listeners[0].prot: unknown key"}},
		{"bad listener protocol", strings.Replace(baseConfig, "protocol: HTTP\n      port", "protocol: HTTP2\n      port", 1),
			[]string{`cfg.yaml:3: origin.listeners[0].protocol: "HTTP2" is not a listener protocol`}},
		{"missing port", strings.Replace(baseConfig, "      port: 80\n", "", 1),
			[]string{"cfg.yaml:3: origin.listeners[0].port: missing"}},
		{"unknown target group", strings.Replace(baseConfig, "forward: app", "forward: nope", 1),
			[]string{`cfg.yaml:5: origin.listeners[0].default_action.forward: no target group named "nope" (target groups: app)`}},
		{"duplicate ports", strings.Replace(baseConfig, "  target_groups:", "    - {protocol: HTTP, port: 80, default_action: {forward: app}}\n  target_groups:", 1),
			[]string{"cfg.yaml:6: origin.listeners[1].port: port 80 is already used by listener 0"}},
		{"same port on two addresses is fine", strings.Replace(strings.Replace(baseConfig, "port: 80", "port: 80\n      address: 127.0.0.1", 1),
			"  target_groups:", "    - {protocol: HTTP, port: 80, address: 127.0.0.2, default_action: {forward: app}}\n  target_groups:", 1), nil},
		{"mutual TLS on TCP", strings.Replace(strings.Replace(baseConfig, "protocol: HTTP\n      port", "protocol: TCP\n      port", 1),
			"port: 80", "port: 80\n      mutual_tls: {mode: verify, trust_store: ca.pem}", 1),
			[]string{"cfg.yaml:5: origin.listeners[0].mutual_tls: mutual TLS needs a listener that terminates TLS (HTTPS or TLS), not TCP",
				`cfg.yaml:6: origin.listeners[0].default_action.forward: target group "app" speaks HTTP; a TCP (passthrough) listener forwards to TCP target groups`}},
		{"HTTPS without certificates", strings.Replace(baseConfig, "protocol: HTTP\n      port", "protocol: HTTPS\n      port", 1),
			[]string{"cfg.yaml:3: origin.listeners[0].certificates: a HTTPS listener needs certificates"}},
		{"certificates on HTTP", strings.Replace(baseConfig, "port: 80", "port: 80\n      certificates: {self_signed: [a.example.test]}", 1),
			[]string{"cfg.yaml:5: origin.listeners[0].certificates: a HTTP listener does not terminate TLS"}},
		{"empty certificates", strings.Replace(strings.Replace(baseConfig, "protocol: HTTP\n      port", "protocol: HTTPS\n      port", 1),
			"port: 80", "port: 80\n      certificates: {}", 1),
			[]string{"cfg.yaml:5: origin.listeners[0].certificates: no certificate source"}},
		{"acme without names", strings.Replace(strings.Replace(baseConfig, "protocol: HTTP\n      port", "protocol: HTTPS\n      port", 1),
			"port: 80", "port: 80\n      certificates: {acme: {directory: \"https://acme.test/dir\"}}", 1),
			[]string{"cfg.yaml:3: origin.listeners[0].server_names: certificates.acme needs the names to order"}},
		{"verify without trust store", strings.Replace(strings.Replace(baseConfig, "protocol: HTTP\n      port", "protocol: HTTPS\n      port", 1),
			"port: 80", "port: 80\n      certificates: {self_signed: [a.example.test]}\n      mutual_tls: {mode: verify}", 1),
			[]string{"cfg.yaml:6: origin.listeners[0].mutual_tls.trust_store: missing"}},
		{"bad mutual TLS mode", strings.Replace(strings.Replace(baseConfig, "protocol: HTTP\n      port", "protocol: HTTPS\n      port", 1),
			"port: 80", "port: 80\n      certificates: {self_signed: [a.example.test]}\n      mutual_tls: {mode: passthrough}", 1),
			[]string{`cfg.yaml:6: origin.listeners[0].mutual_tls.mode: "passthrough": use off or verify`}},
		{"HTTP listener to a TCP group", strings.Replace(baseConfig, "protocol: HTTP\n      targets", "protocol: TCP\n      targets", 1),
			[]string{`cfg.yaml:5: origin.listeners[0].default_action.forward: target group "app" speaks TCP; an HTTP listener forwards to HTTP or HTTPS target groups`}},
		{"redirect on TCP", strings.Replace(strings.Replace(baseConfig, "protocol: HTTP\n      port", "protocol: TCP\n      port", 1),
			"{forward: app}", "{redirect: {protocol: HTTPS}}", 1),
			[]string{"cfg.yaml:5: origin.listeners[0].default_action.redirect: a TCP listener cannot redirect"}},
		{"forward and redirect", strings.Replace(baseConfig, "{forward: app}", "{forward: app, redirect: {status: 302}}", 1),
			[]string{"cfg.yaml:5: origin.listeners[0].default_action: set either forward or redirect, not both"}},
		{"bad redirect status", strings.Replace(baseConfig, "{forward: app}", "{redirect: {status: 200}}", 1),
			[]string{"cfg.yaml:5: origin.listeners[0].default_action.redirect.status: 200: use 301, 302, 303, 307 or 308"}},
		{"SNI routes on HTTP", strings.Replace(baseConfig, "port: 80", "port: 80\n      sni_routes: [{server_name: a.example.test, forward: app}]", 1),
			[]string{"cfg.yaml:5: origin.listeners[0].sni_routes: SNI routes apply to TCP and TLS listeners only"}},
		{"bad target", strings.Replace(baseConfig, `"127.0.0.2:8080"`, `"127.0.0.2", "127.0.0.3:8080", "127.0.0.3:8080"`, 1),
			[]string{`cfg.yaml:9: origin.target_groups[0].targets[0]: "127.0.0.2" is not HOST:PORT`,
				"cfg.yaml:9: origin.target_groups[0].targets[2]: 127.0.0.3:8080 is listed twice"}},
		{"duplicate group", baseConfig + "    - {name: app, protocol: HTTP, targets: [\"127.0.0.3:80\"]}\n",
			[]string{`cfg.yaml:10: origin.target_groups[1].name: duplicate target group name "app"`}},
		{"bad group protocol and algorithm", strings.Replace(baseConfig, "protocol: HTTP\n      targets", "protocol: UDP\n      algorithm: random\n      targets", 1),
			[]string{`cfg.yaml:8: origin.target_groups[0].protocol: "UDP" is not a target group protocol`,
				`cfg.yaml:9: origin.target_groups[0].algorithm: "random": use round_robin or least_outstanding_requests`}},
		{"timeout not below interval", baseConfig + "      health_check: {interval: 5s, timeout: 5s}\n",
			[]string{"cfg.yaml:10: origin.target_groups[0].health_check.timeout: 5s must be shorter than the interval 5s"}},
		{"bad thresholds", baseConfig + "      health_check:\n        healthy_threshold: 1\n        unhealthy_threshold: 11\n",
			[]string{"cfg.yaml:11: origin.target_groups[0].health_check.healthy_threshold: 1 is outside 2-10",
				"cfg.yaml:12: origin.target_groups[0].health_check.unhealthy_threshold: 11 is outside 2-10"}},
		{"bad matcher", baseConfig + "      health_check:\n        matcher: 200-abc\n",
			[]string{`cfg.yaml:11: origin.target_groups[0].health_check.matcher: "200-abc": use status codes`}},
		{"bad health port", baseConfig + "      health_check:\n        port: trafic-port\n",
			[]string{`cfg.yaml:11: origin.target_groups[0].health_check.port: "trafic-port": use traffic-port or a port number`}},
		{"bad interval", baseConfig + "      health_check:\n        interval: fast\n",
			[]string{`cfg.yaml:11: origin.target_groups[0].health_check.interval: "fast" is not a duration`}},
		{"path on a TCP check", baseConfig + "      health_check: {protocol: TCP, path: /x}\n",
			[]string{"cfg.yaml:10: origin.target_groups[0].health_check.path: a TCP health check has no path"}},
		{"bad rotate", baseConfig + "  logs: {dir: /tmp/x, rotate: 7m}\n",
			[]string{"cfg.yaml:10: origin.logs.rotate: rotate 7m0s must divide a day evenly"}},
		{"bad admin", baseConfig + "  admin: {listen: localhost}\n",
			[]string{`cfg.yaml:10: origin.admin.listen: "localhost" is not HOST:PORT`}},
		{"nothing", "origin: {}\n",
			[]string{"cfg.yaml:1: origin.target_groups: at least one target group is required",
				"cfg.yaml:1: origin.listeners: at least one listener is required"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig("cfg.yaml", []byte(tt.yaml))
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error:\n%v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error; want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error:\n%v\nwant it to contain\n%s", err, w)
				}
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	cfg, err := ParseConfig("cfg.yaml", []byte(baseConfig+"    - {name: tls, protocol: tls, targets: [\"127.0.0.3:1\"]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	h := cfg.Origin.TargetGroups[0].HealthCheck
	want := HealthCheck{Protocol: "HTTP", Path: "/", Interval: 30_000_000_000, Timeout: 5_000_000_000,
		HealthyThreshold: 5, UnhealthyThreshold: 2, Matcher: "200"}
	if h != want {
		t.Errorf("HTTP group health check %+v, want %+v", h, want)
	}
	g := cfg.Origin.TargetGroups[1]
	if g.Protocol != ProtocolTLS || g.HealthCheck.Protocol != ProtocolTCP || g.HealthCheck.Path != "" || g.Algorithm != AlgorithmRoundRobin {
		t.Errorf("TLS group %+v", g)
	}
	to := cfg.Origin.Timeouts
	if to.Connect.D() != 10*time.Second || to.Idle.D() != 60*time.Second || to.TCPIdle.D() != 350*time.Second ||
		to.Shutdown.D() != 30*time.Second || to.MaxHeaderBytes != 64<<10 || cfg.Origin.Logs.Rotate.D() != time.Hour {
		t.Errorf("timeouts %+v", to)
	}
	// An interval shorter than twice the default timeout brings the
	// default timeout down with it.
	cfg, err = ParseConfig("cfg.yaml", []byte(baseConfig+"      health_check: {interval: 2s}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Origin.TargetGroups[0].HealthCheck.Timeout.D(); got != time.Second {
		t.Errorf("timeout with a 2s interval = %v, want 1s", got)
	}
}

func TestExampleConfigs(t *testing.T) {
	for _, name := range []string{"origin.yaml", "origin-edge.yaml", "origin-passthrough.yaml"} {
		t.Run(name, func(t *testing.T) {
			if _, err := LoadConfig(filepath.Join("..", "configs", name)); err != nil {
				t.Fatal(err)
			}
		})
	}

	cfg, err := LoadConfig(filepath.Join("..", "configs", "origin.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if r := cfg.Origin.Listeners[0].DefaultAction.Redirect; r == nil || *r != (Redirect{Protocol: "HTTPS", Port: 443, Status: 301}) {
		t.Errorf("redirect %+v", r)
	}
	// The example's files are in configs/certs; elsewhere, CheckFiles
	// names each missing one at its line.
	if err := cfg.CheckFiles(); err != nil {
		t.Errorf("CheckFiles of the example as shipped: %v", err)
	}
	dir := t.TempDir()
	if cfg, err = LoadConfig(exampleConfig(t, dir, "origin.yaml")); err != nil {
		t.Fatal(err)
	}
	err = cfg.CheckFiles()
	for _, want := range []string{
		"origin.yaml:22: origin.listeners[1].mutual_tls: trust store: open " + filepath.Join(dir, "certs", "edge-ca.pem"),
		"origin.yaml:31: origin.listeners[2].certificates.files[0].cert: open " + filepath.Join(dir, "certs", "stream.pem"),
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckFiles:\n%v\nwant it to contain\n%s", err, want)
		}
	}

	// Relative paths are relative to the config file.
	cfg, err = LoadConfig(filepath.Join("..", "configs", "origin-edge.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(filepath.Join("..", "configs", "certs", "edge-ca.pem"))
	if got := cfg.Origin.Listeners[1].MutualTLS.TrustStore; got != abs {
		t.Errorf("trust_store %s, want %s", got, abs)
	}
}

func TestNewReportsBadFiles(t *testing.T) {
	dir := t.TempDir()
	newTestPKI(t, dir)
	if err := os.WriteFile(filepath.Join(dir, "certs", "edge-ca.crl"), []byte("not a CRL"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(exampleConfig(t, dir, "origin-edge.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(cfg, zerolog.Nop())
	for _, want := range []string{"origin-edge.yaml:15: origin.listeners[1].mutual_tls: crl ", "origin-edge.yaml:21: origin.listeners[2].mutual_tls: crl "} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("New:\n%v\nwant it to contain\n%s", err, want)
		}
	}

	// A CRL signed by a CA outside the trust store is refused too.
	other := newTestPKI(t, t.TempDir())
	crl, _ := other.edgeCA.RevocationList()
	if err := os.WriteFile(filepath.Join(dir, "certs", "edge-ca.crl"), crl, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := cfg.CheckFiles(); err == nil || !strings.Contains(err.Error(), "is not signed by a CA of the trust store") {
		t.Errorf("CheckFiles with a foreign CRL: %v", err)
	}
}
