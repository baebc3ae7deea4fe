package edge

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/edgegate/edgegate/acme"
	"github.com/edgegate/edgegate/cache"
	"github.com/edgegate/edgegate/edge/originconn"
	"github.com/edgegate/edgegate/internal/yamlconf"
	"go.yaml.in/yaml/v3"
)

// Config is an edge node's configuration file: the node's own settings and
// the distributions it serves.
type Config struct {
	Edge          Settings       `yaml:"edge"`
	Distributions []Distribution `yaml:"distributions"`

	doc *yamlconf.Document
}

// Settings are the edge node's own settings.
type Settings struct {
	// Location is written to x-edge-location and the Via header.
	Location     string        `yaml:"location"`
	Listen       Listen        `yaml:"listen"`
	Certificates acme.Config   `yaml:"certificates"`
	Cache        CacheSettings `yaml:"cache"`
	Logs         LogSettings   `yaml:"logs"`
	Admin        AdminSettings `yaml:"admin"`
	// Resolver is a DNS server (HOST:PORT) used to resolve origin domain
	// names; the system resolver when empty.
	Resolver string   `yaml:"resolver"`
	Timeouts Timeouts `yaml:"timeouts"`
}

// Listen holds the viewer listener addresses.
type Listen struct {
	HTTP  string `yaml:"http"`
	HTTPS string `yaml:"https"`
}

// CacheSettings size the cache tiers: memory, then disk, then Redis.
type CacheSettings struct {
	Memory yamlconf.Size `yaml:"memory"`
	Disk   DiskCache     `yaml:"disk"`
	Redis  string        `yaml:"redis"`
	// RedisTimeout bounds each Redis call on a viewer's path; past it (or
	// while Redis is down) the edge goes on without Redis.
	RedisTimeout yamlconf.Duration `yaml:"redis_timeout"`
}

// DiskCache is the disk tier: off unless Path is set.
type DiskCache struct {
	Path string        `yaml:"path"`
	Size yamlconf.Size `yaml:"size"`
}

// LogSettings configure the standard (access) logs.
type LogSettings struct {
	// Dir receives the log files; standard logs are off when empty.
	Dir string `yaml:"dir"`
	// Rotate starts a new file every period (default 1h).
	Rotate yamlconf.Duration `yaml:"rotate"`
	// Gzip compresses finished files.
	Gzip bool `yaml:"gzip"`
	// FlushInterval is how long a line may wait in memory before it is
	// written to the file (default 1s): what `edgegate logs` on a live
	// directory may miss. Shorter costs more writes under load.
	FlushInterval yamlconf.Duration `yaml:"flush_interval"`
	// IncludeCookies logs the Cookie header in cs(Cookie), as CloudFront's
	// cookie logging does; off by default because cookies carry secrets.
	IncludeCookies bool `yaml:"include_cookies"`
}

// AdminSettings configure the admin listener (/healthz, /readyz, /metrics,
// /invalidations, /reload, /debug/).
type AdminSettings struct {
	Listen string `yaml:"listen"`
	// Token is the bearer token every state-changing call needs, and every
	// read unless the listener is on loopback; usually "${EDGEGATE_ADMIN_TOKEN}".
	Token string `yaml:"token"`
}

// Timeouts bound every viewer connection; zero values take the defaults.
type Timeouts struct {
	ReadHeader yamlconf.Duration `yaml:"read_header"` // default 10s
	Read       yamlconf.Duration `yaml:"read"`        // whole request incl. body, default 60s
	Write      yamlconf.Duration `yaml:"write"`       // whole response, default 300s
	Idle       yamlconf.Duration `yaml:"idle"`        // keep-alive, default 120s
	Shutdown   yamlconf.Duration `yaml:"shutdown"`    // drain on SIGTERM, default 30s
	// MaxHeaderBytes limits request headers (default 20KiB, as CloudFront).
	MaxHeaderBytes yamlconf.Size `yaml:"max_header_bytes"`
}

// Distribution is a set of aliases served with one set of origins and
// behaviors, as a CloudFront distribution.
type Distribution struct {
	// ID names the distribution in cs(Host) of the logs; the first alias
	// when empty.
	ID                     string   `yaml:"id"`
	Aliases                []string `yaml:"aliases"`
	ViewerProtocolPolicy   string   `yaml:"viewer_protocol_policy"`
	MinimumProtocolVersion string   `yaml:"minimum_protocol_version"`
	// HTTPVersion is what viewers may speak over HTTPS besides HTTP/1.1,
	// with CloudFront's values (default http2and3).
	HTTPVersion string `yaml:"http_version"`
	// Allow0RTT lets HTTP/3 viewers resuming a session send GET, HEAD and
	// OPTIONS requests in 0-RTT early data, which an attacker can replay
	// (RFC 9001 §9.2); off by default.
	Allow0RTT       bool          `yaml:"allow_0rtt"`
	Origins         []Origin      `yaml:"origins"`
	OriginGroups    []OriginGroup `yaml:"origin_groups"`
	DefaultBehavior Behavior      `yaml:"default_behavior"`
	Behaviors       []Behavior    `yaml:"behaviors"`
}

