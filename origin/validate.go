package origin

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/edgegate/edgegate/internal/yamlconf"
	"github.com/edgegate/edgegate/origin/accesslog"
)

// ParseConfig is LoadConfig for data already read (paths are kept as
// written); name is used in errors.
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

var groupName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// streamGroup reports whether a target group protocol carries a byte
// stream (TCP, TLS) rather than HTTP.
func streamGroup(p string) bool { return p == ProtocolTCP || p == ProtocolTLS }

func (c *Config) validate() error {
	var errs yamlconf.Errors
	add := func(path, format string, args ...any) { errs = append(errs, c.errorf(path, format, args...)) }
	o := c.Origin

	groups := map[string]TargetGroup{}
	if len(o.TargetGroups) == 0 {
		add("origin.target_groups", "at least one target group is required")
	}
	for i, g := range o.TargetGroups {
		gp := fmt.Sprintf("origin.target_groups[%d]", i)
		c.validateGroup(&errs, gp, g)
		if _, dup := groups[g.Name]; dup && g.Name != "" {
			add(gp+".name", "duplicate target group name %q", g.Name)
		}
		groups[g.Name] = g
	}

	if len(o.Listeners) == 0 {
		add("origin.listeners", "at least one listener is required")
	}
	type bind struct {
		addr string
		idx  int
	}
	ports := map[int][]bind{}
	for i, l := range o.Listeners {
		lp := fmt.Sprintf("origin.listeners[%d]", i)
		c.validateListener(&errs, lp, l, groups)
		if l.Port == nil || *l.Port == 0 {
			continue
		}
		for _, b := range ports[*l.Port] {
			if b.addr == l.Address || b.addr == "" || l.Address == "" {
				add(lp+".port", "port %d is already used by listener %d", *l.Port, b.idx)
				break
			}
		}
		ports[*l.Port] = append(ports[*l.Port], bind{l.Address, i})
	}

	if o.Admin.Listen != "" {
		if _, port, err := net.SplitHostPort(o.Admin.Listen); err != nil || !validPort(port, true) {
			add("origin.admin.listen", "%q is not HOST:PORT", o.Admin.Listen)
		}
	}
	if o.Logs.Dir != "" {
		if err := accesslog.CheckRotate(o.Logs.Rotate.D()); err != nil {
			add("origin.logs.rotate", "%v", err)
		}
	}
	if o.Timeouts.MaxHeaderBytes < 1<<10 || o.Timeouts.MaxHeaderBytes > 1<<20 {
		add("origin.timeouts.max_header_bytes", "%d is outside 1KiB-1MiB", o.Timeouts.MaxHeaderBytes)
	}
	return errs.Err()
}

func validPort(s string, zeroOK bool) bool {
	p, err := strconv.Atoi(s)
	return err == nil && p < 65536 && (p > 0 || (zeroOK && p == 0))
}

