package origin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// healthUserAgent identifies health checks in target logs, as ALB's
// ELB-HealthChecker/2.0 does.
const healthUserAgent = "edgegate-HealthChecker/1.0"

// checker runs one target group's health checks.
type checker struct {
	g       *targetGroup
	hc      HealthCheck
	targets []*target // the group's targets when the checker was made
	matcher []statusRange
	client  *http.Client // HTTP and HTTPS checks
	log     zerolog.Logger
}

func newChecker(g *targetGroup, log zerolog.Logger) *checker {
	v := g.view()
	ranges, _ := parseMatcher(string(v.cfg.HealthCheck.Matcher)) // validated by LoadConfig
	c := &checker{g: g, hc: v.cfg.HealthCheck, targets: v.targets, matcher: ranges,
		log: log.With().Str("target_group", g.name).Logger()}
	if c.hc.Protocol != ProtocolTCP {
		c.client = &http.Client{
			Transport: &http.Transport{
				Proxy:                  nil, // never through an environment proxy
				DialContext:            g.dialer.DialContext,
				TLSClientConfig:        targetTLSConfig("", []string{"http/1.1"}),
				TLSHandshakeTimeout:    c.hc.Timeout.D(),
				DisableKeepAlives:      true, // each check proves a new connection works
				MaxResponseHeaderBytes: 64 << 10,
			},
			// A redirect is an answer to match, not to follow.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return c
}

// run checks every target at once and then every interval until ctx ends.
func (c *checker) run(ctx context.Context, wg *sync.WaitGroup) {
	for _, t := range c.targets {
		wg.Go(func() {
			timer := time.NewTimer(0)
			defer timer.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-timer.C:
				}
				ok, reason, desc := c.check(ctx, t)
				if ctx.Err() != nil {
					return
				}
				c.record(t, ok, reason, desc)
				timer.Reset(c.hc.Interval.D())
			}
		})
	}
}

// checkAddr is where the target's checks go: its own port or the
// configured one.
func (c *checker) checkAddr(t *target) string {
	if c.hc.Port == 0 {
		return t.addr
	}
	host, _, _ := net.SplitHostPort(t.addr)
	return net.JoinHostPort(host, strconv.Itoa(int(c.hc.Port)))
}

// check runs one health check. reason is ALB's code for a failure.
func (c *checker) check(ctx context.Context, t *target) (ok bool, reason, desc string) {
	ctx, cancel := context.WithTimeout(ctx, c.hc.Timeout.D())
	defer cancel()
	addr := c.checkAddr(t)
	if c.client == nil {
		conn, err := c.g.dialer.DialContext(ctx, "tcp", addr)
		if err != nil {
			return false, failureReason(err), err.Error()
		}
		conn.Close()
		return true, "", ""
	}
	scheme := "http"
	if c.hc.Protocol == ProtocolHTTPS {
		scheme = "https"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+addr+c.hc.Path, nil)
	if err != nil {
		return false, "Target.FailedHealthChecks", err.Error()
	}
	req.Header.Set("User-Agent", healthUserAgent)
	resp, err := c.client.Do(req)
	if err != nil {
		return false, failureReason(err), err.Error()
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	for _, r := range c.matcher {
		if resp.StatusCode >= r.lo && resp.StatusCode <= r.hi {
			return true, "", ""
		}
	}
	return false, "Target.ResponseCodeMismatch",
		fmt.Sprintf("health checks failed with these codes: [%d]", resp.StatusCode)
}

func failureReason(err error) string {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return "Target.Timeout"
	}
	return "Target.FailedHealthChecks"
}

// record applies one result. A target's first result decides at once (so
// that a new load balancer serves as soon as it knows); after that,
// healthy_threshold consecutive successes or unhealthy_threshold
// consecutive failures change the state.
func (c *checker) record(t *target, ok bool, reason, desc string) {
	result := "success"
	if !ok {
		result = "failure"
	}
	c.g.metrics.add(mHealthChecks, 1, "target_group", c.g.name, "target", t.addr, "result", result)

	t.mu.Lock()
	now := time.Now()
	t.lastCheck = now
	prev := t.currentState()
	next := prev
	if ok {
		t.oks, t.fails = t.oks+1, 0
		// A passing active check ends an outlier ejection, as Envoy's
		// successful_active_health_check_uneject_host does: the check is
		// the authority on recovery, ejection the quicker one on failure.
		t.ejectedUntil.Store(0)
		if prev == StateInitial || (prev == StateUnhealthy && t.oks >= c.hc.HealthyThreshold) {
			next = StateHealthy
		}
	} else {
		t.oks, t.fails = 0, t.fails+1
		t.description = desc
		if prev == StateInitial || (prev == StateHealthy && t.fails >= c.hc.UnhealthyThreshold) {
			next = StateUnhealthy
		}
		if next == StateUnhealthy {
			t.reason = reason
		}
	}
	if next != prev {
		t.state.Store(next)
		t.since = now
		if next == StateHealthy {
			t.reason, t.description = "", ""
		}
	}
	t.mu.Unlock()

	if next == prev {
		return
	}
	ev := c.log.Info()
	if next == StateUnhealthy {
		ev = c.log.Warn().Str("reason", reason).Str("cause", desc)
	}
	ev.Str("target", t.addr).Str("from", prev).Str("to", next).Msg("target health changed")
}
