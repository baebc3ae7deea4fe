package origin

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgegate/edgegate/origin/accesslog"
	"github.com/rs/zerolog"
)

// Target health states, named as ALB names them.
const (
	StateInitial   = "initial"   // not checked yet: receives work
	StateHealthy   = "healthy"   // receives work
	StateUnhealthy = "unhealthy" // receives no new work, unless the whole group is unhealthy (fail open)
)

// target is one HOST:PORT of a target group.
type target struct {
	addr string
	// state is StateInitial, StateHealthy or StateUnhealthy; read without
	// the lock on every pick.
	state atomic.Value
	// outstanding counts requests in flight (HTTP) or open connections
	// (TCP/TLS), for least_outstanding_requests and /targets.
	outstanding atomic.Int64

	// gone ends when a reload removed the target and its deregistration
	// delay is over: what is still in flight to it is cut.
	gone   context.Context
	retire context.CancelFunc

	// ejectedUntil is when outlier detection lets the target back into
	// rotation (unix nanoseconds; 0 when it was never ejected).
	ejectedUntil atomic.Int64

	mu           sync.Mutex
	passiveFails int       // requests failed in a row (outlier detection)
	ejections    int       // ejections since the last request that succeeded
	oks, fails   int       // consecutive results
	reason       string    // ALB reason code of the state, e.g. Target.Timeout
	description  string    // the last failure in words
	lastCheck    time.Time // zero before the first check
	since        time.Time // when the state last changed
}

func newTarget(addr string) *target {
	t := &target{addr: addr, since: time.Now(), reason: "Elb.InitialHealthChecking"}
	t.gone, t.retire = context.WithCancel(context.Background())
	t.state.Store(StateInitial)
	return t
}

// deregister takes t out of service after delay: its in-flight requests
// and connections are then cut, as ALB's deregistration delay does.
func (t *target) deregister(delay time.Duration) {
	time.AfterFunc(delay, t.retire)
}

func (t *target) currentState() string { return t.state.Load().(string) }

// ejected reports whether outlier detection keeps t out of rotation now.
func (t *target) ejected(now time.Time) bool { return now.UnixNano() < t.ejectedUntil.Load() }

// targetGroup is the runtime of a TargetGroup: its targets, balancing and
// the connections to them.
type targetGroup struct {
	// name and protocol never change: a reload that changes a group's
	// protocol makes a new group.
	name, protocol string
	v              atomic.Pointer[groupView]
	log            zerolog.Logger
	ejectMu        sync.Mutex    // one ejection decision at a time, for max_ejection_percent
	next           atomic.Uint64 // round-robin counter
	dialer         *net.Dialer
	// tlsHandshake bounds the TLS handshake with TLS and HTTPS targets.
	tlsHandshake time.Duration
	metrics      *metrics
	// transport carries requests to HTTP and HTTPS groups' targets.
	transport http.RoundTripper
}

// groupView is what a reload of a group replaces at once: its settings and
// its targets.
type groupView struct {
	cfg     TargetGroup
	targets []*target
}

// view is the group's current settings and targets.
func (g *targetGroup) view() *groupView { return g.v.Load() }

func newTargetGroup(cfg TargetGroup, to Timeouts, m *metrics, log zerolog.Logger) *targetGroup {
	g := &targetGroup{
		name:         cfg.Name,
		protocol:     cfg.Protocol,
		log:          log.With().Str("target_group", cfg.Name).Logger(),
		dialer:       &net.Dialer{Timeout: to.Connect.D(), KeepAlive: 30 * time.Second},
		tlsHandshake: to.TLSHandshake.D(),
		metrics:      m,
	}
	v := &groupView{cfg: cfg}
	for _, a := range cfg.Targets {
		v.targets = append(v.targets, newTarget(a))
	}
	g.v.Store(v)
	if !streamGroup(cfg.Protocol) {
		g.transport = newGroupTransport(g, to, cfg.Timeout.D())
	}
	return g
}

// update applies a reloaded config to the group: targets that stay keep
// their health and ejection state, new ones start in the initial state,
// and the removed ones are returned for deregistration. A changed timeout
// gets a new connection pool.
func (g *targetGroup) update(cfg TargetGroup, to Timeouts) (removed []*target) {
	old := g.view()
	have := map[string]*target{}
	for _, t := range old.targets {
		have[t.addr] = t
	}
	v := &groupView{cfg: cfg}
	for _, a := range cfg.Targets {
		t := have[a]
		if t == nil {
			t = newTarget(a)
		}
		delete(have, a)
		v.targets = append(v.targets, t)
	}
	for _, t := range old.targets {
		if have[t.addr] != nil {
			removed = append(removed, t)
		}
	}
	g.v.Store(v)
	if gt, ok := g.transport.(*groupTransport); ok && cfg.Timeout != old.cfg.Timeout {
		prev := gt.base.Swap(newBaseTransport(g.protocol, g.dialer, to, cfg.Timeout.D()))
		// Requests on the old pool finish; its idle connections go with the
		// deregistration delay.
		time.AfterFunc(cfg.DeregistrationDelay.D(), prev.CloseIdleConnections)
	}
	return removed
}

