package edge

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/edgegate/edgegate/edge/accesslog"
	"github.com/edgegate/edgegate/internal/adminhttp"
	"github.com/edgegate/edgegate/internal/yamlconf"
)

// stats counts requests for /metrics.
type stats struct {
	mu         sync.Mutex
	requests   map[statsKey]int64
	tlsRefused atomic.Int64
}

type statsKey struct {
	result, detailed accesslog.ResultType
	status           int
}

func newStats() *stats { return &stats{requests: map[statsKey]int64{}} }

func (s *stats) count(result, detailed accesslog.ResultType, status int) {
	s.mu.Lock()
	s.requests[statsKey{result, detailed, status}]++
	s.mu.Unlock()
}

// adminHandler serves /healthz, /readyz, /metrics (Prometheus text
// format), the invalidations, POST /reload, /debug/config and
// /debug/pprof/, behind the admin guard (whose token a reload may change).
func (s *Server) adminHandler() http.Handler {
	mux := http.NewServeMux()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g := adminhttp.Guard{
			Token:    s.state().cfg.Edge.Admin.Token,
			Loopback: adminhttp.IsLoopbackListen(s.Addr("admin")),
			Open:     []string{"/healthz", "/readyz"},
			Private:  []string{"/debug/"},
		}
		g.Wrap(mux).ServeHTTP(w, r)
	})
	mux.HandleFunc("POST /reload", func(w http.ResponseWriter, r *http.Request) {
		if err := s.Reload(r.Context()); err != nil {
			status := http.StatusUnprocessableEntity
			if errors.Is(err, ErrNoConfigFile) {
				status = http.StatusConflict
			}
			writeJSON(w, status, map[string]string{"status": "refused", "error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "reloaded"})
	})
	mux.HandleFunc("GET /debug/config", func(w http.ResponseWriter, _ *http.Request) {
		out, err := yamlconf.Redacted(s.state().cfg)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/yaml; charset=utf-8")
		_, _ = w.Write(out)
	})
	adminhttp.HandlePprof(mux)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	// Ready once every alias served over HTTPS has its certificate: before
	// that its viewers get a TLS alert, so a health check that gates
	// traffic (compose's --wait, a load balancer) should wait.
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if pending := s.state().certs.Pending(); len(pending) > 0 && s.Addr("https") != "" {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "waiting for certificates: %s\n", strings.Join(pending, ", "))
			return
		}
		_, _ = io.WriteString(w, "ready\n")
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		s.writeMetrics(w)
	})
	s.invalidationsHandler(mux)
	return h
}

func (s *Server) writeMetrics(w io.Writer) {
	s.stats.mu.Lock()
	counts := maps.Clone(s.stats.requests)
	s.stats.mu.Unlock()
	keys := slices.SortedFunc(maps.Keys(counts), func(a, b statsKey) int {
		return cmp.Or(cmp.Compare(a.result, b.result), cmp.Compare(a.detailed, b.detailed), cmp.Compare(a.status, b.status))
	})
	fmt.Fprintln(w, "# HELP edgegate_edge_requests_total Viewer requests by result type, detailed result type and status.")
	fmt.Fprintln(w, "# TYPE edgegate_edge_requests_total counter")
	for _, k := range keys {
		status := strconv.Itoa(k.status)
		if k.status == 0 {
			status = "000"
		}
		fmt.Fprintf(w, "edgegate_edge_requests_total{location=%q,result_type=%q,detailed_result_type=%q,status=%q} %d\n",
			s.state().cfg.Edge.Location, k.result, k.detailed, status, counts[k])
	}
	fmt.Fprintln(w, "# HELP edgegate_edge_tls_refused_total TLS handshakes refused for an unknown or missing server name.")
	fmt.Fprintln(w, "# TYPE edgegate_edge_tls_refused_total counter")
	fmt.Fprintf(w, "edgegate_edge_tls_refused_total{location=%q} %d\n", s.state().cfg.Edge.Location, s.stats.tlsRefused.Load())
	if c := s.state().certs; c != nil {
		c.WriteMetrics(w)
	}
	adminhttp.WriteRuntimeMetrics(w)
}
