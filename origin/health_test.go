package origin

import (
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"
)

// fastHealth makes the app group's checks run every 100ms.
var fastHealth = []string{"path: /healthz, interval: 5s, timeout: 2s", "path: /healthz, interval: 100ms, timeout: 50ms"}

type loadResult struct {
	start  time.Time
	app    string
	status int
	err    error
}

// load sends requests from two workers until stopped (or 20000 requests,
// or 60s), recording each.
type load struct {
	mu      sync.Mutex
	results []loadResult
	stop    chan struct{}
	once    sync.Once
	wg      sync.WaitGroup
}

func startLoad(c *http.Client, url string) *load {
	l := &load{stop: make(chan struct{})}
	deadline := time.Now().Add(60 * time.Second)
	for range 2 {
		l.wg.Go(func() {
			for range 10000 {
				select {
				case <-l.stop:
					return
				default:
				}
				if time.Now().After(deadline) {
					return
				}
				start := time.Now()
				resp, r, err := get(c, url)
				res := loadResult{start: start, app: r.App, err: err}
				if resp != nil {
					res.status = resp.StatusCode
				}
				l.mu.Lock()
				l.results = append(l.results, res)
				l.mu.Unlock()
			}
		})
	}
	return l
}

func (l *load) snapshot() []loadResult {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]loadResult(nil), l.results...)
}

// since counts results of requests started after t, and those served by app.
func (l *load) since(t time.Time, app string) (n, byApp int) {
	for _, r := range l.snapshot() {
		if r.start.After(t) {
			n++
			if r.app == app {
				byApp++
			}
		}
	}
	return n, byApp
}

func (l *load) finish() []loadResult {
	l.once.Do(func() { close(l.stop) })
	l.wg.Wait()
	return l.snapshot()
}

func TestTargetStoppedMidLoad(t *testing.T) {
	e := startEdgeEnv(t, fastHealth...)
	c := httpClient(e.https, e.pki.clientTLS(e.pki.good), true)
	ld := startLoad(c, "https://alb.example.test/")
	defer ld.finish()

	waitFor(t, 10*time.Second, "load on both targets", func() bool {
		_, a := ld.since(time.Time{}, "a")
		_, b := ld.since(time.Time{}, "b")
		return a > 10 && b > 10
	})
	stopped := time.Now()
	e.b.stop()
	out := waitState(t, e.srv, "app", e.b.addr, StateUnhealthy)
	t.Logf("target out %v after it stopped (interval 100ms × unhealthy threshold 2)", out.Sub(stopped).Round(time.Millisecond))

	waitFor(t, 10*time.Second, "requests while the target is out", func() bool { n, _ := ld.since(out, ""); return n > 40 })
	restarted := time.Now()
	e.b.start()
	back := waitState(t, e.srv, "app", e.b.addr, StateHealthy)
	waitFor(t, 10*time.Second, "requests on the restarted target", func() bool { _, b := ld.since(back, "b"); return b > 5 })
	results := ld.finish()

	failedBefore := 0
	for _, r := range results {
		ok := r.err == nil && r.status == http.StatusOK
		switch {
		case r.start.After(out) && !ok:
			t.Errorf("request started %v after the target was out failed: %d %v", r.start.Sub(out), r.status, r.err)
		case r.start.After(out) && r.start.Before(restarted) && r.app != "a":
			t.Errorf("request started while b was out went to %q", r.app)
		case !ok:
			failedBefore++
		}
	}
	t.Logf("%d requests; %d failed between the stop and the health check noticing", len(results), failedBefore)
}

func TestFailOpenAndRecovery(t *testing.T) {
	e := startEdgeEnv(t, fastHealth...)
	e.a.sick.Store(true)
	e.b.sick.Store(true)
	waitState(t, e.srv, "app", e.a.addr, StateUnhealthy)
	waitState(t, e.srv, "app", e.b.addr, StateUnhealthy)

	var health struct {
		TargetGroups []TargetGroupHealth `json:"target_groups"`
	}
	if err := json.Unmarshal([]byte(adminGet(t, e.admin, "/targets")), &health); err != nil {
		t.Fatal(err)
	}
	g := health.TargetGroups[0]
	if g.Name != "app" || !g.FailOpen || g.Targets[0].Reason != "Target.ResponseCodeMismatch" || g.Targets[0].LastCheck == nil {
		t.Fatalf("/targets: %+v", g)
	}

	// Every target unhealthy: the group fails open and uses them all.
	c := httpClient(e.https, e.pki.clientTLS(e.pki.good), true)
	seen := map[string]int{}
	for i := range 4 {
		resp, r, err := get(c, "https://alb.example.test/")
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d while failing open: %v", i, err)
		}
		seen[r.App]++
	}
	if seen["a"] != 2 || seen["b"] != 2 {
		t.Errorf("failing open spread requests as %v", seen)
	}

	e.a.sick.Store(false)
	waitState(t, e.srv, "app", e.a.addr, StateHealthy)
	for i := range 4 {
		if _, r, err := get(c, "https://alb.example.test/"); err != nil || r.App != "a" {
			t.Fatalf("request %d with only a healthy: app %q, %v", i, r.App, err)
		}
	}
}

