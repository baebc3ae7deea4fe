package origin

import (
	"errors"
	"testing"

	"github.com/edgegate/edgegate/internal/yamlconf"
)

// FuzzParseConfig: any input gives either a config or errors that each
// name the file and a line; never a panic. Seeds:
// testdata/fuzz/FuzzParseConfig (the configs/ files and broken variants).
func FuzzParseConfig(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := ParseConfig("fuzz.yaml", data)
		if err == nil {
			if cfg == nil {
				t.Fatal("no config and no error")
			}
			return
		}
		var es yamlconf.Errors
		if !errors.As(err, &es) || len(es) == 0 {
			t.Fatalf("error is not a list of config errors: %T %v", err, err)
		}
		for _, e := range es {
			if e.File != "fuzz.yaml" || e.Line < 1 || e.Problem == "" {
				t.Fatalf("config error without file, line or problem: %q", e.Error())
			}
		}
	})
}
