package logs

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/edgegate/edgegate/edge/accesslog"
	"github.com/edgegate/edgegate/logs/internal/synth"
)

// analyze reads args with opt and summarises them with top-10 lists.
func analyze(t *testing.T, opt Options, args ...string) (*Analysis, *Summary) {
	t.Helper()
	sources, _, err := Expand(args)
	if err != nil {
		t.Fatal(err)
	}
	an, err := Analyze(context.Background(), sources, opt)
	if err != nil {
		t.Fatal(err)
	}
	return an, Summarize(an, 10)
}

func writeFile(t *testing.T, path string, data []byte) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func gzipped(t *testing.T, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testStart is where synthetic logs begin.
func testStart() time.Time { return time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC) }

// synthLog returns a synthetic log file of n ordinary records (plus the
// incidents' own, when asked) spread over d.
func synthLog(t testing.TB, n int64, d time.Duration, incidents bool) []byte {
	t.Helper()
	var b bytes.Buffer
	cfg := synth.Config{Seed: 7, Start: testStart(), Duration: d, URIs: 400, Clients: 300, Incidents: incidents}
	if err := synth.Write(&b, cfg, n); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// sequentialProblems reads data with one accesslog.Reader from start to
// end: the ground truth for the line numbers of malformed lines.
func sequentialProblems(t *testing.T, name string, data []byte) (records int, problems []Problem) {
	t.Helper()
	rd := accesslog.NewReader(bytes.NewReader(data), name)
	for {
		_, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return records, problems
		}
		var le *accesslog.LineError
		if errors.As(err, &le) {
			problems = append(problems, Problem{File: name, Line: le.Line, Message: le.Err.Error()})
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		records++
	}
}
