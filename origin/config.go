package origin

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/edgegate/edgegate/acme"
	"github.com/edgegate/edgegate/internal/yamlconf"
	"go.yaml.in/yaml/v3"
)

// Config is an origin-tier configuration file.
type Config struct {
	// Origin is the file's single top-level key.
	Origin Settings `yaml:"origin"`

	doc *yamlconf.Document
}

// Settings are the load balancer: its listeners, target groups, logs, admin
// listener and timeouts.
type Settings struct {
	Listeners    []Listener    `yaml:"listeners"`     // at least one
	TargetGroups []TargetGroup `yaml:"target_groups"` // at least one
	Logs         LogSettings   `yaml:"logs"`          // access logs
	Admin        AdminSettings `yaml:"admin"`         // /healthz, /targets, /metrics
	Timeouts     Timeouts      `yaml:"timeouts"`      // socket bounds and the drain
}

// Listener protocols, as ALB (HTTP, HTTPS) and NLB (TCP, TLS) name them.
const (
	ProtocolHTTP  = "HTTP"  // plain HTTP, forwarded or redirected
	ProtocolHTTPS = "HTTPS" // TLS terminated here, HTTP/1.1 or HTTP/2 from clients
	ProtocolTCP   = "TCP"   // bytes passed through untouched (TLS ends at the targets)
	ProtocolTLS   = "TLS"   // TLS terminated here, the plain stream forwarded
)

// Listener accepts connections on a port and applies its default action.
type Listener struct {
	// Protocol is HTTP, HTTPS, TCP or TLS.
	Protocol string `yaml:"protocol"`
	// Port is required; 0 picks a free port (tests), see Server.Addrs.
	Port *int `yaml:"port"`
	// Address is the bind address; all addresses when empty.
	Address string `yaml:"address"`
	// ServerNames are the names this listener is reached by: ordered over
	// ACME when certificates.acme is set.
	ServerNames []string `yaml:"server_names"`
	// Certificates are required on HTTPS and TLS listeners. The first one
	// is the default certificate, served to clients whose SNI matches none.
	Certificates *acme.Config `yaml:"certificates"`
	// MutualTLS asks HTTPS and TLS clients for a certificate.
	MutualTLS *MutualTLS `yaml:"mutual_tls"`
	// DefaultAction is what the listener does with every request or
	// connection not routed by SNIRoutes.
	DefaultAction Action `yaml:"default_action"`
	// SNIRoutes send TCP and TLS connections to a target group by the
	// server name of the TLS ClientHello; first match wins.
	SNIRoutes []SNIRoute `yaml:"sni_routes"`
}

// Action is a listener's action: exactly one of Forward and Redirect.
type Action struct {
	// Forward names the target group.
	Forward string `yaml:"forward"`
	// Redirect answers HTTP(S) requests with a redirect.
	Redirect *Redirect `yaml:"redirect"`
}

// Redirect is a redirect action; the host, path and query are kept.
type Redirect struct {
	Protocol string `yaml:"protocol"` // HTTP or HTTPS (default HTTPS)
	Port     int    `yaml:"port"`     // default 443 for HTTPS, 80 for HTTP
	Status   int    `yaml:"status"`   // 301 (default), 302, 303, 307, 308
}

// SNIRoute forwards connections whose SNI matches ServerName, exactly or as
// a leading "*." wildcard of one label.
type SNIRoute struct {
	ServerName string `yaml:"server_name"` // a.example.com or *.example.com
	Forward    string `yaml:"forward"`     // target group name
}

// Mutual TLS modes.
const (
	MTLSOff    = "off"
	MTLSVerify = "verify"
)

// MutualTLS is a listener's client certificate check, as ALB's mutual TLS
// "verify" mode: a client without a certificate chaining to the trust
// store, or with an expired or revoked one, is refused in the handshake.
//
// The trust store and CRL are read when the load balancer starts (New);
// restart it to take a new CRL into account.
type MutualTLS struct {
	Mode       string `yaml:"mode"`        // off | verify (default verify when the block is present)
	TrustStore string `yaml:"trust_store"` // PEM file of CA certificates
	CRL        string `yaml:"crl"`         // optional PEM or DER file of revocation lists, signed by trust store CAs
}

// Target group protocols and algorithms.
const (
	AlgorithmRoundRobin       = "round_robin"
	AlgorithmLeastOutstanding = "least_outstanding_requests"
)

