package origin

import (
	"encoding/json"
	"io"
	"net/http"
	"time"

	"github.com/edgegate/edgegate/internal/adminhttp"
	"github.com/edgegate/edgegate/internal/yamlconf"
)

// TargetGroupHealth is a target group's health, as GET /targets returns it.
type TargetGroupHealth struct {
	Name      string `json:"name"`      // the target group's name
	Protocol  string `json:"protocol"`  // HTTP, HTTPS, TCP or TLS
	Algorithm string `json:"algorithm"` // round_robin or least_outstanding_requests
	// FailOpen is true when no target is routable (every one unhealthy), so
	// that work goes to all of them.
	FailOpen bool           `json:"fail_open"`
	Targets  []TargetHealth `json:"targets"`
}

// TargetHealth is one target's health.
type TargetHealth struct {
	Address string `json:"address"` // HOST:PORT
	State   string `json:"state"`   // initial | healthy | unhealthy
	// Reason is ALB's reason code: Elb.InitialHealthChecking,
	// Target.Timeout, Target.ResponseCodeMismatch, Target.FailedHealthChecks.
	Reason      string     `json:"reason,omitempty"`
	Description string     `json:"description,omitempty"` // the last failure in words
	Outstanding int64      `json:"outstanding"`           // requests (HTTP) or connections (TCP/TLS) in flight
	LastCheck   *time.Time `json:"last_check,omitempty"`  // nil before the first check
	Since       time.Time  `json:"since"`                 // when State last changed
	// EjectedUntil is set while outlier detection keeps the target out of
	// rotation for failing requests in a row.
	EjectedUntil *time.Time `json:"ejected_until,omitempty"`
}

// TargetHealth returns the health of every target, in config order.
func (s *Server) TargetHealth() []TargetGroupHealth {
	s.mu.Lock()
	groups := s.groups
	s.mu.Unlock()
	out := make([]TargetGroupHealth, 0, len(groups))
	for _, g := range groups {
		v := g.view()
		gh := TargetGroupHealth{Name: g.name, Protocol: g.protocol, Algorithm: v.cfg.Algorithm, FailOpen: true}
		for _, t := range v.targets {
			t.mu.Lock()
			th := TargetHealth{Address: t.addr, State: t.currentState(), Reason: t.reason, Description: t.description,
				Outstanding: t.outstanding.Load(), Since: t.since.UTC()}
			if !t.lastCheck.IsZero() {
				lc := t.lastCheck.UTC()
				th.LastCheck = &lc
			}
			if now := time.Now(); t.ejected(now) {
				until := time.Unix(0, t.ejectedUntil.Load()).UTC()
				th.EjectedUntil = &until
			}
			t.mu.Unlock()
			if th.State != StateUnhealthy {
				gh.FailOpen = false
			}
			gh.Targets = append(gh.Targets, th)
		}
		out = append(out, gh)
	}
	return out
}

// adminServer serves /healthz, /targets and /metrics.
func (s *Server) adminServer() *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if s.draining.Load() {
			// Tell an upstream health check to stop sending new work.
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "draining\n")
			return
		}
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /targets", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(struct {
			TargetGroups []TargetGroupHealth `json:"target_groups"`
		}{s.TargetHealth()})
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		_ = s.metrics.write(w, s.healthGauges())
		adminhttp.WriteRuntimeMetrics(w)
	})
	mux.HandleFunc("POST /reload", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if err := s.Reload(r.Context()); err != nil {
			w.WriteHeader(http.StatusUnprocessableEntity)
			_ = json.NewEncoder(w).Encode(map[string]string{"status": "refused", "error": err.Error()})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"status": "reloaded"})
	})
	mux.HandleFunc("GET /debug/config", func(w http.ResponseWriter, _ *http.Request) {
		out, err := yamlconf.Redacted(s.config())
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/yaml; charset=utf-8")
		_, _ = w.Write(out)
	})
	adminhttp.HandlePprof(mux)
	// The guard reads the token of the running config, which a reload may
	// change.
	guarded := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		addr := ""
		if a := s.AdminAddr(); a != nil {
			addr = a.String()
		}
		adminhttp.Guard{
			Token:    s.config().Origin.Admin.Token,
			Loopback: adminhttp.IsLoopbackListen(addr),
			Open:     []string{"/healthz"},
			Private:  []string{"/debug/"},
		}.Wrap(mux).ServeHTTP(w, r)
	})
	return &http.Server{
		Handler:           guarded,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
}

// healthGauges computes the gauges derived from target state.
func (s *Server) healthGauges() []gaugeSample {
	var out []gaugeSample
	s.mu.Lock()
	groups := s.groups
	s.mu.Unlock()
	for _, g := range groups {
		healthy, unhealthy := int64(0), int64(0)
		for _, t := range g.view().targets {
			v := int64(0)
			switch t.currentState() {
			case StateHealthy:
				v = 1
				healthy++
			case StateUnhealthy:
				unhealthy++
			}
			labels := []string{"target_group", g.name, "target", t.addr}
			ejected := int64(0)
			if t.ejected(time.Now()) {
				ejected = 1
			}
			out = append(out,
				gaugeSample{mTargetHealthy, labels, v},
				gaugeSample{mTargetOutstanding, labels, t.outstanding.Load()},
				gaugeSample{mTargetEjected, labels, ejected})
		}
		out = append(out,
			gaugeSample{mHealthyTargets, []string{"target_group", g.name}, healthy},
			gaugeSample{mUnhealthyTargets, []string{"target_group", g.name}, unhealthy})
	}
	return out
}