// Origin is a custom origin: where and how the edge re-originates.
type Origin struct {
	ID                 string            `yaml:"id"`
	DomainName         string            `yaml:"domain_name"`
	ConnectTo          string            `yaml:"connect_to"`
	OriginPath         string            `yaml:"origin_path"`
	HTTPPort           int               `yaml:"http_port"`
	HTTPSPort          int               `yaml:"https_port"`
	ProtocolPolicy     string            `yaml:"protocol_policy"`
	SSLProtocols       []string          `yaml:"ssl_protocols"`
	TrustedCA          string            `yaml:"trusted_ca"`
	ClientCertificate  acme.KeyPair      `yaml:"client_certificate"`
	ConnectionAttempts int               `yaml:"connection_attempts"`
	ConnectionTimeout  yamlconf.Duration `yaml:"connection_timeout"`
	ResponseTimeout    yamlconf.Duration `yaml:"response_timeout"`
	KeepaliveTimeout   yamlconf.Duration `yaml:"keepalive_timeout"`
	CustomHeaders      map[string]string `yaml:"custom_headers"`
}

// OriginGroup fails over from its first member to the next.
type OriginGroup struct {
	ID               string   `yaml:"id"`
	Members          []string `yaml:"members"`
	FailoverCriteria []int    `yaml:"failover_criteria"`
}

// Behavior routes requests matching a path pattern to a target.
type Behavior struct {
	PathPattern         string              `yaml:"path_pattern"`
	Target              string              `yaml:"target"`
	CachePolicy         CachePolicy         `yaml:"cache_policy"`
	OriginRequestPolicy OriginRequestPolicy `yaml:"origin_request_policy"`
	AllowedMethods      []string            `yaml:"allowed_methods"`
	Compress            bool                `yaml:"compress"`
	// ResponseHeadersPolicy edits every response of the behavior.
	ResponseHeadersPolicy ResponseHeadersPolicy `yaml:"response_headers_policy"`
}

// OriginRequestPolicy names what reaches the origin besides the cache key:
// one of CloudFront's managed policies by name, or a mapping of headers,
// cookies and query strings. Absent, it is AllViewerExceptHostHeader: every
// end-to-end viewer header, cookie and query string, which is what an
// ordinary application needs.
type OriginRequestPolicy struct {
	// Managed is the managed policy's name when the policy was written as
	// one; empty for a custom policy.
	Managed      string   `yaml:"-"`
	Headers      NameList `yaml:"headers"`
	Cookies      NameList `yaml:"cookies"`
	QueryStrings NameList `yaml:"query_strings"`

	custom bool // written as a mapping
}

// Managed origin request policies, named as CloudFront names them.
const (
	ORPAllViewer                 = "AllViewer"
	ORPAllViewerExceptHostHeader = "AllViewerExceptHostHeader"
	ORPUserAgentRefererHeaders   = "UserAgentRefererHeaders"
	ORPCORSCustomOrigin          = "CORS-CustomOrigin"
	ORPCORSS3Origin              = "CORS-S3Origin"
)

// managedORP returns a managed origin request policy by name.
func managedORP(name string) (cache.OriginRequestPolicy, bool) {
	switch name {
	case ORPAllViewer:
		p := cache.ForwardAll()
		p.Host = true
		return p, true
	case ORPAllViewerExceptHostHeader:
		return cache.ForwardAll(), true
	case ORPUserAgentRefererHeaders:
		return cache.OriginRequestPolicy{Headers: cache.SelectNames("User-Agent", "Referer")}, true
	case ORPCORSCustomOrigin:
		return cache.OriginRequestPolicy{Headers: cache.SelectNames("Origin")}, true
	case ORPCORSS3Origin:
		return cache.OriginRequestPolicy{Headers: cache.SelectNames("Origin", "Access-Control-Request-Headers", "Access-Control-Request-Method")}, true
	}
	return cache.OriginRequestPolicy{}, false
}

