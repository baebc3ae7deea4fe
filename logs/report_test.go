package logs

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"
)

// svgs returns the <svg> elements of a page.
func svgs(page string) []string {
	var out []string
	for {
		i := strings.Index(page, "<svg")
		if i < 0 {
			return out
		}
		j := strings.Index(page[i:], "</svg>")
		out = append(out, page[i:i+j+len("</svg>")])
		page = page[i+j:]
	}
}

func TestReportIsSelfContained(t *testing.T) {
	s := incidentSummary(t)
	evil := `<script>alert("x")</script>`
	s.Top.URIs.Items[0].Key = evil
	s.Errors[0].TopURIs[0].Key = evil
	s.StatusCodes = append(s.StatusCodes, Count{Key: evil, Count: 1})
	var buf bytes.Buffer
	if err := WriteReport(&buf, s, ReportOptions{Title: "Edge <report>"}); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	if !strings.HasPrefix(page, "<!DOCTYPE html>") || !strings.Contains(page, "<title>Edge &lt;report&gt;</title>") {
		t.Errorf("page starts %.100q", page)
	}
	// Nothing that would make a browser fetch or run anything.
	lower := strings.ToLower(page)
	for _, bad := range []string{"<script", "src=", "href=", "url(", "@import", "<link", "<iframe", "<img", "<object"} {
		if strings.Contains(lower, bad) {
			t.Errorf("the report contains %q", bad)
		}
	}
	charts := svgs(page)
	if len(charts) < 8 {
		t.Errorf("%d SVG charts, want the time charts, status, result types, protocol mixes and ciphers", len(charts))
	}
	for i, svg := range charts {
		dec := xml.NewDecoder(strings.NewReader(svg))
		for {
			_, err := dec.Token()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("SVG %d is not well-formed: %v\n%.300s", i, err, svg)
			}
		}
	}
	for _, f := range s.Findings {
		if !strings.Contains(page, string(codeSpans(f.Message))) {
			t.Errorf("finding missing from the report: %s", f.Message)
		}
	}
	for _, want := range []string{"Requests over time by result type", "Failed requests over time by detailed type",
		"Cache hit ratio over time", "Latency percentiles over time", "Status mix", "Top URIs", "Top Edge locations",
		"OriginConnectError"} {
		if !strings.Contains(page, want) {
			t.Errorf("the report lacks %q", want)
		}
	}
}

func TestReportOfNothing(t *testing.T) {
	an, err := Analyze(context.Background(), []Source{{Name: "-", Stdin: true}}, Options{Stdin: strings.NewReader("")})
	if err != nil {
		t.Fatal(err)
	}
	s := Summarize(an, 10)
	var buf bytes.Buffer
	if err := WriteReport(&buf, s, ReportOptions{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "Nothing stands out") || s.Requests != 0 {
		t.Errorf("empty report: %d requests", s.Requests)
	}
	for _, f := range []string{FormatTable, FormatJSON, FormatCSV} {
		if err := WriteSummary(io.Discard, s, f); err != nil {
			t.Errorf("%s of nothing: %v", f, err)
		}
	}
}