// TargetGroup is a set of targets behind a listener.
type TargetGroup struct {
	// Name is what listeners forward to: letters, digits, - and _.
	Name string `yaml:"name"`
	// Protocol is how the load balancer talks to the targets: HTTP or HTTPS
	// behind HTTP(S) listeners, TCP or TLS behind TCP and TLS listeners.
	Protocol string `yaml:"protocol"`
	// Algorithm is round_robin (default) or least_outstanding_requests; on
	// TCP and TLS groups it applies per connection (open connections count
	// as outstanding).
	Algorithm string `yaml:"algorithm"`
	// Targets are HOST:PORT addresses.
	Targets     []string    `yaml:"targets"`
	HealthCheck HealthCheck `yaml:"health_check"`
	// Timeout bounds a request to one of the group's targets until its
	// response headers arrive (default origin.timeouts.response), so that a
	// hung target holds a request no longer than this.
	Timeout yamlconf.Duration `yaml:"timeout"`
	// DeregistrationDelay is how long a target removed by a reload keeps
	// its in-flight requests and connections before they are cut (default
	// 300s, as ALB).
	DeregistrationDelay yamlconf.Duration `yaml:"deregistration_delay"`
	// OutlierDetection ejects a target that fails requests in a row before
	// its health check notices (passive health, as Envoy and Caddy).
	OutlierDetection OutlierDetection `yaml:"outlier_detection"`
}

// OutlierDetection configures passive health: ConsecutiveFailures requests
// in a row that fail to connect, are reset or time out eject a target for
// BaseEjectionTime times the number of its ejections, at most
// MaxEjectionTime; no more than MaxEjectionPercent of a group's targets
// are ejected at once (at least one may be).
type OutlierDetection struct {
	// ConsecutiveFailures ejects after this many failures in a row
	// (default 3; -1 turns outlier detection off).
	ConsecutiveFailures int               `yaml:"consecutive_failures"`
	BaseEjectionTime    yamlconf.Duration `yaml:"base_ejection_time"`   // default 30s
	MaxEjectionTime     yamlconf.Duration `yaml:"max_ejection_time"`    // default 300s
	MaxEjectionPercent  int               `yaml:"max_ejection_percent"` // default 50
}

// HealthCheck configures a target group's active health checks. Zero values
// take ALB's defaults (see the Default* constants).
type HealthCheck struct {
	// Protocol is TCP, HTTP or HTTPS; by default the group's protocol for
	// HTTP(S) groups and TCP for TCP and TLS groups.
	Protocol string `yaml:"protocol"`
	// Path is requested by HTTP(S) checks (default /).
	Path string `yaml:"path"`
	// Port is traffic-port (default: the target's own port) or a number.
	Port HealthPort `yaml:"port"`
	// Interval between checks of one target (default 30s).
	Interval yamlconf.Duration `yaml:"interval"`
	// Timeout of one check (default 5s); must be shorter than Interval.
	Timeout yamlconf.Duration `yaml:"timeout"`
	// HealthyThreshold consecutive successes make an unhealthy target
	// healthy (default 5).
	HealthyThreshold int `yaml:"healthy_threshold"`
	// UnhealthyThreshold consecutive failures make a healthy target
	// unhealthy (default 2).
	UnhealthyThreshold int `yaml:"unhealthy_threshold"`
	// Matcher lists the HTTP status codes of a healthy answer: "200",
	// "200-399", "200,204" (default 200).
	Matcher Matcher `yaml:"matcher"`
}

// Health check defaults, ALB's.
const (
	DefaultHealthInterval     = 30 * time.Second
	DefaultHealthTimeout      = 5 * time.Second
	DefaultHealthyThreshold   = 5
	DefaultUnhealthyThreshold = 2
	DefaultMatcher            = "200"
	DefaultHealthPath         = "/"

	DefaultDeregistrationDelay        = 300 * time.Second
	DefaultOutlierConsecutiveFailures = 3
	DefaultOutlierBaseEjectionTime    = 30 * time.Second
	DefaultOutlierMaxEjectionTime     = 300 * time.Second
	DefaultOutlierMaxEjectionPercent  = 50
)

// HealthPort is "traffic-port" (0) or a port number.
type HealthPort int

// UnmarshalYAML accepts traffic-port or a port number.
func (p *HealthPort) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		if n.Value == "traffic-port" || n.Value == "" {
			*p = 0
			return nil
		}
		if v, err := strconv.Atoi(n.Value); err == nil && v > 0 && v < 65536 {
			*p = HealthPort(v)
			return nil
		}
	}
	return yamlconf.NewValueError(n, "%q: use traffic-port or a port number 1-65535", n.Value)
}

