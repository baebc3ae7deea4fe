package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgegate/edgegate/edge"
)

// The edgegate config the harness writes must stay a valid config as the
// schema moves on: otherwise bench-edge breaks only when someone runs it.
func TestEdgegateConfigIsValid(t *testing.T) {
	l, err := prepare(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(l.Dir, "edgegate.yaml")
	cfg, err := edge.LoadConfig(path)
	if err != nil {
		b, _ := os.ReadFile(path)
		t.Fatalf("%v\n%s", err, b)
	}
	if err := cfg.CheckFiles(); err != nil {
		t.Fatal(err)
	}
	// The tests rely on these: caching by default, disabled under /pass/.
	d := cfg.Distributions[0]
	if d.DefaultBehavior.CachePolicy.Disabled || len(d.Behaviors) != 1 || !d.Behaviors[0].CachePolicy.Disabled || d.Behaviors[0].PathPattern != "/pass/*" {
		t.Errorf("behaviors: default %+v, others %+v", d.DefaultBehavior.CachePolicy, d.Behaviors)
	}
	if cfg.Edge.Logs.Dir == "" {
		t.Error("standard logs off: the comparison is with access logs on in all three")
	}
	// The other servers' configs name the same files and ports.
	for _, name := range []string{"nginx.conf", "origin.conf", "Caddyfile"} {
		b, err := os.ReadFile(filepath.Join(l.Dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), l.CA) && name != "origin.conf" {
			t.Errorf("%s does not verify the origin against the bench CA", name)
		}
		if !strings.Contains(string(b), "access") && name != "origin.conf" {
			t.Errorf("%s has no access log", name)
		}
	}
}
