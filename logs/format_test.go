package logs

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func incidentSummary(t *testing.T) *Summary {
	t.Helper()
	path := writeFile(t, filepath.Join(t.TempDir(), "edge.log"), synthLog(t, 6000, 2*time.Hour, true))
	_, s := analyze(t, Options{}, path)
	return s
}

func keys(t *testing.T, v any) []string {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%T is not an object", v)
	}
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestJSONKeys pins the documented JSON keys: consumers depend on them, so
// a change here must be deliberate (and bump SchemaVersion when a key goes).
func TestJSONKeys(t *testing.T) {
	s := incidentSummary(t)
	var buf bytes.Buffer
	if err := WriteSummary(&buf, s, FormatJSON); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	first := func(v any) any { return v.([]any)[0] }
	for _, tc := range []struct {
		name string
		v    any
		want string
	}{
		{"top level", doc, "bytes_received bytes_sent ciphers detailed_result_types errors filter findings hit_ratio input " +
			"latency methods notes protocol_versions protocols requests requests_per_minute response_result_types result_types " +
			"schema_version status_classes status_codes time_range timeline tls_versions top"},
		{"input", doc["input"], "filtered input_errors malformed malformed_examples matched records sources untimed"},
		{"time_range", doc["time_range"], "first last seconds"},
		{"requests_per_minute", doc["requests_per_minute"], "mean peak peak_at"},
		{"hit_ratio", doc["hit_ratio"], "bytes hit_bytes hits miss_bytes misses requests"},
		{"count", first(doc["result_types"]), "count key share"},
		{"latency", doc["latency"], "by_result_type overall"},
		{"latency pair", doc["latency"].(map[string]any)["overall"], "time_taken time_to_first_byte"},
		{"percentiles", doc["latency"].(map[string]any)["overall"].(map[string]any)["time_taken"], "count max mean p50 p90 p99"},
		{"by result type", first(doc["latency"].(map[string]any)["by_result_type"]), "result_type time_taken time_to_first_byte"},
		{"top", doc["top"], "clients edge_locations hosts referers uris user_agents"},
		{"top list", doc["top"].(map[string]any)["uris"], "exact items max_error"},
		{"error", first(doc["errors"]), "count first hosts last statuses time_taken top_uris type"},
		{"finding", first(doc["findings"]), "from host kind message requests severity to"},
		{"timeline", doc["timeline"], "bucket_seconds buckets"},
		{"bucket", first(doc["timeline"].(map[string]any)["buckets"]), "by_result byte_hit_ratio bytes errors errors_by_type " +
			"hit_ratio hits misses p50 p90 p99 requests start status_4xx status_5xx"},
	} {
		if got := strings.Join(keys(t, tc.v), " "); got != tc.want {
			t.Errorf("%s keys:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
	if doc["schema_version"] != float64(SchemaVersion) {
		t.Errorf("schema_version %v", doc["schema_version"])
	}
	// Stable: the same input gives the same bytes.
	var again bytes.Buffer
	if err := WriteJSON(&again, s); err != nil || !bytes.Equal(again.Bytes(), buf.Bytes()) {
		t.Error("JSON output is not deterministic")
	}
}

func TestCSV(t *testing.T) {
	s := incidentSummary(t)
	var buf bytes.Buffer
	if err := WriteSummary(&buf, s, FormatCSV); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rows[0], []string{"section", "key", "metric", "value"}) {
		t.Fatalf("header %v", rows[0])
	}
	find := func(section, key, metric string) string {
		for _, r := range rows {
			if r[0] == section && r[1] == key && r[2] == metric {
				return r[3]
			}
		}
		t.Errorf("no row %s,%s,%s", section, key, metric)
		return ""
	}
	if got := find("totals", "", "requests"); got != strconvI(s.Requests) {
		t.Errorf("requests %s, want %d", got, s.Requests)
	}
	if got := find("time_range", "", "first"); got != s.TimeRange.First.Format(time.RFC3339) {
		t.Errorf("first %s", got)
	}
	find("latency", "overall", "time_taken_p99")
	find("top_uris", s.Top.URIs.Items[0].Key, "count")
	find("findings", "1", "message")
	find("errors", "OriginConnectError", "count")
}

func strconvI(n int64) string { return strconv.FormatInt(n, 10) }

func TestTable(t *testing.T) {
	s := incidentSummary(t)
	s.Top.UserAgents.Items = append(s.Top.UserAgents.Items, Count{Key: "evil\tagent\n\x1b[31mred", Count: 1})
	var buf bytes.Buffer
	if err := WriteSummary(&buf, s, FormatTable); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"OVERVIEW", "FINDINGS", "[warning]", "RESULT TYPES (x-edge-result-type)", "STATUS CODES",
		"LATENCY (seconds)", "TOP URIS", "TOP EDGE LOCATIONS", "TLS VERSIONS", "ERRORS BY DETAILED TYPE", "OriginConnectError",
		`evil\x09agent\x0a\x1b[31mred`, "NOTES"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q", want)
		}
	}
	for _, l := range strings.Split(out, "\n") {
		if len([]rune(l)) > 200 {
			t.Errorf("line too long for a terminal: %.80q…", l)
		}
	}
	if err := WriteSummary(&buf, s, "xml"); err == nil {
		t.Error("format xml accepted")
	}
}

func TestClipAndWrap(t *testing.T) {
	if got := clip("abcdef", 3); got != "abc…" {
		t.Errorf("clip = %q", got)
	}
	if got := clip("a\x00\xffé", 10); got != `a\x00\xffé` {
		t.Errorf("clip = %q", got)
	}
	lines := wrap("one two three four five six", 9)
	if !reflect.DeepEqual(lines, []string{"one two", "three", "four five", "six"}) {
		t.Errorf("wrap = %q", lines)
	}
	if bytesText(1536) != "1.5 KiB" || bytesText(5) != "5 B" || bytesText(3<<30) != "3.0 GiB" {
		t.Errorf("bytesText: %s %s %s", bytesText(1536), bytesText(5), bytesText(3<<30))
	}
}
