package logs

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"
)

// Formats of WriteSummary.
const (
	FormatTable = "table"
	FormatJSON  = "json"
	FormatCSV   = "csv"
)

// WriteSummary writes s to w in format (table, json or csv).
func WriteSummary(w io.Writer, s *Summary, format string) error {
	switch format {
	case FormatTable, "":
		return WriteTable(w, s)
	case FormatJSON:
		return WriteJSON(w, s)
	case FormatCSV:
		return WriteCSV(w, s)
	}
	return fmt.Errorf("format %q: use table, json or csv", format)
}

// WriteJSON writes s as indented JSON; the keys are documented on Summary.
func WriteJSON(w io.Writer, s *Summary) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		return fmt.Errorf("writing JSON summary: %w", err)
	}
	return nil
}

// WriteCSV writes s as rows of section,key,metric,value: one fact per row,
// so that the whole summary fits one table for spreadsheets and scripts.
// Sections and metrics use the JSON key names.
func WriteCSV(w io.Writer, s *Summary) error {
	cw := csv.NewWriter(w)
	row := func(section, key, metric string, value any) {
		var v string
		switch x := value.(type) {
		case float64:
			v = strconv.FormatFloat(x, 'f', -1, 64)
		case *time.Time:
			if x != nil {
				v = x.Format(time.RFC3339)
			}
		case time.Time:
			v = x.Format(time.RFC3339)
		default:
			v = fmt.Sprint(x)
		}
		_ = cw.Write([]string{section, key, metric, v}) // errors surface at Flush
	}
	row("section", "key", "metric", "value")
	row("input", "", "sources", strings.Join(s.Input.Sources, " "))
	row("input", "", "records", s.Input.Records)
	row("input", "", "matched", s.Input.Matched)
	row("input", "", "filtered", s.Input.Filtered)
	row("input", "", "malformed", s.Input.Malformed)
	row("input", "", "untimed", s.Input.Untimed)
	for _, p := range s.Input.Examples {
		row("malformed_examples", p.File+":"+strconv.Itoa(p.Line), "error", p.Message)
	}
	for _, e := range s.Input.UnreadSources {
		row("input_errors", "", "error", e)
	}
	row("filter", "", "filter", s.Filter)
	row("time_range", "", "first", s.TimeRange.First)
	row("time_range", "", "last", s.TimeRange.Last)
	row("time_range", "", "seconds", s.TimeRange.Seconds)
	if s.Freshness != "" {
		row("time_range", "", "freshness", s.Freshness)
	}
	row("totals", "", "requests", s.Requests)
	row("totals", "", "bytes_sent", s.BytesSent)
	row("totals", "", "bytes_received", s.BytesReceived)
	row("requests_per_minute", "", "mean", s.RequestsPerMinute.Mean)
	row("requests_per_minute", "", "peak", s.RequestsPerMinute.Peak)
	row("requests_per_minute", "", "peak_at", s.RequestsPerMinute.PeakAt)
	row("hit_ratio", "", "requests", s.HitRatio.Requests)
	row("hit_ratio", "", "bytes", s.HitRatio.Bytes)
	row("hit_ratio", "", "hits", s.HitRatio.Hits)
	row("hit_ratio", "", "misses", s.HitRatio.Misses)
	row("hit_ratio", "", "hit_bytes", s.HitRatio.HitBytes)
	row("hit_ratio", "", "miss_bytes", s.HitRatio.MissBytes)
	countRows := func(section string, cs []Count) {
		for _, c := range cs {
			row(section, c.Key, "count", c.Count)
			row(section, c.Key, "share", c.Share)
		}
	}
	countRows("result_types", s.ResultTypes)
	countRows("response_result_types", s.ResponseResultTypes)
	countRows("detailed_result_types", s.DetailedResultTypes)
	countRows("status_classes", s.StatusClasses)
	countRows("status_codes", s.StatusCodes)
	pct := func(section, key string, p LatencyPair) {
		for _, m := range []struct {
			name string
			p    Percentiles
		}{{"time_taken", p.TimeTaken}, {"time_to_first_byte", p.TimeToFirstByte}} {
			row(section, key, m.name+"_count", m.p.Count)
			row(section, key, m.name+"_mean", m.p.Mean)
			row(section, key, m.name+"_p50", m.p.P50)
			row(section, key, m.name+"_p90", m.p.P90)
			row(section, key, m.name+"_p99", m.p.P99)
			row(section, key, m.name+"_max", m.p.Max)
		}
	}
	pct("latency", "overall", s.Latency.Overall)
	for _, r := range s.Latency.ByResultType {
		pct("latency_by_result_type", r.ResultType, r.LatencyPair)
	}
	for _, t := range []struct {
		name string
		l    TopList
	}{{"top_hosts", s.Top.Hosts}, {"top_uris", s.Top.URIs}, {"top_clients", s.Top.Clients},
		{"top_user_agents", s.Top.UserAgents}, {"top_referers", s.Top.Referers}, {"top_edge_locations", s.Top.EdgeLocations}} {
		countRows(t.name, t.l.Items)
		row(t.name, "", "exact", t.l.Exact)
		row(t.name, "", "max_error", t.l.MaxError)
	}
	countRows("methods", s.Methods)
	countRows("protocols", s.Protocols)
	countRows("protocol_versions", s.ProtocolVersions)
	countRows("tls_versions", s.TLSVersions)
	countRows("ciphers", s.Ciphers)
	for _, e := range s.Errors {
		row("errors", e.Type, "count", e.Count)
		row("errors", e.Type, "first", e.First)
		row("errors", e.Type, "last", e.Last)
		row("errors", e.Type, "time_taken_p50", e.TimeTaken.P50)
		for _, st := range e.Statuses {
			row("errors", e.Type, "status_"+st.Key, st.Count)
		}
		for _, h := range e.Hosts {
			row("error_hosts", e.Type+" "+h.Key, "count", h.Count)
		}
		for _, u := range e.TopURIs {
			row("error_uris", e.Type+" "+u.Key, "count", u.Count)
		}
	}
	for i, f := range s.Findings {
		key := strconv.Itoa(i + 1)
		row("findings", key, "kind", f.Kind)
		row("findings", key, "severity", f.Severity)
		row("findings", key, "host", f.Host)
		row("findings", key, "from", f.From)
		row("findings", key, "to", f.To)
		row("findings", key, "requests", f.Requests)
		row("findings", key, "message", f.Message)
	}
	for _, n := range s.Notes {
		row("notes", "", "note", n)
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("writing CSV summary: %w", err)
	}
	return nil
}