func (c *Config) validateListener(errs *yamlconf.Errors, lp string, l Listener, groups map[string]TargetGroup) {
	add := func(path, format string, args ...any) { *errs = append(*errs, c.errorf(path, format, args...)) }
	switch l.Protocol {
	case ProtocolHTTP, ProtocolHTTPS, ProtocolTCP, ProtocolTLS:
	case "":
		add(lp+".protocol", "missing: HTTP, HTTPS, TCP or TLS")
		return
	default:
		add(lp+".protocol", "%q is not a listener protocol (use HTTP, HTTPS, TCP or TLS)", l.Protocol)
		return
	}
	terminates := l.Protocol == ProtocolHTTPS || l.Protocol == ProtocolTLS
	if l.Port == nil {
		add(lp+".port", "missing: the port to listen on")
	} else if *l.Port < 0 || *l.Port > 65535 {
		add(lp+".port", "%d is not a port (0-65535; 0 picks a free one)", *l.Port)
	}
	if l.Address != "" && net.ParseIP(l.Address) == nil && !validHostname(l.Address) {
		add(lp+".address", "%q is not an IP address or host name to bind", l.Address)
	}
	for j, n := range l.ServerNames {
		if !validHostname(strings.TrimPrefix(n, "*.")) {
			add(fmt.Sprintf("%s.server_names[%d]", lp, j), "%q is not a domain name", n)
		}
	}
	switch {
	case terminates && l.Certificates == nil:
		add(lp+".certificates", "a %s listener needs certificates (files, self_signed or acme)", l.Protocol)
	case !terminates && l.Certificates != nil:
		add(lp+".certificates", "a %s listener does not terminate TLS; remove certificates", l.Protocol)
	case l.Certificates != nil:
		for _, p := range l.Certificates.Validate() {
			key := lp + ".certificates"
			if p.Key != "" {
				key += "." + p.Key
			}
			add(key, "%s", p.Message)
		}
		if l.Certificates.ACME != nil && len(l.ServerNames) == 0 {
			add(lp+".server_names", "certificates.acme needs the names to order: set server_names")
		}
	}
	if m := l.MutualTLS; m != nil {
		switch {
		case !terminates:
			add(lp+".mutual_tls", "mutual TLS needs a listener that terminates TLS (HTTPS or TLS), not %s", l.Protocol)
		case m.Mode != MTLSOff && m.Mode != MTLSVerify:
			add(lp+".mutual_tls.mode", "%q: use off or verify", m.Mode)
		case m.Mode == MTLSVerify && m.TrustStore == "":
			add(lp+".mutual_tls.trust_store", "missing: a PEM file of the CAs whose client certificates are accepted")
		case m.Mode == MTLSOff && (m.TrustStore != "" || m.CRL != ""):
			add(lp+".mutual_tls.mode", "off, but a trust store or CRL is set: use verify")
		}
	}
	httpish := l.Protocol == ProtocolHTTP || l.Protocol == ProtocolHTTPS
	a := l.DefaultAction
	ap := lp + ".default_action"
	switch {
	case a.Forward == "" && a.Redirect == nil:
		add(ap, "missing: forward: TARGET_GROUP or redirect: {...}")
	case a.Forward != "" && a.Redirect != nil:
		add(ap, "set either forward or redirect, not both")
	case a.Redirect != nil:
		r := a.Redirect
		if !httpish {
			add(ap+".redirect", "a %s listener cannot redirect; use forward", l.Protocol)
		}
		if r.Protocol != ProtocolHTTP && r.Protocol != ProtocolHTTPS {
			add(ap+".redirect.protocol", "%q: use HTTP or HTTPS", r.Protocol)
		}
		if r.Port < 1 || r.Port > 65535 {
			add(ap+".redirect.port", "%d is not a port", r.Port)
		}
		if !slices.Contains([]int{301, 302, 303, 307, 308}, r.Status) {
			add(ap+".redirect.status", "%d: use 301, 302, 303, 307 or 308", r.Status)
		}
	default:
		c.checkForward(errs, ap+".forward", l.Protocol, a.Forward, groups)
	}
	if len(l.SNIRoutes) > 0 && httpish {
		add(lp+".sni_routes", "SNI routes apply to TCP and TLS listeners only")
	}
	for j, r := range l.SNIRoutes {
		rp := fmt.Sprintf("%s.sni_routes[%d]", lp, j)
		if !validHostname(strings.TrimPrefix(r.ServerName, "*.")) {
			add(rp+".server_name", "%q is not a domain name (a leading *. is allowed)", r.ServerName)
		}
		c.checkForward(errs, rp+".forward", l.Protocol, r.Forward, groups)
	}
}

// checkForward reports a forward to an unknown group, or to a group whose
// protocol the listener cannot speak.
func (c *Config) checkForward(errs *yamlconf.Errors, key, listenerProto, name string, groups map[string]TargetGroup) {
	add := func(format string, args ...any) { *errs = append(*errs, c.errorf(key, format, args...)) }
	g, ok := groups[name]
	switch {
	case name == "":
		add("missing: the name of a target group")
	case !ok:
		names := make([]string, 0, len(groups))
		for n := range groups {
			names = append(names, n)
		}
		slices.Sort(names)
		add("no target group named %q (target groups: %s)", name, strings.Join(names, ", "))
	case listenerProto == ProtocolTCP && g.Protocol != ProtocolTCP:
		add("target group %q speaks %s; a TCP (passthrough) listener forwards to TCP target groups", name, g.Protocol)
	case listenerProto == ProtocolTLS && !streamGroup(g.Protocol):
		add("target group %q speaks %s; a TLS listener forwards to TCP or TLS target groups", name, g.Protocol)
	case (listenerProto == ProtocolHTTP || listenerProto == ProtocolHTTPS) && streamGroup(g.Protocol):
		add("target group %q speaks %s; an %s listener forwards to HTTP or HTTPS target groups", name, g.Protocol, listenerProto)
	}
}