// managedORPNames lists the managed policies for error messages.
const managedORPNames = ORPAllViewer + ", " + ORPAllViewerExceptHostHeader + ", " + ORPUserAgentRefererHeaders + ", " +
	ORPCORSCustomOrigin + ", " + ORPCORSS3Origin

// UnmarshalYAML accepts a managed policy's name or a mapping.
func (o *OriginRequestPolicy) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*o = OriginRequestPolicy{Managed: n.Value}
		if _, ok := managedORP(n.Value); !ok {
			return yamlconf.NewValueError(n, "%q is not a managed origin request policy (use %s, or a mapping with headers, cookies, query_strings)",
				n.Value, managedORPNames)
		}
		return nil
	}
	type plain OriginRequestPolicy
	var v plain
	if err := n.Decode(&v); err != nil {
		return err
	}
	*o = OriginRequestPolicy(v)
	o.custom = true
	return nil
}

// forward maps the policy to the cache package's. Naming Host among the
// headers forwards the viewer's Host, as AllViewer does.
func (o OriginRequestPolicy) forward() cache.OriginRequestPolicy {
	if o.Managed != "" {
		p, _ := managedORP(o.Managed)
		return p
	}
	p := cache.OriginRequestPolicy{Headers: o.Headers.selection(), Cookies: o.Cookies.selection(), QueryStrings: o.QueryStrings.selection()}
	for _, h := range o.Headers.Names {
		if strings.EqualFold(h, "Host") {
			p.Host = true
		}
	}
	return p
}

// CachePolicy is a behavior's caching: TTLs and the cache key. Written
// either as a mapping or as the word "disabled".
type CachePolicy struct {
	Disabled   bool
	DefaultTTL yamlconf.Duration `yaml:"default_ttl"`
	MaxTTL     yamlconf.Duration `yaml:"max_ttl"`
	MinTTL     yamlconf.Duration `yaml:"min_ttl"`
	Key        CacheKey          `yaml:"key"`
	// MaxObjectSize is the largest body stored (default 1GiB); larger ones
	// are relayed unstored.
	MaxObjectSize yamlconf.Size `yaml:"max_object_size"`
	// ErrorCachingMinTTL is how long a heuristically cacheable error (404,
	// 405, 410, 414, 501) without freshness of its own is cached, when
	// default_ttl is above zero (CloudFront's error caching minimum TTL).
	ErrorCachingMinTTL yamlconf.Duration `yaml:"error_caching_min_ttl"`
	// StaleIfError and StaleWhileRevalidate are the operator's serve-stale
	// windows, applied even when the origin sends neither directive.
	StaleIfError         yamlconf.Duration `yaml:"stale_if_error"`
	StaleWhileRevalidate yamlconf.Duration `yaml:"stale_while_revalidate"`
	// StaleOnStatus lists the origin statuses that stale_if_error answers
	// for (default 500, 502, 503, 504); connection failures and timeouts
	// always count.
	StaleOnStatus []int `yaml:"stale_on_status"`

	// set records which TTLs the file gave, so that an explicit 0 (a pure
	// RFC 9111 cache) is told apart from an absent key (CloudFront's
	// defaults).
	set map[string]bool
}

// CacheKey names what, besides host and path, is in the cache key (and so
// forwarded to the origin).
type CacheKey struct {
	QueryStrings NameList `yaml:"query_strings"`
	Headers      []string `yaml:"headers"`
	Cookies      NameList `yaml:"cookies"`
}

// NameList is "none", "all", a list of names, or {all_except: [names]}.
type NameList struct {
	All    bool
	Names  []string
	Except []string
}

func (l NameList) selection() cache.Selection {
	if l.All {
		return cache.SelectAllExcept(l.Except...)
	}
	return cache.SelectNames(l.Names...)
}

// UnmarshalYAML accepts none, all, a list, or {all_except: [names]}.
func (l *NameList) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.MappingNode:
		var v struct {
			AllExcept []string `yaml:"all_except"`
		}
		if len(n.Content) != 2 || n.Content[0].Value != "all_except" || n.Content[1].Decode(&v.AllExcept) != nil {
			return yamlconf.NewValueError(n, "use none, all, a list of names, or {all_except: [names]}")
		}
		*l = NameList{All: true, Except: v.AllExcept}
		return nil
	case yaml.ScalarNode:
		switch n.Value {
		case "all":
			*l = NameList{All: true}
		case "none", "":
			*l = NameList{}
		default:
			return yamlconf.NewValueError(n, "%q: use none, all, a list of names, or {all_except: [names]}", n.Value)
		}
		return nil
	case yaml.SequenceNode:
		var names []string
		if err := n.Decode(&names); err != nil {
			return yamlconf.NewValueError(n, "expected a list of names")
		}
		*l = NameList{Names: names}
		return nil
	}
	return yamlconf.NewValueError(n, "use none, all, a list of names, or {all_except: [names]}")
}