// Matcher is a set of HTTP status codes written as "200", "200-399" or
// "200,202,300-399".
type Matcher string

// UnmarshalYAML accepts a number or a string and checks its syntax.
func (m *Matcher) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return yamlconf.NewValueError(n, "expected status codes such as 200 or 200-399")
	}
	if _, err := parseMatcher(n.Value); err != nil {
		return yamlconf.NewValueError(n, "%v", err)
	}
	*m = Matcher(n.Value)
	return nil
}

// statusRange is an inclusive range of status codes.
type statusRange struct{ lo, hi int }

func parseMatcher(s string) ([]statusRange, error) {
	var rs []statusRange
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		a, err1 := strconv.Atoi(lo)
		b := a
		var err2 error
		if isRange {
			b, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || a < 100 || b > 599 || a > b {
			return nil, fmt.Errorf("%q: use status codes 100-599 such as 200, 200-399 or 200,204", s)
		}
		rs = append(rs, statusRange{a, b})
	}
	return rs, nil
}

// LogSettings configure access logs.
type LogSettings struct {
	// Dir receives access log files; access logs are off when empty.
	Dir string `yaml:"dir"`
	// Rotate starts a new file every period (default 1h).
	Rotate yamlconf.Duration `yaml:"rotate"`
}

// AdminSettings configure the admin listener: /healthz, /targets (JSON
// health of every target), /metrics (Prometheus), POST /reload and
// /debug/ (config, pprof).
type AdminSettings struct {
	// Listen is HOST:PORT; the admin listener is off when empty.
	Listen string `yaml:"listen"`
	// Token is the bearer token every state-changing call needs, and every
	// read unless the listener is on loopback; usually "${EDGEGATE_ADMIN_TOKEN}".
	Token string `yaml:"token"`
}

// Timeouts bound every socket; zero values take the defaults.
type Timeouts struct {
	Connect      yamlconf.Duration `yaml:"connect"`       // dial a target (default 10s)
	TLSHandshake yamlconf.Duration `yaml:"tls_handshake"` // a client's or target's TLS handshake, an SNI peek (default 10s)
	ReadHeader   yamlconf.Duration `yaml:"read_header"`   // a request's headers (default 10s)
	Idle         yamlconf.Duration `yaml:"idle"`          // HTTP keep-alive between requests (default 60s, as ALB)
	Response     yamlconf.Duration `yaml:"response"`      // target's response headers (default 60s)
	TCPIdle      yamlconf.Duration `yaml:"tcp_idle"`      // TCP/TLS stream with no bytes either way (default 350s, as NLB)
	Shutdown     yamlconf.Duration `yaml:"shutdown"`      // graceful drain (default 30s)
	// MaxHeaderBytes limits request headers (default 64KiB, as ALB).
	MaxHeaderBytes yamlconf.Size `yaml:"max_header_bytes"`
}

// Timeout defaults.
const (
	DefaultConnectTimeout      = 10 * time.Second
	DefaultTLSHandshakeTimeout = 10 * time.Second
	DefaultReadHeaderTimeout   = 10 * time.Second
	DefaultIdleTimeout         = 60 * time.Second
	DefaultResponseTimeout     = 60 * time.Second
	DefaultTCPIdleTimeout      = 350 * time.Second
	DefaultShutdownTimeout     = 30 * time.Second
	DefaultMaxHeaderBytes      = 64 << 10
	DefaultLogRotate           = time.Hour
)

// LoadConfig reads, strictly decodes, defaults and validates an origin-tier
// config. Relative file paths are taken relative to the config file's
// directory. Every problem is reported as FILE:LINE: key: problem. Files
// named by the config are read by CheckFiles (and by New).
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

// CheckCA asks each listener's ACME CA whether it offers the configured
// certificate profile, for `edgegate check`: an unknown profile is
// reported at its key with the profiles the CA offers.
func (c *Config) CheckCA(ctx context.Context) error {
	var errs yamlconf.Errors
	for i, l := range c.Origin.Listeners {
		if l.Certificates == nil {
			continue
		}
		if err := acme.CheckProfile(ctx, l.Certificates.ACME); err != nil {
			errs = append(errs, c.errorf(fmt.Sprintf("origin.listeners[%d].certificates.acme.profile", i), "%v", err))
		}
	}
	return errs.Err()
}