func TestLeastOutstandingRequests(t *testing.T) {
	e := startEdgeEnv(t, "algorithm: round_robin", "algorithm: least_outstanding_requests")
	c := httpClient(e.https, e.pki.clientTLS(e.pki.good), true)
	slow := make(chan appReply, 1)
	go func() {
		_, r, _ := get(c, "https://alb.example.test/?sleep=1s")
		slow <- r
	}()
	waitFor(t, 5*time.Second, "the slow request at a target", func() bool { return e.a.requests.Load()+e.b.requests.Load() == 1 })
	busy := "a"
	if e.b.requests.Load() == 1 {
		busy = "b"
	}
	for i := range 4 {
		if _, r, err := get(c, "https://alb.example.test/"); err != nil || r.App == busy {
			t.Fatalf("request %d went to %q (%v) while %s had a request outstanding", i, r.App, err, busy)
		}
	}
	if r := <-slow; r.App != busy {
		t.Fatalf("slow request answered by %q", r.App)
	}
}

func TestPick(t *testing.T) {
	tests := []struct {
		name        string
		algorithm   string
		states      []string
		outstanding []int64
		tried       []int
		want        []int // indexes of successive picks
	}{
		{"round robin", AlgorithmRoundRobin, []string{StateHealthy, StateHealthy, StateHealthy}, nil, nil, []int{0, 1, 2, 0}},
		{"unhealthy skipped evenly", AlgorithmRoundRobin, []string{StateHealthy, StateUnhealthy, StateHealthy}, nil, nil, []int{0, 2, 0, 2}},
		{"initial counts as routable", AlgorithmRoundRobin, []string{StateInitial, StateUnhealthy}, nil, nil, []int{0, 0}},
		{"all unhealthy fails open", AlgorithmRoundRobin, []string{StateUnhealthy, StateUnhealthy}, nil, nil, []int{0, 1, 0}},
		{"tried targets skipped", AlgorithmRoundRobin, []string{StateHealthy, StateHealthy, StateUnhealthy}, nil, []int{0}, []int{1, 1}},
		{"fail open among untried", AlgorithmRoundRobin, []string{StateHealthy, StateUnhealthy}, nil, []int{0}, []int{1}},
		{"least outstanding", AlgorithmLeastOutstanding, []string{StateHealthy, StateHealthy, StateHealthy}, []int64{3, 1, 2}, nil, []int{1, 1, 1}},
		{"least outstanding ties rotate", AlgorithmLeastOutstanding, []string{StateHealthy, StateHealthy}, []int64{0, 0}, nil, []int{0, 1, 0}},
		{"least outstanding skips unhealthy", AlgorithmLeastOutstanding, []string{StateUnhealthy, StateHealthy}, []int64{0, 9}, nil, []int{1, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := &groupView{cfg: TargetGroup{Algorithm: tt.algorithm}}
			for i, s := range tt.states {
				tg := newTarget(string(rune('a' + i)))
				tg.state.Store(s)
				if tt.outstanding != nil {
					tg.outstanding.Store(tt.outstanding[i])
				}
				v.targets = append(v.targets, tg)
			}
			g := &targetGroup{}
			g.v.Store(v)
			var tried []*target
			for _, i := range tt.tried {
				tried = append(tried, v.targets[i])
			}
			for n, want := range tt.want {
				if got := g.pick(tried); got != v.targets[want] {
					t.Fatalf("pick %d = %v, want %s", n, got, v.targets[want].addr)
				}
			}
		})
	}
	g := &targetGroup{}
	g.v.Store(&groupView{targets: []*target{newTarget("a")}})
	if got := g.pick(g.view().targets); got != nil {
		t.Errorf("pick with every target tried = %s, want nil", got.addr)
	}
}

