package yamlconf

import (
	"errors"
	"strings"
	"testing"
)

// FuzzEnvValue: a value taken from the environment is data, never YAML.
// Whatever FUZZ_EDGEGATE_VALUE holds (quotes, newlines, colons, flow
// brackets, comments, anchors), a document that references it, plain,
// quoted or inside a flow collection, either decodes with exactly that
// value in that place and every other value unchanged, or fails with an
// error that names a line; never a panic. Seeds: secrets and addresses of
// the kind configs/ reference, and injection attempts.
func FuzzEnvValue(f *testing.F) {
	f.Fuzz(func(t *testing.T, value string, form uint8) {
		if strings.IndexByte(value, 0) >= 0 {
			t.Skip("no environment variable holds a NUL")
		}
		t.Setenv("FUZZ_EDGEGATE_VALUE", value)
		docs := []string{
			"a: ${FUZZ_EDGEGATE_VALUE}\nb: after\n",
			"a: \"${FUZZ_EDGEGATE_VALUE}\"\nb: after\n",
			"a: '${FUZZ_EDGEGATE_VALUE}'\nb: after\n",
			"m: {a: ${FUZZ_EDGEGATE_VALUE}, b: after}\n",
			"l: [${FUZZ_EDGEGATE_VALUE}, after]\n",
			"a: prefix-${FUZZ_EDGEGATE_VALUE:-default}-suffix\nb: after\n",
		}
		i := int(form) % len(docs)
		var v struct {
			A string            `yaml:"a"`
			B string            `yaml:"b"`
			M map[string]string `yaml:"m"`
			L []string          `yaml:"l"`
		}
		_, err := Decode("fuzz.yaml", []byte(docs[i]), &v)
		if err != nil {
			var es Errors
			if !errors.As(err, &es) {
				t.Fatalf("error is not a list of config errors: %T %v", err, err)
			}
			for _, e := range es {
				if e.Line < 1 {
					t.Fatalf("error without a line: %v", e)
				}
			}
			return
		}
		var got, after string
		switch i {
		case 3:
			got, after = v.M["a"], v.M["b"]
			if len(v.M) != 2 {
				t.Fatalf("the value changed the mapping: %q", v.M)
			}
		case 4:
			if len(v.L) != 2 {
				t.Fatalf("the value changed the list: %q", v.L)
			}
			got, after = v.L[0], v.L[1]
		default:
			got, after = v.A, v.B
		}
		want := value
		if i == 5 {
			if value == "" {
				want = "default"
			}
			want = "prefix-" + want + "-suffix"
		}
		if got != want || after != "after" {
			t.Fatalf("document %q with the value %q decoded to %q and %q", docs[i], value, got, after)
		}
	})
}