// tableWidth is the width the table format wraps its sentences at.
const tableWidth = 100

// WriteTable writes s for a terminal: an overview, the findings, then
// aligned tables.
func WriteTable(w io.Writer, s *Summary) error {
	bw := bufio.NewWriter(w)
	p := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }
	tw := func() *tabwriter.Writer { return tabwriter.NewWriter(bw, 0, 0, 2, ' ', 0) }

	p("OVERVIEW\n")
	t := tw()
	sources := fmt.Sprintf("%d files", len(s.Input.Sources))
	if len(s.Input.Sources) == 1 {
		sources = s.Input.Sources[0]
	}
	fmt.Fprintf(t, "  input\t%s (%s records, %s malformed", sources, num(s.Input.Records), num(s.Input.Malformed))
	if s.Filter != "" {
		fmt.Fprintf(t, ", %s filtered out by %s", num(s.Input.Filtered), s.Filter)
	}
	fmt.Fprintf(t, ")\n")
	if s.TimeRange.First != nil {
		fmt.Fprintf(t, "  time range\t%s to %s UTC (%s)\n", s.TimeRange.First.Format("2006-01-02 15:04:05"),
			s.TimeRange.Last.Format("2006-01-02 15:04:05"), spanText(time.Duration(s.TimeRange.Seconds)*time.Second))
	}
	if s.Freshness != "" {
		fmt.Fprintf(t, "  newest line\t%s\n", s.Freshness)
	}
	fmt.Fprintf(t, "  requests\t%s, %s sent, %s received\n", num(s.Requests), bytesText(s.BytesSent), bytesText(s.BytesReceived))
	if s.RequestsPerMinute.PeakAt != nil {
		fmt.Fprintf(t, "  per minute\t%s mean, %s peak at %s UTC\n", rate(s.RequestsPerMinute.Mean), rate(s.RequestsPerMinute.Peak),
			s.RequestsPerMinute.PeakAt.Format("2006-01-02 15:04"))
	}
	fmt.Fprintf(t, "  hit ratio\t%s of requests, %s of bytes (%s, %s)\n", hitRatioText(s.HitRatio.Requests, s.HitRatio.Hits+s.HitRatio.Misses),
		hitRatioText(s.HitRatio.Bytes, s.HitRatio.HitBytes+s.HitRatio.MissBytes), Quantity(s.HitRatio.Hits, "hit"), Quantity(s.HitRatio.Misses, "miss"))
	t.Flush()

	p("\nFINDINGS\n")
	if len(s.Findings) == 0 {
		p("  Nothing stands out: no origin error bursts, hit ratio drops, hammering clients or 4xx spikes.\n")
	}
	for _, f := range s.Findings {
		lines := wrap(f.Message, tableWidth-14)
		for i, l := range lines {
			if i == 0 {
				p("  %-10s  %s\n", "["+f.Severity+"]", l)
			} else {
				p("  %-10s  %s\n", "", l)
			}
		}
	}

	section := func(title string, cs []Count, n int) {
		if len(cs) == 0 {
			return
		}
		p("\n%s\n", title)
		t := tw()
		for i, c := range cs {
			if n > 0 && i >= n {
				fmt.Fprintf(t, "  …\t%d more\t\n", len(cs)-n)
				break
			}
			fmt.Fprintf(t, "  %s\t%s\t%s\n", clip(c.Key, 80), num(c.Count), percent(c.Share))
		}
		t.Flush()
	}
	section("RESULT TYPES (x-edge-result-type)", s.ResultTypes, 0)
	section("RESPONSE RESULT TYPES (x-edge-response-result-type)", s.ResponseResultTypes, 0)
	section("DETAILED RESULT TYPES (x-edge-detailed-result-type)", s.DetailedResultTypes, 0)
	section("STATUS CLASSES", s.StatusClasses, 0)
	section("STATUS CODES", s.StatusCodes, 20)

	p("\nLATENCY (seconds)\n")
	t = tw()
	fmt.Fprintf(t, "  \trequests\ttime-taken p50\tp90\tp99\tmax\tfirst-byte p50\tp90\tp99\tmax\n")
	latRow := func(name string, lp LatencyPair) {
		tt, fb := lp.TimeTaken, lp.TimeToFirstByte
		fmt.Fprintf(t, "  %s\t%s\t%.3f\t%.3f\t%.3f\t%.3f\t", clip(name, 30), num(tt.Count), tt.P50, tt.P90, tt.P99, tt.Max)
		if fb.Count == 0 {
			fmt.Fprintf(t, "-\t-\t-\t-\n")
		} else {
			fmt.Fprintf(t, "%.3f\t%.3f\t%.3f\t%.3f\n", fb.P50, fb.P90, fb.P99, fb.Max)
		}
	}
	latRow("all", s.Latency.Overall)
	for _, r := range s.Latency.ByResultType {
		latRow(r.ResultType, r.LatencyPair)
	}
	t.Flush()

	top := func(title string, l TopList) {
		if len(l.Items) == 0 {
			return
		}
		if !l.Exact {
			title += fmt.Sprintf(" (approximate: counts may be low by up to %s)", num(l.MaxError))
		}
		section(title, l.Items, 0)
	}
	top("TOP HOSTS", s.Top.Hosts)
	top("TOP URIS", s.Top.URIs)
	top("TOP CLIENTS", s.Top.Clients)
	top("TOP USER AGENTS", s.Top.UserAgents)
	top("TOP REFERERS", s.Top.Referers)
	top("TOP EDGE LOCATIONS", s.Top.EdgeLocations)
	section("METHODS", s.Methods, 10)
	section("PROTOCOLS", s.Protocols, 10)
	section("PROTOCOL VERSIONS", s.ProtocolVersions, 10)
	section("TLS VERSIONS", s.TLSVersions, 10)
	section("CIPHERS", s.Ciphers, 10)

	if len(s.Errors) > 0 {
		p("\nERRORS BY DETAILED TYPE\n")
		t = tw()
		fmt.Fprintf(t, "  type\trequests\tfirst (UTC)\tlast (UTC)\tstatus\ttop URIs\n")
		for _, e := range s.Errors {
			first, last := "-", "-"
			if e.First != nil {
				first, last = e.First.Format("2006-01-02 15:04:05"), e.Last.Format("2006-01-02 15:04:05")
			}
			var st, uris []string
			for i, c := range e.Statuses {
				if i == 3 {
					break
				}
				st = append(st, c.Key)
			}
			for i, c := range e.TopURIs {
				if i == 3 {
					break
				}
				uris = append(uris, fmt.Sprintf("%s (%s)", clip(c.Key, 40), num(c.Count)))
			}
			fmt.Fprintf(t, "  %s\t%s\t%s\t%s\t%s\t%s\n", clip(e.Type, 32), num(e.Count), first, last, strings.Join(st, ","), strings.Join(uris, ", "))
		}
		t.Flush()
	}

	if s.Input.Malformed > 0 {
		p("\nMALFORMED LINES (%s, the first %d shown)\n", num(s.Input.Malformed), len(s.Input.Examples))
		for _, e := range s.Input.Examples {
			p("  %s:%d: %s\n", e.File, e.Line, clip(e.Message, 200))
		}
	}
	if len(s.Input.UnreadSources) > 0 {
		p("\nINPUT ERRORS\n")
		for _, e := range s.Input.UnreadSources {
			p("  %s\n", e)
		}
	}
	if len(s.Notes) > 0 {
		p("\nNOTES\n")
		for _, n := range s.Notes {
			for i, l := range wrap(n, tableWidth-4) {
				if i == 0 {
					p("  - %s\n", l)
				} else {
					p("    %s\n", l)
				}
			}
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing summary: %w", err)
	}
	return nil
}

