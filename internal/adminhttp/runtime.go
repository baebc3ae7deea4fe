package adminhttp

import (
	"fmt"
	"io"
	"net/http"
	"net/http/pprof"
	"runtime"
	"runtime/metrics"
)

// runtimeGauges maps runtime/metrics samples to Prometheus names, as the
// Prometheus Go client names them where it has a name.
var runtimeGauges = [...]struct {
	sample, name, typ, help string
}{
	{"/sched/goroutines:goroutines", "go_goroutines", "gauge", "Goroutines that currently exist."},
	{"/sched/gomaxprocs:threads", "go_sched_gomaxprocs_threads", "gauge", "GOMAXPROCS."},
	{"/memory/classes/heap/objects:bytes", "go_memory_heap_objects_bytes", "gauge", "Bytes of live and not yet swept heap objects."},
	{"/memory/classes/total:bytes", "go_memory_total_bytes", "gauge", "All memory mapped by the Go runtime."},
	{"/gc/heap/goal:bytes", "go_gc_heap_goal_bytes", "gauge", "Heap size the next GC cycle aims at."},
	{"/gc/gomemlimit:bytes", "go_gc_gomemlimit_bytes", "gauge", "The Go memory limit (GOMEMLIMIT)."},
	{"/gc/cycles/total:gc-cycles", "go_gc_cycles_total", "counter", "Completed GC cycles."},
	{"/cpu/classes/gc/total:cpu-seconds", "go_gc_cpu_seconds_total", "counter", "CPU time spent on GC (estimate)."},
	{"/gc/heap/allocs:bytes", "go_gc_heap_allocs_bytes_total", "counter", "Bytes allocated on the heap."},
}

// WriteRuntimeMetrics writes the Go runtime's goroutine, heap and GC
// figures in Prometheus text format.
func WriteRuntimeMetrics(w io.Writer) {
	samples := make([]metrics.Sample, len(runtimeGauges))
	for i, g := range runtimeGauges {
		samples[i].Name = g.sample
	}
	metrics.Read(samples)
	for i, g := range runtimeGauges {
		var v float64
		switch samples[i].Value.Kind() {
		case metrics.KindUint64:
			v = float64(samples[i].Value.Uint64())
		case metrics.KindFloat64:
			v = samples[i].Value.Float64()
		default:
			continue // not offered by this Go version
		}
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n%s %g\n", g.name, g.help, g.name, g.typ, g.name, v)
	}
	fmt.Fprintf(w, "# HELP go_info Go version.\n# TYPE go_info gauge\ngo_info{version=%q} 1\n", runtime.Version())
}

// HandlePprof serves net/http/pprof under /debug/pprof/ on mux; the Guard
// in front must list /debug/ as Private.
func HandlePprof(mux *http.ServeMux) {
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
}
