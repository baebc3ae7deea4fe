package redisstore

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// ParseURL makes a client for a Redis URL (see Options.URL for the forms),
// with TLS verified against the system roots for rediss schemes. Use New with
// Options.TLSConfig for a private CA.
func ParseURL(rawURL string) (redis.UniversalClient, error) {
	return parseURL(rawURL, nil)
}

func parseURL(rawURL string, base *tls.Config) (redis.UniversalClient, error) {
	scheme, rest, ok := strings.Cut(rawURL, "://")
	if !ok {
		return nil, errors.New("redisstore: Redis URL has no scheme (want redis://, rediss://, redis-cluster:// or rediss-cluster://)")
	}
	// url.Parse errors quote the whole URL, password included: report
	// problems without it.
	authority, tail, _ := strings.Cut(rest, "?")
	pathPart := ""
	if i := strings.IndexByte(authority, '/'); i >= 0 {
		authority, pathPart = authority[:i], authority[i:]
	}
	query, err := url.ParseQuery(tail)
	if err != nil {
		return nil, errors.New("redisstore: Redis URL has an invalid query string")
	}
	// These would weaken what this package promises: verified TLS and reads
	// from the primary only.
	for _, p := range [...]string{"skip_verify", "read_only", "route_by_latency", "route_randomly"} {
		if query.Has(p) {
			return nil, fmt.Errorf("redisstore: Redis URL parameter %q is refused: TLS is always verified and reads always go to the primary", p)
		}
	}
	userinfo, hosts := "", authority
	if i := strings.LastIndexByte(authority, '@'); i >= 0 {
		userinfo, hosts = authority[:i+1], authority[i+1:]
	}
	if hosts == "" {
		return nil, fmt.Errorf("redisstore: %s URL has no host", scheme)
	}

	switch scheme {
	case "redis", "rediss":
		if strings.Contains(hosts, ",") {
			return nil, fmt.Errorf("redisstore: %s URL has several hosts (%s); use %s-cluster:// for Redis Cluster", scheme, hosts, scheme)
		}
		if _, err := url.Parse(rawURL); err != nil {
			return nil, fmt.Errorf("redisstore: invalid %s URL for host %s", scheme, hosts)
		}
		o, err := redis.ParseURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("redisstore: %s URL for host %s: %w", scheme, hosts, err)
		}
		if scheme == "rediss" {
			if o.TLSConfig, err = tlsConfig(base, o.TLSConfig.ServerName); err != nil {
				return nil, err
			}
		}
		return redis.NewClient(o), nil

	case "redis-cluster", "rediss-cluster":
		if pathPart != "" && pathPart != "/" && pathPart != "/0" {
			return nil, fmt.Errorf("redisstore: %s URL has path %q: Redis Cluster has only database 0", scheme, pathPart)
		}
		addrs := strings.Split(hosts, ",")
		for i, a := range addrs {
			h, p, err := net.SplitHostPort(a)
			if n, perr := strconv.Atoi(p); err != nil || h == "" || perr != nil || n < 1 || n > 65535 {
				return nil, fmt.Errorf("redisstore: %s URL address %q is not host:port", scheme, a)
			}
			if i > 0 {
				query.Add("addr", a)
			}
		}
		single := strings.TrimSuffix(scheme, "-cluster") + "://" + userinfo + addrs[0]
		if len(query) > 0 {
			single += "?" + query.Encode()
		}
		if _, err := url.Parse(single); err != nil {
			return nil, fmt.Errorf("redisstore: invalid %s URL for hosts %s", scheme, hosts)
		}
		o, err := redis.ParseClusterURL(single)
		if err != nil {
			return nil, fmt.Errorf("redisstore: %s URL for hosts %s: %w", scheme, hosts, err)
		}
		if scheme == "rediss-cluster" {
			// No fixed ServerName: each node is verified against the address
			// it is dialled at, as nodes discovered through CLUSTER SLOTS have
			// their own names.
			if o.TLSConfig, err = tlsConfig(base, ""); err != nil {
				return nil, err
			}
		}
		return redis.NewClusterClient(o), nil

	default:
		return nil, fmt.Errorf("redisstore: unsupported Redis URL scheme %q (want redis, rediss, redis-cluster or rediss-cluster)", scheme)
	}
}

// tlsConfig derives the client TLS configuration from base, refusing to
// skip verification.
func tlsConfig(base *tls.Config, serverName string) (*tls.Config, error) {
	c := &tls.Config{}
	if base != nil {
		if base.InsecureSkipVerify {
			return nil, errors.New("redisstore: TLS InsecureSkipVerify is refused: certificates and locks would be open to any interceptor")
		}
		c = base.Clone()
	}
	if c.ServerName == "" {
		c.ServerName = serverName
	}
	c.MinVersion = max(c.MinVersion, tls.VersionTLS12)
	return c, nil
}

// checkPrimaryOnly refuses a Cluster client that reads from replicas, where
// Load could miss the last Store.
func checkPrimaryOnly(c redis.UniversalClient) error {
	if cc, ok := c.(*redis.ClusterClient); ok {
		o := cc.Options()
		if o.ReadOnly || o.RouteByLatency || o.RouteRandomly {
			return errors.New("redisstore: Cluster client reads from replicas (ReadOnly, RouteByLatency or RouteRandomly); certificate storage needs read-your-writes from the primary")
		}
	}
	return nil
}