// clip makes a value safe and short for a terminal: control bytes are
// escaped (values are decoded, so a User-Agent may hold a tab or newline)
// and long values cut with an ellipsis.
func clip(s string, n int) string {
	var b strings.Builder
	count := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if count >= n {
			b.WriteString("…")
			break
		}
		switch {
		case r == utf8.RuneError && size == 1, r < 0x20, r == 0x7f:
			fmt.Fprintf(&b, "\\x%02x", s[i])
		default:
			b.WriteString(s[i : i+size])
		}
		count++
		i += size
	}
	return b.String()
}

// wrap breaks text into lines of at most width runes at spaces.
func wrap(text string, width int) []string {
	var lines []string
	var cur strings.Builder
	for _, word := range strings.Fields(text) {
		if cur.Len() > 0 && utf8.RuneCountInString(cur.String())+1+utf8.RuneCountInString(word) > width {
			lines = append(lines, cur.String())
			cur.Reset()
		}
		if cur.Len() > 0 {
			cur.WriteByte(' ')
		}
		cur.WriteString(word)
	}
	if cur.Len() > 0 {
		lines = append(lines, cur.String())
	}
	return lines
}

// bytesText formats a byte count with binary units.
func bytesText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// spanText formats the length of the time range.
func spanText(d time.Duration) string {
	const day = 24 * time.Hour
	if d >= 3*day {
		return fmt.Sprintf("%.1f days", float64(d)/float64(day))
	}
	return d.String()
}