// UnmarshalYAML accepts "disabled" or a mapping.
func (p *CachePolicy) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		if n.Value == "disabled" {
			*p = CachePolicy{Disabled: true}
			return nil
		}
		return yamlconf.NewValueError(n, "%q: use disabled or a mapping with default_ttl, max_ttl, min_ttl, key", n.Value)
	}
	type plain CachePolicy
	var v plain
	if err := n.Decode(&v); err != nil {
		return err
	}
	*p = CachePolicy(v)
	p.set = map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		p.set[n.Content[i].Value] = true
	}
	return nil
}

// Viewer protocol policies.
const (
	PolicyAllowAll        = "allow-all"
	PolicyHTTPSOnly       = "https-only"
	PolicyRedirectToHTTPS = "redirect-to-https"
)

// HTTP versions of a distribution, as CloudFront names them; HTTP/1.1 is
// always served.
const (
	HTTPVersion11    = "http1.1"
	HTTPVersion2     = "http2"
	HTTPVersion2and3 = "http2and3"
	HTTPVersion3     = "http3"
)

// allowsH2 and allowsH3 tell which of HTTP/2 and HTTP/3 a distribution
// offers.
func (d *Distribution) allowsH2() bool {
	return d.HTTPVersion == HTTPVersion2 || d.HTTPVersion == HTTPVersion2and3
}

func (d *Distribution) allowsH3() bool {
	return d.HTTPVersion == HTTPVersion3 || d.HTTPVersion == HTTPVersion2and3
}

// Origin protocol policies.
const (
	OriginHTTPOnly    = "http-only"
	OriginHTTPSOnly   = "https-only"
	OriginMatchViewer = "match-viewer"
)

// Defaults, named after CloudFront's, except DefaultKeepaliveTimeout (see
// originconn.DefaultKeepaliveTimeout).
const (
	DefaultConnectionAttempts = 3
	DefaultConnectionTimeout  = 10 * time.Second
	DefaultResponseTimeout    = 30 * time.Second
	DefaultKeepaliveTimeout   = originconn.DefaultKeepaliveTimeout
	DefaultMaxHeaderBytes     = 20 << 10
	DefaultMinimumProtocol    = "TLSv1.2_2021"
)

var allowedFailover = []int{400, 403, 404, 416, 500, 502, 503, 504}

var knownMethods = []string{http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut,
	http.MethodPost, http.MethodPatch, http.MethodDelete}