func TestParseMatcher(t *testing.T) {
	tests := []struct {
		in      string
		ok      []int
		notOK   []int
		invalid bool
	}{
		{in: "200", ok: []int{200}, notOK: []int{201, 302}},
		{in: "200-399", ok: []int{200, 301, 399}, notOK: []int{199, 400}},
		{in: "200,204, 300-302", ok: []int{204, 301}, notOK: []int{203, 303}},
		{in: "abc", invalid: true},
		{in: "99", invalid: true},
		{in: "300-200", invalid: true},
		{in: "200-600", invalid: true},
		{in: "", invalid: true},
	}
	for _, tt := range tests {
		rs, err := parseMatcher(tt.in)
		if (err != nil) != tt.invalid {
			t.Errorf("parseMatcher(%q) error %v", tt.in, err)
			continue
		}
		match := func(code int) bool {
			for _, r := range rs {
				if code >= r.lo && code <= r.hi {
					return true
				}
			}
			return false
		}
		for _, c := range tt.ok {
			if !match(c) {
				t.Errorf("%q does not match %d", tt.in, c)
			}
		}
		for _, c := range tt.notOK {
			if match(c) {
				t.Errorf("%q matches %d", tt.in, c)
			}
		}
	}
}

func TestSNIRouteMatch(t *testing.T) {
	tests := []struct {
		route sniRoute
		sni   string
		want  bool
	}{
		{sniRoute{name: "a.example.test"}, "a.example.test", true},
		{sniRoute{name: "a.example.test"}, "b.example.test", false},
		{sniRoute{name: "example.test", wildcard: true}, "a.example.test", true},
		{sniRoute{name: "example.test", wildcard: true}, "example.test", false},
		{sniRoute{name: "example.test", wildcard: true}, "a.b.example.test", false},
		{sniRoute{name: "example.test", wildcard: true}, ".example.test", false},
	}
	for _, tt := range tests {
		if got := tt.route.match(tt.sni); got != tt.want {
			t.Errorf("%+v match %q = %v", tt.route, tt.sni, got)
		}
	}
}

// A hung target (it accepts and never answers) is out of rotation within a
// second under load, long before its active health check (every 5s, 2s
// timeout) could notice; requests it holds end at the group's timeout.
func TestHungTargetEjectedByOutlierDetection(t *testing.T) {
	e := startEdgeEnv(t, "algorithm: round_robin\n", "algorithm: round_robin\n      timeout: 300ms\n      outlier_detection: {consecutive_failures: 3, base_ejection_time: 30s}\n")
	c := httpClient(e.https, e.pki.clientTLS(e.pki.good), true)
	ld := startLoad(c, "https://alb.example.test/")
	defer ld.finish()
	waitFor(t, 10*time.Second, "load on both targets", func() bool {
		_, a := ld.since(time.Time{}, "a")
		_, b := ld.since(time.Time{}, "b")
		return a > 10 && b > 10
	})
	hung := time.Now()
	e.b.hung.Store(true)
	defer e.b.hung.Store(false)
	ejected := func() bool {
		for _, g := range e.srv.TargetHealth() {
			for _, th := range g.Targets {
				if th.Address == e.b.addr && th.EjectedUntil != nil {
					return true
				}
			}
		}
		return false
	}
	out := waitFor(t, 10*time.Second, "the hung target ejected", ejected)
	took := out.Sub(hung)
	t.Logf("hung target out of rotation %v after it hung", took.Round(time.Millisecond))
	if took > time.Second {
		t.Errorf("the hung target stayed in rotation for %v, want under a second", took)
	}
	if st := targetState(e.srv, "app", e.b.addr); st != StateHealthy {
		t.Errorf("the active check already said %s: the test proves nothing about passive detection", st)
	}
	waitFor(t, 10*time.Second, "requests after the ejection", func() bool { n, _ := ld.since(out, ""); return n > 40 })
	results := ld.finish()
	failed := 0
	for _, r := range results {
		ok := r.err == nil && r.status == http.StatusOK
		if r.start.After(out) && (!ok || r.app != "a") {
			t.Errorf("request started %v after the ejection: %d %q %v", r.start.Sub(out), r.status, r.app, r.err)
		}
		if !ok && r.start.After(hung) {
			failed++
		}
	}
	t.Logf("%d requests; %d held by the hung target before the ejection", len(results), failed)
}
