package yamlconf

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDecodeEnv(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string // "" values are set empty; absent names are unset
		yaml string
		want testConfig
	}{
		{"set", map[string]string{"EG_NAME": "edge-1"}, "name: ${EG_NAME}\n", testConfig{Name: "edge-1"}},
		{"part of a value", map[string]string{"EG_NAME": "1"}, "name: edge-${EG_NAME}.example\n", testConfig{Name: "edge-1.example"}},
		{"unset with default", nil, "name: ${EG_NAME:-fallback}\n", testConfig{Name: "fallback"}},
		{"empty with default", map[string]string{"EG_NAME": ""}, "name: ${EG_NAME:-fallback}\n", testConfig{Name: "fallback"}},
		{"set ignores default", map[string]string{"EG_NAME": "x"}, "name: ${EG_NAME:-fallback}\n", testConfig{Name: "x"}},
		{"empty without default", map[string]string{"EG_NAME": ""}, "name: ${EG_NAME}\n", testConfig{}},
		{"default with colon", nil, "name: ${EG_LISTEN:-:443}\n", testConfig{Name: ":443"}},
		{"dollar dollar", nil, "name: a$$b$$${EG_X:-c}$ $x\n", testConfig{Name: "a$b$c$ $x"}},
		{"plain into int", nil, "port: ${EG_PORT:-80}\n", testConfig{Port: 80}},
		{"plain into int from env", map[string]string{"EG_PORT": "8080"}, "port: ${EG_PORT}\n", testConfig{Port: 8080}},
		{"double-quoted stays a string", nil, "name: \"${EG_PORT:-80}\"\n", testConfig{Name: "80"}},
		{"single-quoted stays a string", nil, "name: 'it''s ${EG_PORT:-80}'\n", testConfig{Name: "it's 80"}},
		{"quoted escapes kept", map[string]string{"EG_X": `"q"\`}, "name: \"\\t${EG_X}\\\"\" # c\n", testConfig{Name: "\t\"q\"\\\""}},
		{"colon space stays one scalar", map[string]string{"EG_X": "a: b"}, "name: ${EG_X}\nport: 1\n", testConfig{Name: "a: b", Port: 1}},
		{"hash stays one scalar", map[string]string{"EG_X": "a #b"}, "name: ${EG_X} # comment\n", testConfig{Name: "a #b"}},
		{"quote stays one scalar", map[string]string{"EG_X": `a"b'`}, "name: ${EG_X}\n", testConfig{Name: `a"b'`}},
		{"flow sequence", map[string]string{"EG_X": "b, c"}, "tags: [a, ${EG_X}]\n", testConfig{Tags: []string{"a", "b, c"}}},
		{"flow sequence bracket", map[string]string{"EG_X": "b]"}, "tags: [a, ${EG_X}, ${EG_X}]\n", testConfig{Tags: []string{"a", "b]", "b]"}}},
		{"flow mapping", map[string]string{"EG_X": "}, x: {"}, "extra: {k: ${EG_X}, l: ${EG_Y:-:443}}\n", testConfig{Extra: map[string]string{"k": "}, x: {", "l": ":443"}}},
		{"block sequence", map[string]string{"EG_X": "- y"}, "tags:\n  - ${EG_X}\n  - ${EG_X:-z}\n", testConfig{Tags: []string{"- y", "- y"}}},
		{"dash", map[string]string{"EG_X": "-"}, "name: ${EG_X}\ntags: [${EG_X}]\n", testConfig{Name: "-", Tags: []string{"-"}}},
		{"anchor and alias", map[string]string{"EG_X": "@x"}, "name: &a ${EG_X}\ntags: [*a]\n", testConfig{Name: "@x", Tags: []string{"@x"}}},
		{"tagged", nil, "name: !!str ${EG_PORT:-80}\nport: !!int ${EG_PORT:-80}\n", testConfig{Name: "80", Port: 80}},
		{"yaml-looking value", map[string]string{"EG_X": "&a [*a, {k: v}] !t @x"}, "name: ${EG_X}\n", testConfig{Name: "&a [*a, {k: v}] !t @x"}},
		{"comment not expanded", nil, "name: a # ${EG_UNSET} ${\n# ${EG_UNSET:\n", testConfig{Name: "a"}},
		{"key not expanded", map[string]string{"EG_K": "other"}, "extra:\n  ${EG_K}: v\n  \"${EG_K}x\": w\n", testConfig{Extra: map[string]string{"${EG_K}": "v", "${EG_K}x": "w"}}},
		{"block scalar without references", nil, "name: |\n  cost $5\n", testConfig{Name: "cost $5\n"}},
		{"no dollar at all", nil, "name: plain\n", testConfig{Name: "plain"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, n := range []string{"EG_NAME", "EG_X", "EG_Y", "EG_PORT", "EG_K", "EG_UNSET", "EG_LISTEN"} {
				if v, ok := tt.env[n]; ok {
					t.Setenv(n, v)
				} else {
					unsetenv(t, n)
				}
			}
			var c testConfig
			if _, err := Decode("c.yaml", []byte(tt.yaml), &c); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c, tt.want) {
				t.Fatalf("decoded\n  %#v\nwant\n  %#v", c, tt.want)
			}
		})
	}
}

