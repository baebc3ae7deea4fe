package edge

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestExampleConfigLoads(t *testing.T) {
	cfg, err := LoadConfig("../configs/edge.yaml")
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.Distributions[0]
	if d.ID != "www.example.com" || d.Origins[0].ResponseTimeout.D() != 30*time.Second || !d.Behaviors[0].CachePolicy.Disabled {
		t.Fatalf("unexpected decode: %+v", d)
	}
	if d.Origins[1].ConnectionAttempts != 3 || d.Origins[1].ProtocolPolicy != OriginHTTPSOnly {
		t.Fatalf("defaults not applied to the second origin: %+v", d.Origins[1])
	}
	if c := cfg.Edge.Cache; c.Disk.Path == "" || c.Disk.Size != 50<<30 || c.RedisTimeout.D() != 50*time.Millisecond {
		t.Fatalf("example's cache tiers: %+v", c)
	}
}

func TestCacheSettingsErrors(t *testing.T) {
	for _, tc := range []struct{ cache, want string }{
		{"{disk: {size: 1GiB}}", "edge.cache.disk.path: missing"},
		{"{disk: {path: /tmp/x, size: 1MiB}}", "edge.cache.disk.size: 1048576 bytes: at least 16MiB"},
		{"{redis_timeout: 1m}", "edge.cache.redis_timeout: 1m0s: use 1ms to 10s"},
		{"{memory: 1KiB}", "edge.cache.memory: 1024 bytes: at least 1MiB"},
	} {
		text := strings.Replace(minimalConfig, "  location: T1\n", "  location: T1\n  cache: "+tc.cache+"\n", 1)
		_, err := ParseConfig("edge.yaml", []byte(text))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("cache %s: %v, want %q", tc.cache, err, tc.want)
		}
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "edge.yaml")
	_ = os.WriteFile(file, []byte(strings.Replace(minimalConfig, "  location: T1\n", "  location: T1\n  cache: {disk: {path: cache}}\n", 1)), 0o600)
	if cfg, err := LoadConfig(file); err != nil || cfg.Edge.Cache.Disk.Path != filepath.Join(dir, "cache") || cfg.Edge.Cache.Disk.Size != 10<<30 {
		t.Fatalf("disk path relative to the config file: %v %+v", err, cfg.Edge.Cache.Disk)
	}
	text := strings.Replace(minimalConfig, "{target: app}", "{target: app, cache_policy: {max_object_size: 5GiB}}", 1)
	cfg, err := ParseConfig("edge.yaml", []byte(text))
	if err != nil || cachePolicy(&cfg.Distributions[0].DefaultBehavior).MaxObjectSize != 5<<30 {
		t.Fatalf("max_object_size: %v", err)
	}
}

const minimalConfig = `edge:
  location: T1
  certificates: {self_signed: [www.example.test]}
distributions:
  - aliases: [www.example.test]
    origins:
      - id: app
        domain_name: app.example.test
    default_behavior: {target: app}
`

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name, from, to string
		want           string
	}{
		{"unknown key", "  location: T1\n", "  location: T1\n  lokation: x\n", "edge.yaml:3: edge.lokation: unknown key"},
		{"bad duration", "        domain_name: app.example.test\n", "        domain_name: app.example.test\n        response_timeout: 30 seconds\n", `edge.yaml:9: distributions[0].origins[0].response_timeout: "30 seconds" is not a duration`},
		{"missing origin", "    origins:\n      - id: app\n        domain_name: app.example.test\n", "", "edge.yaml:5: distributions[0].origins: at least one origin is required"},
		{"behavior pointing nowhere", "{target: app}", "{target: ap}", `edge.yaml:9: distributions[0].default_behavior.target: no origin or origin group with id "ap"`},
		{"missing domain name", "        domain_name: app.example.test\n", "", "edge.yaml:7: distributions[0].origins[0].domain_name: missing"},
		{"bad policy", "  - aliases: [www.example.test]\n", "  - aliases: [www.example.test]\n    viewer_protocol_policy: http-please\n", `edge.yaml:6: distributions[0].viewer_protocol_policy: "http-please": use allow-all`},
		{"bad security policy", "  - aliases: [www.example.test]\n", "  - aliases: [www.example.test]\n    minimum_protocol_version: TLSv9\n", `edge.yaml:6: distributions[0].minimum_protocol_version: "TLSv9" is not a security policy`},
		{"too many attempts", "        domain_name: app.example.test\n", "        domain_name: app.example.test\n        connection_attempts: 7\n", "edge.yaml:9: distributions[0].origins[0].connection_attempts: 7: must be 1, 2 or 3"},
		{"method", "{target: app}", "{target: app, allowed_methods: [GET, HEAD, BREW]}", `edge.yaml:9: distributions[0].default_behavior.allowed_methods[2]: "BREW"`},
		{"hop-by-hop custom header", "        domain_name: app.example.test\n", "        domain_name: app.example.test\n        custom_headers: {Connection: close}\n", "distributions[0].origins[0].custom_headers.Connection: Connection cannot be set"},
		{"bad ssl protocol", "        domain_name: app.example.test\n", "        domain_name: app.example.test\n        ssl_protocols: [SSLv3]\n", `edge.yaml:9: distributions[0].origins[0].ssl_protocols[0]: "SSLv3"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := minimalConfig
			if !strings.Contains(text, tt.from) {
				t.Fatalf("test edits %q, which the base config lacks", tt.from)
			}
			text = strings.Replace(text, tt.from, tt.to, 1)
			path := filepath.Join(t.TempDir(), "edge.yaml")
			if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := LoadConfig(path)
			if err == nil {
				t.Fatalf("config accepted:\n%s", text)
			}
			got := strings.TrimPrefix(err.Error(), filepath.Dir(path)+string(filepath.Separator))
			if !strings.Contains(got, tt.want) {
				t.Fatalf("error\n  %s\nwant it to contain\n  %s", got, tt.want)
			}
		})
	}
}

func TestConfigRelativePaths(t *testing.T) {
	dir := t.TempDir()
	text := strings.Replace(minimalConfig, "        domain_name: app.example.test\n", "        domain_name: app.example.test\n        trusted_ca: certs/ca.pem\n", 1)
	path := filepath.Join(dir, "edge.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.Distributions[0].Origins[0].TrustedCA, filepath.Join(dir, "certs/ca.pem"); got != want {
		t.Fatalf("trusted_ca = %s, want %s", got, want)
	}
	err = cfg.CheckFiles()
	if err == nil || !strings.Contains(err.Error(), "edge.yaml:9: distributions[0].origins[0].trusted_ca:") {
		t.Fatalf("CheckFiles = %v, want the missing CA placed at line 9", err)
	}
}