// resolvePaths makes relative paths relative to dir, so a config works from
// any working directory.
func (c *Config) resolvePaths(dir string) {
	if d, err := filepath.Abs(dir); err == nil {
		dir = d // absolute, so that a later change of directory cannot break them
	}
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	for i := range c.Origin.Listeners {
		l := &c.Origin.Listeners[i]
		if l.Certificates != nil {
			for j := range l.Certificates.Files {
				abs(&l.Certificates.Files[j].Cert)
				abs(&l.Certificates.Files[j].Key)
			}
			if a := l.Certificates.ACME; a != nil {
				abs(&a.TrustedRoots)
				for i := range a.Fallback {
					abs(&a.Fallback[i].TrustedRoots)
				}
			}
		}
		if m := l.MutualTLS; m != nil {
			abs(&m.TrustStore)
			abs(&m.CRL)
		}
	}
	abs(&c.Origin.Logs.Dir)
}

func (c *Config) applyDefaults() {
	o := &c.Origin
	def := func(d *yamlconf.Duration, v time.Duration) {
		if *d == 0 {
			*d = yamlconf.Duration(v)
		}
	}
	def(&o.Logs.Rotate, DefaultLogRotate)
	t := &o.Timeouts
	def(&t.Connect, DefaultConnectTimeout)
	def(&t.TLSHandshake, DefaultTLSHandshakeTimeout)
	def(&t.ReadHeader, DefaultReadHeaderTimeout)
	def(&t.Idle, DefaultIdleTimeout)
	def(&t.Response, DefaultResponseTimeout)
	def(&t.TCPIdle, DefaultTCPIdleTimeout)
	def(&t.Shutdown, DefaultShutdownTimeout)
	if t.MaxHeaderBytes == 0 {
		t.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	for i := range o.Listeners {
		l := &o.Listeners[i]
		l.Protocol = strings.ToUpper(l.Protocol)
		if r := l.DefaultAction.Redirect; r != nil {
			r.Protocol = strings.ToUpper(r.Protocol)
			if r.Protocol == "" {
				r.Protocol = ProtocolHTTPS
			}
			if r.Port == 0 {
				r.Port = 443
				if r.Protocol == ProtocolHTTP {
					r.Port = 80
				}
			}
			if r.Status == 0 {
				r.Status = 301
			}
		}
		if m := l.MutualTLS; m != nil && m.Mode == "" {
			m.Mode = MTLSVerify
		}
	}
	for i := range o.TargetGroups {
		g := &o.TargetGroups[i]
		g.Protocol = strings.ToUpper(g.Protocol)
		if g.Algorithm == "" {
			g.Algorithm = AlgorithmRoundRobin
		}
		h := &g.HealthCheck
		h.Protocol = strings.ToUpper(h.Protocol)
		if h.Protocol == "" {
			h.Protocol = g.Protocol
			if g.Protocol == ProtocolTLS {
				h.Protocol = ProtocolTCP
			}
		}
		if h.Path == "" && h.Protocol != ProtocolTCP {
			h.Path = DefaultHealthPath
		}
		def(&h.Interval, DefaultHealthInterval)
		def(&h.Timeout, min(DefaultHealthTimeout, h.Interval.D()/2))
		if h.HealthyThreshold == 0 {
			h.HealthyThreshold = DefaultHealthyThreshold
		}
		if h.UnhealthyThreshold == 0 {
			h.UnhealthyThreshold = DefaultUnhealthyThreshold
		}
		if h.Matcher == "" {
			h.Matcher = DefaultMatcher
		}
		def(&g.Timeout, t.Response.D())
		def(&g.DeregistrationDelay, DefaultDeregistrationDelay)
		od := &g.OutlierDetection
		if od.ConsecutiveFailures == 0 {
			od.ConsecutiveFailures = DefaultOutlierConsecutiveFailures
		}
		def(&od.BaseEjectionTime, DefaultOutlierBaseEjectionTime)
		def(&od.MaxEjectionTime, max(DefaultOutlierMaxEjectionTime, od.BaseEjectionTime.D()))
		if od.MaxEjectionPercent == 0 {
			od.MaxEjectionPercent = DefaultOutlierMaxEjectionPercent
		}
	}
}

// errorf places a problem at a key path of the file.
func (c *Config) errorf(path, format string, args ...any) *yamlconf.Error {
	if c.doc == nil {
		return &yamlconf.Error{Key: path, Problem: fmt.Sprintf(format, args...)}
	}
	return c.doc.Errorf(path, format, args...)
}
