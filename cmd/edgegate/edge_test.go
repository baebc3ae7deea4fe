package main

import (
	"bytes"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/edgegate/edgegate/edge"
	"github.com/rs/zerolog"
)

func TestEdgeSetsAMemoryLimitFromItsTiers(t *testing.T) {
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	cfg, err := edge.ParseConfig("memlimit", []byte(`edge:
  certificates: {self_signed: [www.example.test]}
  cache: {memory: 1GiB}
distributions:
  - aliases: [www.example.test]
    origins: [{id: app, domain_name: app.example.test}]
    default_behavior: {target: app}
`))
	if err != nil {
		t.Fatal(err)
	}
	ceiling, _ := memlimit.FromCgroup()
	want := cfg.MemoryLimit(ceiling)
	if ceiling == 0 && want != 1<<30*3/2+256<<20 {
		t.Fatalf("1 GiB tier: limit %d, want 1.5 GiB + 256 MiB", want)
	}
	var log bytes.Buffer
	if got := setMemoryLimit(cfg, zerolog.New(&log), ""); got != want || debug.SetMemoryLimit(-1) != want {
		t.Errorf("limit set %d (runtime: %d), want %d", got, debug.SetMemoryLimit(-1), want)
	}
	if !strings.Contains(log.String(), "memory limit set") {
		t.Errorf("no log line says the limit was set: %s", log.String())
	}

	// GOMEMLIMIT (applied by the runtime at start) wins.
	debug.SetMemoryLimit(512 << 20)
	log.Reset()
	if got := setMemoryLimit(cfg, zerolog.New(&log), "512MiB"); got != 512<<20 || debug.SetMemoryLimit(-1) != 512<<20 {
		t.Errorf("with GOMEMLIMIT=512MiB the limit became %d", debug.SetMemoryLimit(-1))
	}
	if !strings.Contains(log.String(), "from the environment") {
		t.Errorf("log does not say where the limit came from: %s", log.String())
	}
}

func TestEdgeSetsItsGCPercentUnlessGOGCIsSet(t *testing.T) {
	prev := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(prev) })
	current := func() int {
		pct := debug.SetGCPercent(100)
		debug.SetGCPercent(pct)
		return pct
	}
	var log bytes.Buffer
	if got := setGCPercent(zerolog.New(&log), ""); got != 200 || current() != 200 {
		t.Errorf("GC percent set %d (runtime: %d), want 200", got, current())
	}
	if !strings.Contains(log.String(), "garbage collector target set") {
		t.Errorf("no log line says the GC target was set: %s", log.String())
	}

	// GOGC (applied by the runtime at start) wins, "off" included.
	for _, c := range []struct {
		env string
		pct int
	}{{"50", 50}, {"off", -1}} {
		debug.SetGCPercent(c.pct)
		log.Reset()
		if got := setGCPercent(zerolog.New(&log), c.env); got != c.pct || current() != c.pct {
			t.Errorf("with GOGC=%s the GC percent became %d (returned %d)", c.env, current(), got)
		}
		if !strings.Contains(log.String(), "from the environment") || !strings.Contains(log.String(), c.env) {
			t.Errorf("GOGC=%s: log does not say where the target came from: %s", c.env, log.String())
		}
	}
}