// pick chooses a target for new work, skipping those in tried. Targets that
// are not unhealthy are preferred; when none is left the group fails open
// and picks among all untried targets, as ALB does when every target is
// unhealthy. It returns nil only when every target has been tried.
func (g *targetGroup) pick(tried []*target) *target {
	now := time.Now()
	v := g.view()
	cands := make([]*target, 0, len(v.targets))
	for _, t := range v.targets {
		if t.currentState() != StateUnhealthy && !t.ejected(now) && !slices.Contains(tried, t) {
			cands = append(cands, t)
		}
	}
	if len(cands) == 0 {
		// Every routable target is ejected: outlier detection never empties
		// a group on its own; the health checks decide.
		for _, t := range v.targets {
			if t.currentState() != StateUnhealthy && !slices.Contains(tried, t) {
				cands = append(cands, t)
			}
		}
	}
	if len(cands) == 0 {
		for _, t := range v.targets {
			if !slices.Contains(tried, t) {
				cands = append(cands, t)
			}
		}
	}
	if len(cands) == 0 {
		return nil
	}
	start := int(g.next.Add(1)-1) % len(cands)
	if v.cfg.Algorithm != AlgorithmLeastOutstanding {
		return cands[start]
	}
	// Least outstanding: the fewest in flight, ties broken in round-robin
	// order so that an idle group still spreads its work.
	best := cands[start]
	for i := 1; i < len(cands); i++ {
		c := cands[(start+i)%len(cands)]
		if c.outstanding.Load() < best.outstanding.Load() {
			best = c
		}
	}
	return best
}

// connectStream opens a connection to a target for a TCP or TLS listener,
// with TLS to the target for TLS groups. Nothing has been sent yet, so a
// target that refuses is skipped and the next one tried. The chosen
// target's outstanding count is raised; the caller lowers it when done.
func (g *targetGroup) connectStream(ctx context.Context, serverName string) (*target, net.Conn, string, error) {
	var tried []*target
	var lastErr error
	reason := accesslog.ReasonTargetConnectionError
	for range len(g.view().targets) {
		t := g.pick(tried)
		if t == nil {
			break
		}
		tried = append(tried, t)
		t.outstanding.Add(1)
		c, r, err := g.dial(ctx, t, serverName)
		if err == nil {
			g.passiveResult(t, nil)
			return t, c, "", nil
		}
		t.outstanding.Add(-1)
		if ctx.Err() == nil {
			g.passiveResult(t, err)
		}
		g.metrics.add(mTargetConnectErrors, 1, "target_group", g.name, "target", t.addr)
		lastErr, reason = err, r
	}
	if len(tried) > 0 {
		lastErr = fmt.Errorf("target %s: %w", tried[len(tried)-1].addr, lastErr)
	}
	return lastTarget(tried), nil, reason, fmt.Errorf("target group %s: %w", g.name, lastErr)
}

func lastTarget(ts []*target) *target {
	if len(ts) == 0 {
		return nil
	}
	return ts[len(ts)-1]
}

func (g *targetGroup) dial(ctx context.Context, t *target, serverName string) (net.Conn, string, error) {
	c, err := g.dialer.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return nil, accesslog.ReasonTargetConnectionError, err
	}
	if g.protocol != ProtocolTLS {
		return c, "", nil
	}
	tc := tls.Client(c, targetTLSConfig(serverName, nil))
	hctx, cancel := context.WithTimeout(ctx, g.tlsHandshake)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		c.Close()
		return nil, accesslog.ReasonTargetTLSNegotiationError, fmt.Errorf("TLS handshake: %w", err)
	}
	return tc, "", nil
}

// targetTLSConfig is TLS towards targets. Like ALB and NLB, the load
// balancer does not verify target certificates: targets sit on a private
// network and commonly use self-signed certificates; the traffic is
// encrypted, the target is trusted by its configured address.
func targetTLSConfig(serverName string, nextProtos []string) *tls.Config {
	return &tls.Config{
		InsecureSkipVerify: true, // see the comment above: ALB semantics
		ServerName:         serverName,
		MinVersion:         tls.VersionTLS12,
		NextProtos:         nextProtos,
	}
}

// isDialError reports a failure to connect, when nothing was sent to the
// target, so that the request may safely go to another.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// passiveResult feeds outlier detection with the outcome of a request (or
// connection) to t: err nil for a success; a failure to connect, a reset
// or a timeout otherwise. ConsecutiveFailures in a row eject the target
// for BaseEjectionTime times its ejections in a row, at most
// MaxEjectionTime, unless MaxEjectionPercent of the group is out already.
func (g *targetGroup) passiveResult(t *target, err error) {
	v := g.view()
	od := v.cfg.OutlierDetection
	if od.ConsecutiveFailures < 0 {
		return
	}
	now := time.Now()
	t.mu.Lock()
	if err == nil {
		t.passiveFails = 0
		if !t.ejected(now) {
			t.ejections = 0
		}
		t.mu.Unlock()
		return
	}
	t.passiveFails++
	if t.passiveFails < od.ConsecutiveFailures || t.ejected(now) {
		t.mu.Unlock()
		return
	}
	t.mu.Unlock()

	g.ejectMu.Lock()
	out := 0
	for _, o := range v.targets {
		if o != t && o.ejected(now) {
			out++
		}
	}
	if out >= max(1, len(v.targets)*od.MaxEjectionPercent/100) {
		g.ejectMu.Unlock()
		return
	}
	t.mu.Lock()
	t.ejections++
	d := min(od.BaseEjectionTime.D()*time.Duration(t.ejections), od.MaxEjectionTime.D())
	t.ejectedUntil.Store(now.Add(d).UnixNano())
	t.passiveFails = 0
	t.mu.Unlock()
	g.ejectMu.Unlock()
	g.metrics.add(mTargetEjections, 1, "target_group", g.name, "target", t.addr)
	g.log.Warn().Str("target", t.addr).Dur("ejected_for", d).Int("consecutive_failures", od.ConsecutiveFailures).
		Str("cause", err.Error()).Msg("target ejected by outlier detection: out of rotation until the time is up")
}