// liveWithin is how recent the newest line must be for FreshnessNote to
// take the logs for live ones.
const liveWithin = 15 * time.Minute

// FreshnessNote says, for logs whose newest line is recent (an edge still
// writing them), when that line is from and how old it was at now, and that the last moments
// may not have reached the files yet: the edge writes a line within
// edge.logs.flush_interval of its request. It is empty for older logs.
func FreshnessNote(s *Summary, now time.Time) string {
	if s.TimeRange.Last == nil {
		return ""
	}
	age := now.Sub(*s.TimeRange.Last)
	if age < -time.Minute || age > liveWithin {
		return ""
	}
	return fmt.Sprintf("%s UTC, %s before this summary; an edge writes each line within its "+
		"edge.logs.flush_interval (1s by default) of the request, so the last moments may be missing",
		s.TimeRange.Last.Format("15:04:05"), max(age, 0).Round(time.Second))
}

// Quantity is n and the noun, in the plural unless n is 1: "1 miss",
// "2 misses", "1,024 requests".
func Quantity(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	switch {
	case strings.HasSuffix(noun, "s"), strings.HasSuffix(noun, "x"), strings.HasSuffix(noun, "ch"), strings.HasSuffix(noun, "sh"):
		noun += "es"
	default:
		noun += "s"
	}
	return num(n) + " " + noun
}

// hitRatioText is a hit ratio for people: "n/a" when nothing cacheable was
// requested (of which the ratio is 0 in JSON and CSV).
func hitRatioText(r float64, cacheable int64) string {
	if cacheable == 0 {
		return "n/a"
	}
	return percent(r)
}

// rate formats a per-minute rate.
func rate(f float64) string {
	if f >= 100 {
		return num(int64(f + 0.5))
	}
	return strconv.FormatFloat(f, 'f', 1, 64)
}