func (c *Config) validateGroup(errs *yamlconf.Errors, gp string, g TargetGroup) {
	add := func(path, format string, args ...any) { *errs = append(*errs, c.errorf(path, format, args...)) }
	if !groupName.MatchString(g.Name) {
		add(gp+".name", "%q: a name of letters, digits, - and _ (at most 64) is required", g.Name)
	}
	switch g.Protocol {
	case ProtocolHTTP, ProtocolHTTPS, ProtocolTCP, ProtocolTLS:
	case "":
		add(gp+".protocol", "missing: HTTP, HTTPS, TCP or TLS")
	default:
		add(gp+".protocol", "%q is not a target group protocol (use HTTP, HTTPS, TCP or TLS)", g.Protocol)
	}
	if g.Algorithm != AlgorithmRoundRobin && g.Algorithm != AlgorithmLeastOutstanding {
		add(gp+".algorithm", "%q: use round_robin or least_outstanding_requests", g.Algorithm)
	}
	if len(g.Targets) == 0 {
		add(gp+".targets", "at least one target (HOST:PORT) is required")
	}
	seen := map[string]bool{}
	for j, t := range g.Targets {
		tp := fmt.Sprintf("%s.targets[%d]", gp, j)
		host, port, err := net.SplitHostPort(t)
		switch {
		case err != nil || host == "" || !validPort(port, false):
			add(tp, "%q is not HOST:PORT", t)
		case net.ParseIP(host) == nil && !validHostname(host):
			add(tp, "%q: %q is not an IP address or host name", t, host)
		case seen[t]:
			add(tp, "%s is listed twice", t)
		}
		seen[t] = true
	}
	h := g.HealthCheck
	hp := gp + ".health_check"
	switch h.Protocol {
	case ProtocolTCP, ProtocolHTTP, ProtocolHTTPS:
	default:
		add(hp+".protocol", "%q: use TCP, HTTP or HTTPS", h.Protocol)
	}
	if h.Protocol == ProtocolTCP && h.Path != "" {
		add(hp+".path", "a TCP health check has no path")
	}
	if h.Path != "" {
		if u, err := url.ParseRequestURI(h.Path); err != nil || !strings.HasPrefix(h.Path, "/") || u.Host != "" {
			add(hp+".path", "%q is not a path starting with /", h.Path)
		}
	}
	if h.Interval.D() <= 0 {
		add(hp+".interval", "must be positive")
	}
	if h.Timeout >= h.Interval {
		add(hp+".timeout", "%v must be shorter than the interval %v", h.Timeout.D(), h.Interval.D())
	}
	if h.HealthyThreshold < 2 || h.HealthyThreshold > 10 {
		add(hp+".healthy_threshold", "%d is outside 2-10", h.HealthyThreshold)
	}
	if h.UnhealthyThreshold < 2 || h.UnhealthyThreshold > 10 {
		add(hp+".unhealthy_threshold", "%d is outside 2-10", h.UnhealthyThreshold)
	}
	if g.Timeout.D() <= 0 {
		add(gp+".timeout", "must be positive")
	}
	if g.DeregistrationDelay.D() < 0 || g.DeregistrationDelay.D() > time.Hour {
		add(gp+".deregistration_delay", "%v is outside 0s-1h", g.DeregistrationDelay.D())
	}
	od, op := g.OutlierDetection, gp+".outlier_detection"
	if od.ConsecutiveFailures < -1 || od.ConsecutiveFailures > 1000 {
		add(op+".consecutive_failures", "%d: use 1-1000, or -1 to turn outlier detection off", od.ConsecutiveFailures)
	}
	if od.BaseEjectionTime.D() <= 0 {
		add(op+".base_ejection_time", "must be positive")
	}
	if od.MaxEjectionTime < od.BaseEjectionTime {
		add(op+".max_ejection_time", "%v is shorter than base_ejection_time %v", od.MaxEjectionTime.D(), od.BaseEjectionTime.D())
	}
	if od.MaxEjectionPercent < 1 || od.MaxEjectionPercent > 100 {
		add(op+".max_ejection_percent", "%d is outside 1-100", od.MaxEjectionPercent)
	}
}

// validHostname reports whether s is a DNS name (letters, digits, hyphens,
// dots; labels of 1-63).
func validHostname(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}
