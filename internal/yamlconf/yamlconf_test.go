package yamlconf

import (
	"strings"
	"testing"
	"time"
)

type testOrigin struct {
	ID      string   `yaml:"id"`
	Timeout Duration `yaml:"timeout"`
	Tries   int      `yaml:"tries"`
}

type testConfig struct {
	Name    string            `yaml:"name"`
	Memory  Size              `yaml:"memory"`
	Origins []testOrigin      `yaml:"origins"`
	Port    int               `yaml:"port"`
	Tags    []string          `yaml:"tags"`
	Extra   map[string]string `yaml:"extra"`
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name, yaml, want string
	}{
		{"unknown key", "name: a\norigins:\n  - id: x\n    timout: 1s\n", "c.yaml:4: origins[0].timout: unknown key"},
		{"bad duration", "origins:\n  - id: x\n    timeout: 10x\n", `c.yaml:3: origins[0].timeout: "10x" is not a duration`},
		{"negative duration", "origins:\n  - {id: x, timeout: -1s}\n", `c.yaml:2: origins[0].timeout: "-1s": a duration must not be negative`},
		{"bad int", "origins:\n  - id: x\n    tries: many\n", `c.yaml:3: origins[0].tries: "many" is not a valid whole number`},
		{"bad size", "memory: lots\n", `c.yaml:1: memory: "lots" is not a size`},
		{"bad yaml", "name: [a\n", "c.yaml:"},
		{"empty", "", "c.yaml:1: empty configuration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c testConfig
			_, err := Decode("c.yaml", []byte(tt.yaml), &c)
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Fatalf("error\n  %q\nwant prefix\n  %q", err.Error(), tt.want)
			}
		})
	}
}

func TestDecodeValues(t *testing.T) {
	var c testConfig
	doc, err := Decode("c.yaml", []byte("name: a\nmemory: 256MiB\norigins:\n  - id: x\n    timeout: 1m30s\n  - id: y\n"), &c)
	if err != nil {
		t.Fatal(err)
	}
	if c.Memory != 256<<20 || c.Origins[0].Timeout.D() != 90*time.Second || c.Origins[1].ID != "y" {
		t.Fatalf("decoded %+v", c)
	}
	// Validation errors point at the key, or at the nearest parent when the key is missing.
	if got := doc.Errorf("origins[1].id", "duplicate").Error(); got != "c.yaml:6: origins[1].id: duplicate" {
		t.Errorf("Errorf = %q", got)
	}
	if got := doc.Errorf("origins[1].timeout", "missing").Error(); got != "c.yaml:6: origins[1].timeout: missing" {
		t.Errorf("Errorf for a missing key = %q", got)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]Size{"0": 0, "4096": 4096, "1KiB": 1024, "256MiB": 256 << 20, "2GB": 2e9, "10 B": 10} {
		got, err := ParseSize(in)
		if err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "-1", "1.5MiB", "MiB", "1XB"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) accepted", in)
		}
	}
}
