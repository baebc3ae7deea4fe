package redisstore

import (
	"context"
	"crypto/tls"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgegate/edgegate/internal/pki"
	"github.com/redis/go-redis/v9"
)

func TestParseURL(t *testing.T) {
	t.Run("accepted", func(t *testing.T) {
		cases := []struct {
			url   string
			check func(t *testing.T, c redis.UniversalClient)
		}{
			{"redis://127.0.0.1:6390/2", func(t *testing.T, c redis.UniversalClient) {
				o := c.(*redis.Client).Options()
				if o.Addr != "127.0.0.1:6390" || o.DB != 2 || o.TLSConfig != nil {
					t.Errorf("options %s db %d tls %v", o.Addr, o.DB, o.TLSConfig)
				}
			}},
			{"rediss://user:pw@cache.example:6380/0?dial_timeout=2s", func(t *testing.T, c redis.UniversalClient) {
				o := c.(*redis.Client).Options()
				if o.TLSConfig == nil || o.TLSConfig.InsecureSkipVerify || o.TLSConfig.ServerName != "cache.example" ||
					o.TLSConfig.MinVersion < tls.VersionTLS12 || o.Username != "user" || o.Password != "pw" || o.DialTimeout != 2*time.Second {
					t.Errorf("TLS or auth options not as asked: %+v", o)
				}
			}},
			{"redis-cluster://u:p@h1:7001,h2:7002,h3:7003", func(t *testing.T, c redis.UniversalClient) {
				o := c.(*redis.ClusterClient).Options()
				if strings.Join(o.Addrs, ",") != "h1:7001,h2:7002,h3:7003" || o.ReadOnly || o.RouteByLatency || o.RouteRandomly ||
					o.TLSConfig != nil || o.Password != "p" {
					t.Errorf("cluster options: addrs %v readonly %v latency %v random %v", o.Addrs, o.ReadOnly, o.RouteByLatency, o.RouteRandomly)
				}
			}},
			{"rediss-cluster://h1:7001,h2:7002/", func(t *testing.T, c redis.UniversalClient) {
				o := c.(*redis.ClusterClient).Options()
				if o.TLSConfig == nil || o.TLSConfig.InsecureSkipVerify || o.TLSConfig.ServerName != "" || len(o.Addrs) != 2 {
					t.Errorf("cluster TLS: %+v addrs %v", o.TLSConfig, o.Addrs)
				}
			}},
		}
		for _, c := range cases {
			client, err := ParseURL(c.url)
			if err != nil {
				t.Errorf("ParseURL(%q): %v", c.url, err)
				continue
			}
			c.check(t, client)
			_ = client.Close()
		}
	})

	t.Run("refused", func(t *testing.T) {
		for _, u := range []string{
			"rediss://h:6380?skip_verify=true",
			"rediss-cluster://h1:1,h2:2?skip_verify=1",
			"redis-cluster://h1:1,h2:2?read_only=true",
			"redis-cluster://h1:1,h2:2?route_by_latency=true",
			"redis-cluster://h1:1,h2:2?route_randomly=true",
			"redis://h1:1,h2:2",
			"redis-cluster://h1:1,,h3:3",
			"redis-cluster://h1:1,h2:2/3",
			"redis://h:1/notanumber",
			"redis://h:1?no_such_option=1",
			"http://h:1",
			"h:1",
			"redis://",
		} {
			if c, err := ParseURL(u); err == nil {
				_ = c.Close()
				t.Errorf("ParseURL(%q) accepted", u)
			}
		}
	})

	t.Run("errors hide the password", func(t *testing.T) {
		for _, u := range []string{
			"redis://user:s3cret@h:1/notanumber",
			"redis://user:s3cret@[::1",
			"redis://user:s3cret@h:1?%zz",
			"redis-cluster://user:s3cret@h1:1,h2:bad port",
		} {
			_, err := ParseURL(u)
			if err == nil {
				t.Errorf("ParseURL(%q) accepted", u)
			} else if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("ParseURL error reveals the password: %v", err)
			}
		}
	})
}

func TestNewRefusesUnsafeOptions(t *testing.T) {
	ctx := testCtx(t)
	readOnly := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}, ReadOnly: true})
	defer readOnly.Close()
	byLatency := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}, RouteByLatency: true})
	defer byLatency.Close()
	plain := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer plain.Close()
	for name, o := range map[string]Options{
		"replica reads":   {Client: readOnly},
		"latency routing": {Client: byLatency},
		"URL and client":  {Client: plain, URL: "redis://127.0.0.1:1"},
		"nothing":         {},
		"brace in prefix": {URL: "redis://127.0.0.1:1", Prefix: "a{b}"},
		"tiny TTL":        {URL: "redis://127.0.0.1:1", LockTTL: time.Millisecond},
		"insecure TLS":    {URL: "rediss://127.0.0.1:1", TLSConfig: &tls.Config{InsecureSkipVerify: true}},
	} {
		if s, err := New(ctx, o); err == nil {
			_ = s.Close()
			t.Errorf("%s: New accepted", name)
		}
	}
}

// TestTLSVerified: a rediss server with a certificate from a private CA is
// refused with the system roots and accepted with the CA in TLSConfig.
func TestTLSVerified(t *testing.T) {
	t.Parallel()
	ca, err := pki.NewAuthority("redisstore test CA")
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(pki.LeafOptions{Names: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile, err := leaf.WriteFiles(dir, "redis")
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca.pem")
	if err := ca.WriteFile(caFile); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	startRedis(t, dir, "--port", "0", "--tls-port", strconv.Itoa(port),
		"--tls-cert-file", certFile, "--tls-key-file", keyFile, "--tls-ca-cert-file", caFile,
		"--tls-auth-clients", "no")
	url := "rediss://127.0.0.1:" + strconv.Itoa(port) + "/0"
	ctx := testCtx(t)

	// The server takes a moment to listen: retry with the trusted CA first.
	trusted := &tls.Config{RootCAs: ca.Pool()}
	var s *Storage
	eventually(t, 10*time.Second, "TLS redis-server answers", func() bool {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		s, err = New(cctx, Options{URL: url, TLSConfig: trusted, LockTTL: testTTL})
		return err == nil
	})
	defer s.Close()
	if err := s.Store(ctx, "tls/k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if v, err := s.Load(ctx, "tls/k"); err != nil || string(v) != "v" {
		t.Fatalf("Load over TLS = %q, %v", v, err)
	}

	client, err := ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	err = client.Ping(ctx).Err()
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("Ping with system roots against a private CA: %v, want a certificate error", err)
	}
}

// startRedis runs a redis-server with extra arguments in dir until the test
// ends.
func startRedis(t testing.TB, dir string, args ...string) {
	t.Helper()
	args = append([]string{"--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir,
		"--logfile", filepath.Join(dir, "redis.log"), "--protected-mode", "no"}, args...)
	cmd := exec.Command("redis-server", args...)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
}