func TestDecodeEnvErrors(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		yaml string
		want string
	}{
		{"unset", nil, "name: a\norigins:\n  - id: ${EG_UNSET}\n", "c.yaml:3: origins[0].id: ${EG_UNSET} is not set"},
		{"unset in sequence", nil, "tags:\n  - a\n  - x${EG_UNSET}\n", "c.yaml:3: tags[1]: ${EG_UNSET} is not set"},
		{"unset quoted", nil, "name: \"${EG_UNSET}\"\n", "c.yaml:1: name: ${EG_UNSET} is not set"},
		{"all reported", nil, "name: ${EG_UNSET}\nport: ${EG_UNSET2}\n", "c.yaml:1: name: ${EG_UNSET} is not set\nc.yaml:2: port: ${EG_UNSET2} is not set"},
		{"unclosed", nil, "name: a\nport: ${EG_X\n", "c.yaml:2: port: ${EG_X: unclosed variable reference"},
		{"empty name", nil, "name: ${}\n", "c.yaml:1: name: ${}: invalid variable reference"},
		{"bad name", nil, "name: ${1X}\n", "c.yaml:1: name: ${1X}: invalid variable reference"},
		{"bad operator", nil, "name: ${EG_X-a}\n", "c.yaml:1: name: ${EG_X-a}: invalid variable reference"},
		{"newline", map[string]string{"EG_X": "a\nb: c"}, "name: ${EG_X}\n", "c.yaml:1: name: ${EG_X}: the value contains a line break"},
		{"block scalar", nil, "name: |\n  ${EG_X:-a}\n", "c.yaml:1: name: ${...} in a block scalar (| or >) is not supported"},
		{"multi-line plain", nil, "name: a\n  ${EG_X:-b}\n", "c.yaml:1: name: ${...} in a value spanning several lines is not supported"},
		{"plain string into int", map[string]string{"EG_X": "many"}, "port: ${EG_X}\n", `c.yaml:1: port: "many" is not a valid whole number`},
		{"quoted into int", nil, "port: \"${EG_X:-80}\"\n", `c.yaml:1: port: "80" is not a valid whole number`},
		{"unknown key after expansion", map[string]string{"EG_X": "a b: c"}, "name: ${EG_X}\norigins:\n  - id: ${EG_X}\n    timout: 1s\n", "c.yaml:4: origins[0].timout: unknown key"},
		{"unknown key on the expanded line", map[string]string{"EG_X": "a, b"}, "name: n\norigins: [{id: ${EG_X}, timout: 1s}]\n", "c.yaml:2: origins[0].timout: unknown key"},
		{"bad duration from env", map[string]string{"EG_X": "10x"}, "name: \"${EG_X}\"\norigins:\n  - {id: ${EG_X}, timeout: ${EG_X}}\n", `c.yaml:3: origins[0].timeout: "10x" is not a duration`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, n := range []string{"EG_X", "EG_UNSET", "EG_UNSET2"} {
				if v, ok := tt.env[n]; ok {
					t.Setenv(n, v)
				} else {
					unsetenv(t, n)
				}
			}
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

// Validation errors after expansion still point at the original lines.
func TestDecodeEnvDocumentLines(t *testing.T) {
	t.Setenv("EG_X", "a, b # c")
	t.Setenv("EG_T", "1m30s")
	var c testConfig
	doc, err := Decode("c.yaml", []byte("# ${EG_X}\nname: ${EG_X}\norigins:\n  - id: ${EG_X}\n    timeout: ${EG_T}\n  - {id: \"${EG_X}\", tries: ${EG_N:-3}}\n"), &c)
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != "a, b # c" || c.Origins[0].Timeout.D() != 90*time.Second || c.Origins[1].ID != "a, b # c" || c.Origins[1].Tries != 3 {
		t.Fatalf("decoded %+v", c)
	}
	if got := doc.Errorf("origins[1].tries", "too many").Error(); got != "c.yaml:6: origins[1].tries: too many" {
		t.Errorf("Errorf = %q", got)
	}
	if got := doc.Errorf("origins[0].timeout", "bad").Error(); got != "c.yaml:5: origins[0].timeout: bad" {
		t.Errorf("Errorf = %q", got)
	}
}

// unsetenv unsets name for the duration of the test (t.Setenv first, so
// that it is restored afterwards).
func unsetenv(t *testing.T, name string) {
	t.Helper()
	t.Setenv(name, "")
	if err := os.Unsetenv(name); err != nil {
		t.Fatal(err)
	}
}