// LoadConfig reads, strictly decodes, defaults and validates an edge config.
func LoadConfig(path string) (*Config, error) {
	var c Config
	doc, err := yamlconf.ReadFile(path, &c)
	if err != nil {
		return nil, err
	}
	c.doc = doc
	c.resolvePaths(filepath.Dir(path))
	c.applyDefaults()
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// resolvePaths makes relative file paths relative to the config file's
// directory, so a config works from any working directory.
func (c *Config) resolvePaths(dir string) {
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	for i := range c.Edge.Certificates.Files {
		abs(&c.Edge.Certificates.Files[i].Cert)
		abs(&c.Edge.Certificates.Files[i].Key)
	}
	if a := c.Edge.Certificates.ACME; a != nil {
		abs(&a.TrustedRoots)
		for i := range a.Fallback {
			abs(&a.Fallback[i].TrustedRoots)
		}
	}
	abs(&c.Edge.Logs.Dir)
	abs(&c.Edge.Cache.Disk.Path)
	for i := range c.Distributions {
		for j := range c.Distributions[i].Origins {
			o := &c.Distributions[i].Origins[j]
			abs(&o.TrustedCA)
			abs(&o.ClientCertificate.Cert)
			abs(&o.ClientCertificate.Key)
		}
	}
}

// CheckFiles reports referenced files (certificates, keys, CAs) that
// cannot be read, each at its place in the config file.
func (c *Config) CheckFiles() error {
	var errs yamlconf.Errors
	check := func(path, file string) {
		if file == "" {
			return
		}
		if f, err := os.Open(file); err != nil {
			errs = append(errs, c.errorf(path, "%v", err))
		} else {
			f.Close()
		}
	}
	for i, f := range c.Edge.Certificates.Files {
		check(fmt.Sprintf("edge.certificates.files[%d].cert", i), f.Cert)
		check(fmt.Sprintf("edge.certificates.files[%d].key", i), f.Key)
	}
	if a := c.Edge.Certificates.ACME; a != nil {
		check("edge.certificates.acme.trusted_roots", a.TrustedRoots)
		for i, f := range a.Fallback {
			check(fmt.Sprintf("edge.certificates.acme.fallback[%d].trusted_roots", i), f.TrustedRoots)
		}
	}
	for i, d := range c.Distributions {
		for j, o := range d.Origins {
			op := fmt.Sprintf("distributions[%d].origins[%d]", i, j)
			check(op+".trusted_ca", o.TrustedCA)
			check(op+".client_certificate.cert", o.ClientCertificate.Cert)
			check(op+".client_certificate.key", o.ClientCertificate.Key)
		}
	}
	return errs.Err()
}

// CheckCA asks the ACME CA's directory whether it offers the configured
// certificate profile, for `edgegate check`: an unknown profile is
// reported at its key with the profiles the CA offers.
func (c *Config) CheckCA(ctx context.Context) error {
	a := c.Edge.Certificates.ACME
	if err := acme.CheckProfile(ctx, a); err != nil {
		return c.errorf("edge.certificates.acme.profile", "%v", err)
	}
	return nil
}

// ParseConfig is LoadConfig for data already read; name is used in errors.
func ParseConfig(name string, data []byte) (*Config, error) {
	var c Config
	doc, err := yamlconf.Decode(name, data, &c)
	if err != nil {
		return nil, err
	}
	c.doc = doc
	c.applyDefaults()
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

func (c *Config) applyDefaults() {
	e := &c.Edge
	if e.Location == "" {
		e.Location = "EDGE1"
	}
	if e.Listen.HTTP == "" {
		e.Listen.HTTP = ":80"
	}
	if e.Listen.HTTPS == "" {
		e.Listen.HTTPS = ":443"
	}
	if e.Cache.Memory == 0 {
		e.Cache.Memory = 256 << 20
	}
	if e.Cache.Disk.Path != "" && e.Cache.Disk.Size == 0 {
		e.Cache.Disk.Size = 10 << 30
	}
	if e.Cache.RedisTimeout == 0 {
		e.Cache.RedisTimeout = yamlconf.Duration(50 * time.Millisecond)
	}
	if e.Logs.Rotate == 0 {
		e.Logs.Rotate = yamlconf.Duration(time.Hour)
	}
	if e.Logs.FlushInterval == 0 {
		e.Logs.FlushInterval = yamlconf.Duration(time.Second)
	}
	t := &e.Timeouts
	def := func(d *yamlconf.Duration, v time.Duration) {
		if *d == 0 {
			*d = yamlconf.Duration(v)
		}
	}
	def(&t.ReadHeader, 10*time.Second)
	def(&t.Read, 60*time.Second)
	def(&t.Write, 300*time.Second)
	def(&t.Idle, 120*time.Second)
	def(&t.Shutdown, 30*time.Second)
	if t.MaxHeaderBytes == 0 {
		t.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	for i := range c.Distributions {
		d := &c.Distributions[i]
		for j, a := range d.Aliases {
			d.Aliases[j] = strings.ToLower(strings.TrimSuffix(a, "."))
			if ip := net.ParseIP(d.Aliases[j]); ip != nil {
				d.Aliases[j] = ip.String() // the form a connection's address takes
			}
		}
		if d.ID == "" && len(d.Aliases) > 0 {
			d.ID = d.Aliases[0]
		}
		if d.ViewerProtocolPolicy == "" {
			d.ViewerProtocolPolicy = PolicyRedirectToHTTPS
		}
		if d.MinimumProtocolVersion == "" {
			d.MinimumProtocolVersion = DefaultMinimumProtocol
		}
		if d.HTTPVersion == "" {
			d.HTTPVersion = HTTPVersion2and3
		}
		for j := range d.Origins {
			o := &d.Origins[j]
			if o.ProtocolPolicy == "" {
				o.ProtocolPolicy = OriginHTTPSOnly
			}
			if len(o.SSLProtocols) == 0 {
				o.SSLProtocols = []string{"TLSv1.2", "TLSv1.3"}
			}
			if o.ConnectionAttempts == 0 {
				o.ConnectionAttempts = DefaultConnectionAttempts
			}
			def(&o.ConnectionTimeout, DefaultConnectionTimeout)
			def(&o.ResponseTimeout, DefaultResponseTimeout)
			def(&o.KeepaliveTimeout, DefaultKeepaliveTimeout)
			if o.HTTPPort == 0 {
				o.HTTPPort = 80
			}
			if o.HTTPSPort == 0 {
				o.HTTPSPort = 443
			}
		}
		for j := range d.OriginGroups {
			g := &d.OriginGroups[j]
			if len(g.FailoverCriteria) == 0 {
				g.FailoverCriteria = []int{500, 502, 503, 504}
			}
		}
		behaviorDefaults(&d.DefaultBehavior)
		for j := range d.Behaviors {
			behaviorDefaults(&d.Behaviors[j])
		}
	}
}

// CloudFront's default TTLs for a cache policy.
const (
	DefaultCacheDefaultTTL    = 24 * time.Hour
	DefaultCacheMaxTTL        = 365 * 24 * time.Hour
	DefaultErrorCachingMinTTL = 10 * time.Second
)

func behaviorDefaults(b *Behavior) {
	p := &b.CachePolicy
	if !p.Disabled {
		if !p.set["default_ttl"] {
			p.DefaultTTL = yamlconf.Duration(DefaultCacheDefaultTTL)
		}
		if !p.set["max_ttl"] {
			p.MaxTTL = yamlconf.Duration(max(DefaultCacheMaxTTL, p.DefaultTTL.D(), p.MinTTL.D()))
		}
		if !p.set["error_caching_min_ttl"] {
			p.ErrorCachingMinTTL = yamlconf.Duration(DefaultErrorCachingMinTTL)
		}
		if p.StaleOnStatus == nil {
			p.StaleOnStatus = []int{500, 502, 503, 504}
		}
	}
	o := &b.OriginRequestPolicy
	if o.Managed == "" && !o.custom {
		o.Managed = ORPAllViewerExceptHostHeader
	}
	if len(b.AllowedMethods) == 0 {
		b.AllowedMethods = []string{http.MethodGet, http.MethodHead}
	}
	for i, m := range b.AllowedMethods {
		b.AllowedMethods[i] = strings.ToUpper(m)
	}
}

// Place locates a key path of the file in an error.
func (c *Config) errorf(path, format string, args ...any) *yamlconf.Error {
	if c.doc == nil {
		return &yamlconf.Error{Key: path, Problem: fmt.Sprintf(format, args...)}
	}
	return c.doc.Errorf(path, format, args...)
}

func (c *Config) validate() error {
	var errs yamlconf.Errors
	add := func(path, format string, args ...any) { errs = append(errs, c.errorf(path, format, args...)) }

	e := c.Edge
	for _, l := range []struct{ key, addr string }{{"edge.listen.http", e.Listen.HTTP}, {"edge.listen.https", e.Listen.HTTPS}, {"edge.admin.listen", e.Admin.Listen}} {
		if l.addr == "" || l.addr == "off" {
			continue
		}
		if _, _, err := net.SplitHostPort(l.addr); err != nil {
			add(l.key, "%q is not HOST:PORT", l.addr)
		}
	}
	if fi := e.Logs.FlushInterval.D(); fi < 10*time.Millisecond || fi > time.Minute {
		add("edge.logs.flush_interval", "%s: use 10ms to 1m", fi)
	}
	if e.Resolver != "" {
		if _, _, err := net.SplitHostPort(e.Resolver); err != nil {
			add("edge.resolver", "%q is not HOST:PORT of a DNS server", e.Resolver)
		}
	}
	for _, p := range e.Certificates.Validate() {
		key := "edge.certificates"
		if p.Key != "" {
			key += "." + p.Key
		}
		add(key, "%s", p.Message)
	}
	if e.Cache.Memory < 1<<20 {
		add("edge.cache.memory", "%d bytes: at least 1MiB", e.Cache.Memory)
	}
	if e.Cache.Disk.Path == "" && e.Cache.Disk.Size != 0 {
		add("edge.cache.disk.path", "missing: the directory of the disk tier (size is set)")
	}
	if e.Cache.Disk.Path != "" && e.Cache.Disk.Size < 16<<20 {
		add("edge.cache.disk.size", "%d bytes: at least 16MiB", e.Cache.Disk.Size)
	}
	if d := e.Cache.RedisTimeout.D(); d < time.Millisecond || d > 10*time.Second {
		add("edge.cache.redis_timeout", "%s: use 1ms to 10s (a viewer waits at most this for Redis)", d)
	}
	if len(c.Distributions) == 0 {
		add("distributions", "at least one distribution is required")
	}
	seenAlias := map[string]string{}
	for i, d := range c.Distributions {
		dp := fmt.Sprintf("distributions[%d]", i)
		if len(d.Aliases) == 0 {
			add(dp+".aliases", "at least one alias (the domain name viewers use) is required")
		}
		for j, a := range d.Aliases {
			ap := fmt.Sprintf("%s.aliases[%d]", dp, j)
			if !validHostname(strings.TrimPrefix(a, "*.")) && net.ParseIP(a) == nil {
				add(ap, "%q is not a valid domain name, wildcard (*.example.com) or IP address", a)
			} else if why := e.Certificates.NameProblem(a); why != "" {
				add(ap, "%s", why)
			} else if prev, dup := seenAlias[a]; dup {
				add(ap, "%s is already an alias of %s", a, prev)
			}
			seenAlias[a] = dp
		}
		switch d.ViewerProtocolPolicy {
		case PolicyAllowAll, PolicyHTTPSOnly, PolicyRedirectToHTTPS:
		default:
			add(dp+".viewer_protocol_policy", "%q: use allow-all, https-only or redirect-to-https", d.ViewerProtocolPolicy)
		}
		switch d.HTTPVersion {
		case HTTPVersion11, HTTPVersion2, HTTPVersion2and3, HTTPVersion3:
		default:
			add(dp+".http_version", "%q: use http1.1, http2, http2and3 or http3", d.HTTPVersion)
		}
		if _, ok := securityPolicies()[d.MinimumProtocolVersion]; !ok {
			add(dp+".minimum_protocol_version", "%q is not a security policy (use one of %s)", d.MinimumProtocolVersion, strings.Join(securityPolicyNames(), ", "))
		}
		targets := map[string]bool{}
		if len(d.Origins) == 0 {
			add(dp+".origins", "at least one origin is required")
		}
		for j, o := range d.Origins {
			c.validateOrigin(&errs, fmt.Sprintf("%s.origins[%d]", dp, j), o)
			if targets[o.ID] {
				add(fmt.Sprintf("%s.origins[%d].id", dp, j), "duplicate origin id %q", o.ID)
			}
			targets[o.ID] = true
		}
		origins := originIDs(d.Origins)
		for j, g := range d.OriginGroups {
			gp := fmt.Sprintf("%s.origin_groups[%d]", dp, j)
			if g.ID == "" {
				add(gp+".id", "an origin group needs an id")
			} else if targets[g.ID] {
				add(gp+".id", "id %q is already used by an origin or group", g.ID)
			}
			targets[g.ID] = true
			if len(g.Members) < 2 {
				add(gp+".members", "an origin group needs at least two member origins (primary first)")
			}
			for k, m := range g.Members {
				if !origins[m] {
					add(fmt.Sprintf("%s.members[%d]", gp, k), "no origin with id %q in this distribution", m)
				}
			}
			for k, s := range g.FailoverCriteria {
				if !slices.Contains(allowedFailover, s) {
					add(fmt.Sprintf("%s.failover_criteria[%d]", gp, k), "%d cannot trigger failover (use %v)", s, allowedFailover)
				}
			}
		}
		c.validateBehavior(&errs, dp+".default_behavior", d.DefaultBehavior, targets, false)
		for j, b := range d.Behaviors {
			c.validateBehavior(&errs, fmt.Sprintf("%s.behaviors[%d]", dp, j), b, targets, true)
		}
	}
	return errs.Err()
}

func originIDs(os []Origin) map[string]bool {
	m := make(map[string]bool, len(os))
	for _, o := range os {
		m[o.ID] = true
	}
	return m
}

func (c *Config) validateOrigin(errs *yamlconf.Errors, op string, o Origin) {
	add := func(path, format string, args ...any) { *errs = append(*errs, c.errorf(path, format, args...)) }
	if o.ID == "" {
		add(op+".id", "an origin needs an id (behaviors name it as their target)")
	}
	if o.DomainName == "" {
		add(op+".domain_name", "missing: the origin's domain name (sent as SNI and checked against its certificate)")
	} else if !validHostname(o.DomainName) && net.ParseIP(o.DomainName) == nil {
		add(op+".domain_name", "%q is not a domain name", o.DomainName)
	}
	if o.ConnectTo != "" {
		if _, _, err := net.SplitHostPort(o.ConnectTo); err != nil {
			add(op+".connect_to", "%q is not HOST:PORT", o.ConnectTo)
		}
	}
	if o.OriginPath != "" && (!strings.HasPrefix(o.OriginPath, "/") || strings.HasSuffix(o.OriginPath, "/")) {
		add(op+".origin_path", "%q must start with / and not end with /", o.OriginPath)
	}
	switch o.ProtocolPolicy {
	case OriginHTTPOnly, OriginHTTPSOnly, OriginMatchViewer:
	default:
		add(op+".protocol_policy", "%q: use http-only, https-only or match-viewer", o.ProtocolPolicy)
	}
	for k, p := range o.SSLProtocols {
		if _, _, err := originconn.ParseSSLProtocols([]string{p}); err != nil {
			add(fmt.Sprintf("%s.ssl_protocols[%d]", op, k), "%q: use TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3", p)
		}
	}
	if o.ConnectionAttempts < 1 || o.ConnectionAttempts > 3 {
		add(op+".connection_attempts", "%d: must be 1, 2 or 3", o.ConnectionAttempts)
	}
	if o.ConnectionTimeout.D() > 10*time.Second {
		add(op+".connection_timeout", "%s: at most 10s per attempt", o.ConnectionTimeout.D())
	}
	if o.ResponseTimeout.D() > 180*time.Second {
		add(op+".response_timeout", "%s: at most 180s", o.ResponseTimeout.D())
	}
	if o.KeepaliveTimeout.D() > 180*time.Second {
		add(op+".keepalive_timeout", "%s: at most 180s", o.KeepaliveTimeout.D())
	}
	if (o.ClientCertificate.Cert == "") != (o.ClientCertificate.Key == "") {
		add(op+".client_certificate", "set both cert and key, or neither")
	}
	for h := range o.CustomHeaders {
		if isHopByHop(h) || strings.EqualFold(h, "Host") {
			add(op+".custom_headers."+h, "%s cannot be set as a custom header", h)
		}
	}
}

func (c *Config) validateBehavior(errs *yamlconf.Errors, bp string, b Behavior, targets map[string]bool, needPattern bool) {
	add := func(path, format string, args ...any) { *errs = append(*errs, c.errorf(path, format, args...)) }
	if needPattern && b.PathPattern == "" {
		add(bp+".path_pattern", "missing: a behavior needs a path pattern such as /api/*")
	}
	if b.Target == "" {
		add(bp+".target", "missing: the origin or origin group id to send requests to")
	} else if !targets[b.Target] {
		add(bp+".target", "no origin or origin group with id %q in this distribution", b.Target)
	}
	for k, m := range b.AllowedMethods {
		if !slices.Contains(knownMethods, m) {
			add(fmt.Sprintf("%s.allowed_methods[%d]", bp, k), "%q: use GET, HEAD, OPTIONS, PUT, POST, PATCH, DELETE", m)
		}
	}
	if !slices.Contains(b.AllowedMethods, http.MethodGet) || !slices.Contains(b.AllowedMethods, http.MethodHead) {
		add(bp+".allowed_methods", "must include GET and HEAD")
	}
	if !b.CachePolicy.Disabled {
		if err := cachePolicy(&b).Validate(); err != nil {
			add(bp+".cache_policy", "%v", err)
		}
		if b.CachePolicy.MaxObjectSize < 0 {
			add(bp+".cache_policy.max_object_size", "%d: must not be negative", b.CachePolicy.MaxObjectSize)
		}
		cp := b.CachePolicy
		for k, st := range cp.StaleOnStatus {
			if st < 500 || st > 599 {
				add(fmt.Sprintf("%s.cache_policy.stale_on_status[%d]", bp, k), "%d: list 5xx statuses (connection failures and timeouts always count)", st)
			}
		}
		for _, d := range []struct {
			key string
			v   yamlconf.Duration
		}{{"error_caching_min_ttl", cp.ErrorCachingMinTTL}, {"stale_if_error", cp.StaleIfError}, {"stale_while_revalidate", cp.StaleWhileRevalidate}} {
			if d.v < 0 {
				add(bp+".cache_policy."+d.key, "%s: must not be negative", d.v.D())
			}
		}
	}
	c.validateRHP(errs, bp+".response_headers_policy", &b.ResponseHeadersPolicy)
	o := b.OriginRequestPolicy
	for k, h := range o.Headers.Names {
		switch c := http.CanonicalHeaderKey(h); {
		case isHopByHop(c):
			add(fmt.Sprintf("%s.origin_request_policy.headers[%d]", bp, k), "%s is hop-by-hop and never forwarded", h)
		case c == "Cookie":
			add(fmt.Sprintf("%s.origin_request_policy.headers[%d]", bp, k), "forward cookies with the cookies setting, not header %s", h)
		case c == "X-Forwarded-For" || c == "X-Forwarded-Proto":
			add(fmt.Sprintf("%s.origin_request_policy.headers[%d]", bp, k), "the edge sets %s itself", h)
		}
	}
}

func validHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}
