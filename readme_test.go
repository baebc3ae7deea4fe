package edgegate_test

import (
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/edgegate/edgegate/edge"
	"github.com/edgegate/edgegate/origin"
	"go.yaml.in/yaml/v3"
)

// TestREADMEConfigReference keeps the config reference in README.md true:
// every YAML key of edge.Config and origin.Config must have a row in the
// reference's tables, and every row must name a real key.
func TestREADMEConfigReference(t *testing.T) {
	inCode := map[string]bool{}
	collectKeys(reflect.TypeOf(edge.Config{}), "", inCode)
	collectKeys(reflect.TypeOf(origin.Config{}), "", inCode)
	if len(inCode) < 50 {
		t.Fatalf("found only %d config keys; the type walk is broken", len(inCode))
	}

	documented := readmeKeys(t)

	var missing, stale []string
	for k := range inCode {
		if !documented[k] {
			missing = append(missing, k)
		}
	}
	for k := range documented {
		if !inCode[k] {
			stale = append(stale, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(stale)
	for _, k := range missing {
		t.Errorf("config key %s is missing from the README config reference", k)
	}
	for _, k := range stale {
		t.Errorf("README config reference lists %s, which is not a config key", k)
	}
}

var unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()

// collectKeys adds the dotted key path of every YAML key reachable from t
// under prefix, as yaml.v3 decodes it: tagged (or lowercased untagged)
// exported fields, ",inline" and anonymous struct fields merged into their
// parent, "[]" for slice elements, and types with their own UnmarshalYAML
// treated as scalars unless they decode a mapping of tagged fields.
func collectKeys(t reflect.Type, prefix string, keys map[string]bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Slice, reflect.Array:
		collectKeys(t.Elem(), prefix+"[]", keys)
		return
	case reflect.Map:
		// Map keys are data (header names), not config keys; a map of
		// scalars is one key. No config map holds structs today.
		if e := deref(t.Elem()); e.Kind() == reflect.Struct && !isScalar(e) {
			panic("readme_test: a map of structs at " + prefix + " needs a notation")
		}
		return
	case reflect.Struct:
		if isScalar(t) {
			return
		}
	default:
		return
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		inline := strings.Contains(","+opts+",", ",inline,")
		if f.Anonymous && tag == "" {
			inline = true
		}
		if inline {
			collectKeys(f.Type, prefix, keys)
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name) // yaml.v3's default key
		}
		path := name
		if prefix != "" {
			path = prefix + "." + name
		}
		keys[path] = true
		collectKeys(f.Type, path, keys)
	}
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// isScalar reports a type that decodes itself (UnmarshalYAML) and has no
// yaml-tagged fields, such as durations, sizes, matchers and name lists.
func isScalar(t reflect.Type) bool {
	if !reflect.PointerTo(t).Implements(unmarshalerType) && !t.Implements(unmarshalerType) {
		return false
	}
	if t.Kind() != reflect.Struct {
		return true
	}
	for i := 0; i < t.NumField(); i++ {
		if _, ok := t.Field(i).Tag.Lookup("yaml"); ok {
			return false
		}
	}
	return true
}

var firstCellKey = regexp.MustCompile("^\\|\\s*`([^`]+)`")

// readmeKeys returns the key paths in the first column of the tables
// between the config-reference markers of README.md.
func readmeKeys(t *testing.T) map[string]bool {
	t.Helper()
	data, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	const start, end = "<!-- config-reference:start -->", "<!-- config-reference:end -->"
	s := string(data)
	i, j := strings.Index(s, start), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatalf("README.md: the markers %s and %s are missing or out of order", start, end)
	}
	keys := map[string]bool{}
	for _, line := range strings.Split(s[i+len(start):j], "\n") {
		m := firstCellKey.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			continue
		}
		if keys[m[1]] {
			t.Errorf("README config reference lists %s twice", m[1])
		}
		keys[m[1]] = true
	}
	return keys
}
