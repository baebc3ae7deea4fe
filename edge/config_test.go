package edge

import (
	"fmt"
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
		{"flush interval too short", "  location: T1\n", "  location: T1\n  logs: {dir: logs, flush_interval: 1ms}\n", "edge.yaml:3: edge.logs.flush_interval: 1ms: use 10ms to 1m"},
		{"bad duration", "        domain_name: app.example.test\n", "        domain_name: app.example.test\n        response_timeout: 30 seconds\n", `edge.yaml:9: distributions[0].origins[0].response_timeout: "30 seconds" is not a duration`},
		{"missing origin", "    origins:\n      - id: app\n        domain_name: app.example.test\n", "", "edge.yaml:5: distributions[0].origins: at least one origin is required"},
		{"behavior pointing nowhere", "{target: app}", "{target: ap}", `edge.yaml:9: distributions[0].default_behavior.target: no origin or origin group with id "ap"`},
		{"missing domain name", "        domain_name: app.example.test\n", "", "edge.yaml:7: distributions[0].origins[0].domain_name: missing"},
		{"bad policy", "  - aliases: [www.example.test]\n", "  - aliases: [www.example.test]\n    viewer_protocol_policy: http-please\n", `edge.yaml:6: distributions[0].viewer_protocol_policy: "http-please": use allow-all`},
		{"bad security policy", "  - aliases: [www.example.test]\n", "  - aliases: [www.example.test]\n    minimum_protocol_version: TLSv9\n", `edge.yaml:6: distributions[0].minimum_protocol_version: "TLSv9" is not a security policy`},
		{"too many attempts", "        domain_name: app.example.test\n", "        domain_name: app.example.test\n        connection_attempts: 7\n", "edge.yaml:9: distributions[0].origins[0].connection_attempts: 7: must be 1, 2 or 3"},
		{"method", "{target: app}", "{target: app, allowed_methods: [GET, HEAD, BREW]}", `edge.yaml:9: distributions[0].default_behavior.allowed_methods[2]: "BREW"`},
		{"hop-by-hop custom header", "        domain_name: app.example.test\n", "        domain_name: app.example.test\n        custom_headers: {Connection: close}\n", "distributions[0].origins[0].custom_headers.Connection: Connection cannot be set"},
		{"unknown managed origin request policy", "{target: app}", "{target: app, origin_request_policy: AllViewers}", `edge.yaml:9: distributions[0].default_behavior.origin_request_policy: "AllViewers" is not a managed origin request policy`},
		{"bad origin request policy list", "{target: app}", "{target: app, origin_request_policy: {headers: {except: [a]}}}", `edge.yaml:9: distributions[0].default_behavior.origin_request_policy.headers: use none, all, a list of names, or {all_except: [names]}`},
		{"hop-by-hop forwarded", "{target: app}", "{target: app, origin_request_policy: {headers: [Origin, Connection]}}", `edge.yaml:9: distributions[0].default_behavior.origin_request_policy.headers[1]: Connection is hop-by-hop`},
		{"X-Forwarded-For forwarded", "{target: app}", "{target: app, origin_request_policy: {headers: [X-Forwarded-For]}}", `edge.yaml:9: distributions[0].default_behavior.origin_request_policy.headers[0]: the edge sets X-Forwarded-For itself`},
		{"stale on a 404", "{target: app}", "{target: app, cache_policy: {stale_if_error: 1h, stale_on_status: [503, 404]}}", `edge.yaml:9: distributions[0].default_behavior.cache_policy.stale_on_status[1]: 404: list 5xx statuses`},
		{"bad stale duration", "{target: app}", "{target: app, cache_policy: {stale_if_error: forever}}", `edge.yaml:9: distributions[0].default_behavior.cache_policy.stale_if_error: "forever" is not a duration`},
		{"unknown managed response headers policy", "{target: app}", "{target: app, response_headers_policy: SecurityHeaders}", `edge.yaml:9: distributions[0].default_behavior.response_headers_policy: "SecurityHeaders" is not a managed response headers policy`},
		{"frame options", "{target: app}", "{target: app, response_headers_policy: {security_headers: {frame_options: {value: ALLOWALL}}}}", `edge.yaml:9: distributions[0].default_behavior.response_headers_policy.security_headers.frame_options.value: "ALLOWALL": use DENY or SAMEORIGIN`},
		{"hsts without max age", "{target: app}", "{target: app, response_headers_policy: {security_headers: {strict_transport_security: {preload: true}}}}", `edge.yaml:9: distributions[0].default_behavior.response_headers_policy.security_headers.strict_transport_security.max_age: missing`},
		{"cors any origin with credentials", "{target: app}", "{target: app, response_headers_policy: {cors: {allow_origins: [\"*\"], allow_credentials: true}}}", `edge.yaml:9: distributions[0].default_behavior.response_headers_policy.cors.allow_origins[0]: "*" cannot be combined with allow_credentials`},
		{"cors origin with a path", "{target: app}", "{target: app, response_headers_policy: {cors: {allow_origins: [https://a.test/x]}}}", `edge.yaml:9: distributions[0].default_behavior.response_headers_policy.cors.allow_origins[0]: "https://a.test/x": use`},
		{"remove content length", "{target: app}", "{target: app, response_headers_policy: {remove_headers: [content-length]}}", `edge.yaml:9: distributions[0].default_behavior.response_headers_policy.remove_headers[0]: content-length cannot be removed`},
		{"sampling rate", "{target: app}", "{target: app, response_headers_policy: {server_timing: {enabled: true, sampling_rate: 150}}}", `edge.yaml:9: distributions[0].default_behavior.response_headers_policy.server_timing.sampling_rate: 150: use a percentage`},
		{"wildcard without dns-01", "  certificates: {self_signed: [www.example.test]}\ndistributions:\n  - aliases: [www.example.test]\n", "  certificates: {acme: {directory: https://ca.example/dir}}\ndistributions:\n  - aliases: [www.example.test, \"*.example.test\"]\n", `edge.yaml:5: distributions[0].aliases[1]: *.example.test: a wildcard certificate needs the DNS-01 challenge`},
		{"IP alias without shortlived", "  certificates: {self_signed: [www.example.test]}\ndistributions:\n  - aliases: [www.example.test]\n", "  certificates: {acme: {directory: https://ca.example/dir, profile: classic}}\ndistributions:\n  - aliases: [www.example.test, \"2001:db8::7\"]\n", `edge.yaml:5: distributions[0].aliases[1]: 2001:db8::7: an IP address certificate needs certificates.acme.profile: shortlived`},
		{"dns without dns-01", "  certificates: {self_signed: [www.example.test]}\n", "  certificates: {acme: {directory: https://ca.example/dir, dns: {provider: rfc2136, server: 192.0.2.53, tsig: {name: k, secret: c2VjcmV0}}}}\n", `edge.yaml:3: edge.certificates.acme.dns: set, but challenges has no dns-01`},
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

func TestOriginRequestPolicyConfig(t *testing.T) {
	for _, tt := range []struct {
		yaml  string
		check func(b *Behavior) bool
	}{
		{"", func(b *Behavior) bool {
			f := cachePolicy(b).Forward
			return b.OriginRequestPolicy.Managed == ORPAllViewerExceptHostHeader && f.Headers.All && f.Cookies.All && f.QueryStrings.All && !f.Host
		}},
		{", origin_request_policy: AllViewer", func(b *Behavior) bool { return cachePolicy(b).Forward.Host }},
		{", origin_request_policy: UserAgentRefererHeaders", func(b *Behavior) bool {
			f := cachePolicy(b).Forward
			return !f.Headers.All && len(f.Headers.Names) == 2 && !f.Cookies.All && !f.QueryStrings.All
		}},
		{", origin_request_policy: CORS-CustomOrigin", func(b *Behavior) bool {
			f := cachePolicy(b).Forward
			return len(f.Headers.Names) == 1 && f.Headers.Names[0] == "Origin"
		}},
		{", origin_request_policy: {headers: {all_except: [Authorization]}, cookies: [session], query_strings: none}", func(b *Behavior) bool {
			f := cachePolicy(b).Forward
			return f.Headers.All && len(f.Headers.Except) == 1 && len(f.Cookies.Names) == 1 && !f.QueryStrings.All && len(f.QueryStrings.Names) == 0
		}},
		// A custom policy forwarding nothing is the key only, not the default.
		{", origin_request_policy: {headers: none, cookies: none, query_strings: none}", func(b *Behavior) bool {
			f := cachePolicy(b).Forward
			return b.OriginRequestPolicy.Managed == "" && !f.Headers.All && !f.Cookies.All && !f.QueryStrings.All
		}},
		{", origin_request_policy: {headers: [Host, X-Original-URL]}", func(b *Behavior) bool { return cachePolicy(b).Forward.Host }},
		{", cache_policy: {stale_if_error: 1h, stale_while_revalidate: 30s, stale_on_status: [502], error_caching_min_ttl: 1m}", func(b *Behavior) bool {
			p := cachePolicy(b)
			return p.StaleIfError == time.Hour && p.StaleWhileRevalidate == 30*time.Second && len(p.StaleOnStatus) == 1 && p.ErrorCachingMinTTL == time.Minute
		}},
		{"", func(b *Behavior) bool {
			p := cachePolicy(b)
			return p.ErrorCachingMinTTL == 10*time.Second && p.StaleIfError == 0 && len(p.StaleOnStatus) == 4
		}},
	} {
		cfg, err := ParseConfig("edge.yaml", []byte(strings.Replace(minimalConfig, "{target: app}", "{target: app"+tt.yaml+"}", 1)))
		if err != nil {
			t.Fatalf("%s: %v", tt.yaml, err)
		}
		if b := &cfg.Distributions[0].DefaultBehavior; !tt.check(b) {
			t.Errorf("%q: %+v", tt.yaml, cachePolicy(b))
		}
	}
}

// The README's origin request policy examples are valid behaviors.
func TestREADMEOriginRequestPolicyExamples(t *testing.T) {
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(data), "### What reaches the origin\n")
	if !ok {
		t.Fatal("README.md has no section \"What reaches the origin\"")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	blocks := strings.Split(section, "```yaml\n")[1:]
	if len(blocks) != 3 {
		t.Fatalf("%d yaml examples, want 3 (a static site, a site with logins, an API)", len(blocks))
	}
	for i, b := range blocks {
		b, _, _ = strings.Cut(b, "```")
		if !strings.Contains(b, "default_behavior:") {
			b = "default_behavior: {target: api}\n" + b
		}
		text := `edge:
  certificates: {self_signed: [www.example.test]}
distributions:
  - aliases: [www.example.test]
    origins:
      - {id: site, domain_name: site.example.test}
      - {id: app, domain_name: app.example.test}
      - {id: api, domain_name: api.example.test}
` + indent(b, "    ")
		if _, err := ParseConfig(fmt.Sprintf("README example %d", i+1), []byte(text)); err != nil {
			t.Errorf("README example %d: %v\n%s", i+1, err, b)
		}
	}
}

// The README's response headers policy example is a valid behavior.
func TestREADMEResponseHeadersPolicyExample(t *testing.T) {
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(data), "## Response headers policies\n")
	if !ok {
		t.Fatal("README.md has no section \"Response headers policies\"")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	_, b, ok := strings.Cut(section, "```yaml\n")
	if !ok {
		t.Fatal("no yaml example")
	}
	b, _, _ = strings.Cut(b, "```")
	text := `edge:
  certificates: {self_signed: [www.example.test]}
distributions:
  - aliases: [www.example.test]
    origins: [{id: app, domain_name: app.example.test}]
` + indent(b, "    ")
	cfg, err := ParseConfig("README example", []byte(text))
	if err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	p := cfg.Distributions[0].DefaultBehavior.ResponseHeadersPolicy
	if p.CORS == nil || p.SecurityHeaders.StrictTransportSecurity == nil || len(p.RemoveHeaders) != 2 || !p.ServerTiming.Enabled {
		t.Errorf("example decoded to %+v", p)
	}
}

func indent(s, by string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = by + l
	}
	return strings.Join(lines, "\n") + "\n"
}

// A host is served by the distribution with it as an alias, else by the
// one whose wildcard alias covers it (one label deep, not the apex).
func TestDistributionByWildcard(t *testing.T) {
	exact, wild := &distribution{}, &distribution{}
	st := &state{byHost: map[string]*distribution{"www.example.test": exact, "*.example.test": wild}}
	for host, want := range map[string]*distribution{
		"www.example.test":    exact,
		"a.example.test":      wild,
		"example.test":        nil,
		"a.b.example.test":    nil,
		"a.example.test.evil": nil,
		"":                    nil,
	} {
		if got := st.distribution(host); got != want {
			t.Errorf("distribution(%q) = %p, want %p", host, got, want)
		}
	}
}
