package origin

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Metric names. The exposition format is written by hand: it is small, and
// it spares the module a dependency.
const (
	mConnections         = "edgegate_origin_connections_total"
	mActiveConnections   = "edgegate_origin_active_connections"
	mRequests            = "edgegate_origin_requests_total"
	mClientTLSErrors     = "edgegate_origin_client_tls_errors_total"
	mReceivedBytes       = "edgegate_origin_received_bytes_total"
	mSentBytes           = "edgegate_origin_sent_bytes_total"
	mTargetRequests      = "edgegate_origin_target_requests_total"
	mTargetConnectErrors = "edgegate_origin_target_connection_errors_total"
	mHealthChecks        = "edgegate_origin_health_checks_total"
	mTargetHealthy       = "edgegate_origin_target_healthy"
	mTargetOutstanding   = "edgegate_origin_target_outstanding"
	mHealthyTargets      = "edgegate_origin_healthy_targets"
	mUnhealthyTargets    = "edgegate_origin_unhealthy_targets"
	mTargetEjections     = "edgegate_origin_target_ejections_total"
	mTargetEjected       = "edgegate_origin_target_ejected"
)

// metricFamily describes one metric for its # HELP and # TYPE lines.
type metricFamily struct{ name, typ, help string }

// families lists every metric in output order.
func families() []metricFamily {
	return []metricFamily{
		{mConnections, "counter", "Client connections accepted, by listener."},
		{mActiveConnections, "gauge", "Client connections open now, by listener."},
		{mRequests, "counter", "HTTP requests answered (HTTP/HTTPS listeners), by listener and status sent to the client."},
		{mClientTLSErrors, "counter", "Client TLS handshakes that failed, by listener and reason (mutual TLS refusals included)."},
		{mReceivedBytes, "counter", "Bytes received from clients, by listener."},
		{mSentBytes, "counter", "Bytes sent to clients, by listener."},
		{mTargetRequests, "counter", "Requests (HTTP) or connections (TCP/TLS) sent to a target."},
		{mTargetConnectErrors, "counter", "Failed attempts to connect to a target."},
		{mHealthChecks, "counter", "Health checks run, by target and result."},
		{mTargetHealthy, "gauge", "1 when the target is healthy, 0 when unhealthy or not checked yet."},
		{mTargetOutstanding, "gauge", "Requests (HTTP) or connections (TCP/TLS) in flight to the target."},
		{mHealthyTargets, "gauge", "Healthy targets in the group (ALB's HealthyHostCount)."},
		{mUnhealthyTargets, "gauge", "Unhealthy targets in the group (ALB's UnHealthyHostCount)."},
		{mTargetEjections, "counter", "Times outlier detection took a target out of rotation for failing requests in a row."},
		{mTargetEjected, "gauge", "1 while outlier detection keeps the target out of rotation."},
	}
}

// series is one labelled value.
type series struct {
	name, labels string
	v            atomic.Int64
}

// metrics holds counters and gauges that are updated as traffic flows.
// Gauges derived from state (target health) are computed at scrape time.
type metrics struct {
	values sync.Map // name+labels → *series
}

// add adds delta to the series of name with the label pairs kv (key,
// value, key, value...).
func (m *metrics) add(name string, delta int64, kv ...string) {
	labels := formatLabels(kv)
	key := name + labels
	s, ok := m.values.Load(key)
	if !ok {
		s, _ = m.values.LoadOrStore(key, &series{name: name, labels: labels})
	}
	s.(*series).v.Add(delta)
}

func formatLabels(kv []string) string {
	if len(kv) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteByte('{')
	for i := 0; i+1 < len(kv); i += 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(kv[i])
		b.WriteString(`="`)
		b.WriteString(escapeLabel(kv[i+1]))
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

func escapeLabel(v string) string {
	if !strings.ContainsAny(v, "\\\"\n") {
		return v
	}
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(v)
}

// gaugeSample is a value computed at scrape time.
type gaugeSample struct {
	name   string
	labels []string
	value  int64
}

// write renders every family in the Prometheus text exposition format
// (version 0.0.4).
func (m *metrics) write(w io.Writer, computed []gaugeSample) error {
	byName := map[string][]string{}
	m.values.Range(func(_, v any) bool {
		s := v.(*series)
		byName[s.name] = append(byName[s.name], s.labels+" "+strconv.FormatInt(s.v.Load(), 10))
		return true
	})
	for _, g := range computed {
		byName[g.name] = append(byName[g.name], formatLabels(g.labels)+" "+strconv.FormatInt(g.value, 10))
	}
	var b strings.Builder
	for _, f := range families() {
		lines := byName[f.name]
		if len(lines) == 0 {
			continue
		}
		slices.Sort(lines)
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", f.name, f.help, f.name, f.typ)
		for _, l := range lines {
			b.WriteString(f.name)
			b.WriteString(l)
			b.WriteByte('\n')
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
