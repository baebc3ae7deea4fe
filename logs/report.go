package logs

import (
	"cmp"
	"fmt"
	"html/template"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// ReportOptions configures WriteReport.
type ReportOptions struct {
	// Title heads the page; empty means one made from the inputs.
	Title string
}

// WriteReport writes s as one self-contained HTML page: inline CSS and SVG
// charts, no script, nothing fetched from the network, so that it can be
// mailed or archived and opened anywhere.
func WriteReport(w io.Writer, s *Summary, opt ReportOptions) error {
	tmpl, err := template.New("report").Funcs(template.FuncMap{
		"num":     num,
		"percent": percent,
		"quantity": func(n any, noun string) string {
			switch n := n.(type) {
			case int:
				return Quantity(int64(n), noun)
			case int64:
				return Quantity(n, noun)
			}
			return fmt.Sprint(n, " ", noun)
		},
		"clip": clip,
		"secs": func(v float64) string { return secondsText(v) },
		"when": func(t *time.Time) string {
			if t == nil {
				return "-"
			}
			return t.Format("2006-01-02 15:04:05")
		},
	}).Parse(reportTemplate)
	if err != nil {
		return fmt.Errorf("report template: %w", err)
	}
	if err := tmpl.Execute(w, newReportData(s, opt)); err != nil {
		return fmt.Errorf("writing report: %w", err)
	}
	return nil
}

// Colours: result types keep the same colour in every chart.
func resultColor(name string) string {
	switch name {
	case "Hit":
		return "#1f9d55"
	case "RefreshHit":
		return "#74c69d"
	case "Miss":
		return "#f4a524"
	case "Error":
		return "#d92d20"
	case "Redirect":
		return "#5b8def"
	case "OriginShieldHit":
		return "#2d6a4f"
	}
	if strings.HasPrefix(name, "Origin") {
		return "#b42318"
	}
	if strings.HasPrefix(name, "Client") {
		return "#98a2b3"
	}
	return "#7a5af8"
}

func statusColor(key string) string {
	switch {
	case strings.HasPrefix(key, "2"):
		return "#1f9d55"
	case strings.HasPrefix(key, "3"):
		return "#5b8def"
	case strings.HasPrefix(key, "4"):
		return "#f4a524"
	case strings.HasPrefix(key, "5"):
		return "#d92d20"
	}
	return "#98a2b3"
}

// errorPalette colours error types by rank.
func errorPalette(i int) string {
	p := []string{"#d92d20", "#7a5af8", "#f79009", "#b42318", "#ee46bc", "#667085", "#0e9384", "#854a0e", "#2e90fa"}
	return p[i%len(p)]
}

func plainColor(string) string { return "#2e90fa" }

// mixColor cycles through a calm palette for protocol mixes.
func mixColor() func(string) string {
	p := []string{"#2e90fa", "#7a5af8", "#0e9384", "#f79009", "#ee46bc", "#98a2b3"}
	seen := map[string]string{}
	return func(k string) string {
		if k == emptyLabel {
			return "#d0d5dd"
		}
		if c, ok := seen[k]; ok {
			return c
		}
		c := p[len(seen)%len(p)]
		seen[k] = c
		return c
	}
}

type kpi struct {
	Label, Value, Sub, Tone string
}

type findingView struct {
	Number   int
	Severity string
	Kind     string
	Host     string
	Message  template.HTML
}

type legendItem struct {
	Name, Color string
	Dash        bool
}

type chartView struct {
	Title, Caption string
	Legend         []legendItem
	SVG            template.HTML
}

type topRow struct {
	Key, Full, Count, Share string
	Width                   float64
}

type topView struct {
	Title string
	Note  string
	Rows  []topRow
}

type mixView struct {
	Title string
	SVG   template.HTML
}

type reportData struct {
	Title, Subtitle string
	S               *Summary
	KPIs            []kpi
	Findings        []findingView
	Charts          []chartView
	StatusMix       template.HTML
	StatusCodes     template.HTML
	ResultTypes     template.HTML
	Detailed        template.HTML
	Mixes           []mixView
	Ciphers         template.HTML
	Tops            []topView
	Approximate     bool
}

func newReportData(s *Summary, opt ReportOptions) *reportData {
	d := &reportData{S: s, Title: opt.Title}
	if d.Title == "" {
		d.Title = "Edge traffic report"
	}
	var sub []string
	switch len(s.Input.Sources) {
	case 1:
		sub = append(sub, s.Input.Sources[0])
	default:
		sub = append(sub, fmt.Sprintf("%d log files", len(s.Input.Sources)))
	}
	if s.TimeRange.First != nil {
		sub = append(sub, span(*s.TimeRange.First, *s.TimeRange.Last))
	}
	if s.Filter != "" {
		sub = append(sub, "filtered: "+s.Filter)
	}
	d.Subtitle = strings.Join(sub, " · ")

	var errs int64
	for _, e := range s.Errors {
		errs += e.Count
	}
	errTone := "good"
	if errs > 0 && float64(errs) >= 0.01*float64(max(s.Requests, 1)) {
		errTone = "bad"
	}
	d.KPIs = []kpi{
		{Label: "Requests", Value: num(s.Requests), Sub: fmt.Sprintf("%s read, %s malformed", Quantity(s.Input.Records, "record"), num(s.Input.Malformed))},
		{Label: "Requests per minute", Value: rate(s.RequestsPerMinute.Mean), Sub: "peak " + rate(s.RequestsPerMinute.Peak)},
		{Label: "Bytes sent", Value: bytesText(s.BytesSent), Sub: bytesText(s.BytesReceived) + " received"},
		{Label: "Cache hit ratio", Value: hitRatioText(s.HitRatio.Requests, s.HitRatio.Hits+s.HitRatio.Misses),
			Sub: hitRatioText(s.HitRatio.Bytes, s.HitRatio.HitBytes+s.HitRatio.MissBytes) + " of bytes"},
		{Label: "Failed requests", Value: num(errs), Sub: percent(float64(errs)/float64(max(s.Requests, 1))) + " of requests", Tone: errTone},
		{Label: "Time taken p50 / p99", Value: secondsText(s.Latency.Overall.TimeTaken.P50),
			Sub: "p99 " + secondsText(s.Latency.Overall.TimeTaken.P99) + ", max " + secondsText(s.Latency.Overall.TimeTaken.Max)},
	}

	var bands []band
	for i, f := range s.Findings {
		fv := findingView{Number: i + 1, Severity: f.Severity, Kind: strings.ReplaceAll(f.Kind, "_", " "), Host: f.Host,
			Message: codeSpans(f.Message)}
		if f.From != nil {
			color := map[string]string{SeverityCritical: "#d92d20", SeverityWarning: "#f79009"}[f.Severity]
			if color == "" {
				color = "#2e90fa"
			}
			bands = append(bands, band{from: *f.From, to: *f.To, label: fmt.Sprint(i + 1), color: color})
		}
		d.Findings = append(d.Findings, fv)
	}

	d.Charts = timeCharts(s, bands)

	d.StatusMix = mixBar(s.StatusClasses, statusColor)
	d.StatusCodes = hBars(s.StatusCodes, statusColor, 12)
	d.ResultTypes = hBars(s.ResultTypes, resultColor, 10)
	d.Detailed = hBars(s.DetailedResultTypes, resultColor, 12)
	d.Mixes = []mixView{
		{"Protocols", mixBar(s.Protocols, mixColor())},
		{"HTTP versions", mixBar(s.ProtocolVersions, mixColor())},
		{"TLS versions", mixBar(s.TLSVersions, mixColor())},
		{"Methods", mixBar(s.Methods, mixColor())},
	}
	d.Ciphers = hBars(s.Ciphers, plainColor, 8)

	for _, t := range []struct {
		title string
		l     TopList
	}{{"Hosts", s.Top.Hosts}, {"URIs", s.Top.URIs}, {"Clients", s.Top.Clients}, {"User agents", s.Top.UserAgents},
		{"Referers", s.Top.Referers}, {"Edge locations", s.Top.EdgeLocations}} {
		tv := topView{Title: t.title}
		if !t.l.Exact {
			tv.Note = fmt.Sprintf("approximate: counts may be low by up to %s", num(t.l.MaxError))
			d.Approximate = true
		}
		maxC := int64(1)
		for _, it := range t.l.Items {
			maxC = max(maxC, it.Count)
		}
		for _, it := range t.l.Items {
			tv.Rows = append(tv.Rows, topRow{Key: clip(it.Key, 64), Full: clip(it.Key, 2000), Count: num(it.Count),
				Share: percent(it.Share), Width: math.Round(1000*float64(it.Count)/float64(maxC)) / 10})
		}
		d.Tops = append(d.Tops, tv)
	}
	return d
}

// timeCharts builds the charts over time.
func timeCharts(s *Summary, bands []band) []chartView {
	tl := s.Timeline
	n := len(tl.Buckets)
	if n == 0 {
		return nil
	}
	width := time.Duration(tl.BucketSeconds) * time.Second

	// Requests by result type, per minute of each bucket's width: a
	// bucket the logs cover only in part shows what it holds, never a rate
	// extrapolated from a few seconds, so the chart agrees with the
	// summary's peak.
	perMinute := float64(tl.BucketSeconds) / 60
	order := []string{"Hit", "RefreshHit", "Miss", "Redirect", "Other", "Error"}
	var reqLayers []layer
	var reqLegend []legendItem
	for _, name := range order {
		l := layer{name: name, color: resultColor(name), values: make([]float64, n)}
		any := false
		for i, b := range tl.Buckets {
			l.values[i] = float64(b.ByResult[name]) / perMinute
			any = any || b.ByResult[name] > 0
		}
		if name == "Other" {
			l.color = "#7a5af8"
		}
		if any {
			reqLayers = append(reqLayers, l)
			reqLegend = append(reqLegend, legendItem{Name: name, Color: l.color})
		}
	}
	tips := make([]string, n)
	for i, b := range tl.Buckets {
		var parts []string
		for _, name := range order {
			if c := b.ByResult[name]; c > 0 {
				parts = append(parts, fmt.Sprintf("%s %s", name, num(c)))
			}
		}
		tip := fmt.Sprintf("%s UTC\n%s", b.Start.Format("2006-01-02 15:04"), Quantity(b.Requests, "request"))
		if len(parts) > 0 {
			tip += ": " + strings.Join(parts, ", ")
		}
		if b.HitRatio != nil {
			tip += fmt.Sprintf("\nhit ratio %s", percent(*b.HitRatio))
		}
		if b.Requests > 0 {
			tip += fmt.Sprintf("\ntime taken p50 %s, p99 %s", secondsText(b.P50), secondsText(b.P99))
		}
		tips[i] = tip
	}
	caption := "x-edge-result-type, requests per minute"
	if width != time.Minute {
		caption += " in " + strings.Replace(strings.TrimSuffix(words(width), "s"), " ", "-", 1) + " buckets"
	}
	if len(bands) > 0 {
		caption += "; shaded: the windows of the numbered findings"
	}
	charts := []chartView{{Title: "Requests over time by result type", Caption: caption, Legend: reqLegend,
		SVG: stackedBars(tl, reqLayers, bands, tips)}}

	// Errors by detailed type.
	totals := map[string]int64{}
	for _, b := range tl.Buckets {
		for k, c := range b.ErrorsByType {
			totals[k] += c
		}
	}
	types := make([]string, 0, len(totals))
	for k := range totals {
		types = append(types, k)
	}
	slices.SortFunc(types, func(x, y string) int {
		if c := cmp.Compare(totals[y], totals[x]); c != 0 {
			return c
		}
		return cmp.Compare(x, y)
	})
	var errLayers []layer
	var errLegend []legendItem
	for i, typ := range types {
		l := layer{name: typ, color: errorPalette(i), values: make([]float64, n)}
		for j, b := range tl.Buckets {
			l.values[j] = float64(b.ErrorsByType[typ])
		}
		errLayers = append(errLayers, l)
		errLegend = append(errLegend, legendItem{Name: fmt.Sprintf("%s (%s)", typ, num(totals[typ])), Color: l.color})
	}
	if len(errLayers) > 0 {
		charts = append(charts, chartView{Title: "Failed requests over time by detailed type",
			Caption: "x-edge-detailed-result-type of failed requests", Legend: errLegend, SVG: stackedBars(tl, errLayers, bands, nil)})
	}

	// Hit ratio.
	hr := layer{name: "by requests", color: "#1f9d55", values: make([]float64, n)}
	br := layer{name: "by bytes", color: "#5b8def", values: make([]float64, n), dash: true}
	for i, b := range tl.Buckets {
		hr.values[i], br.values[i] = math.NaN(), math.NaN()
		if b.HitRatio != nil {
			hr.values[i], br.values[i] = *b.HitRatio, *b.ByteHitRatio
		}
	}
	ya := ratioAxis()
	charts = append(charts, chartView{Title: "Cache hit ratio over time",
		Caption: "Hit and RefreshHit against Miss, cacheable requests only",
		Legend:  []legendItem{{Name: "by requests", Color: hr.color}, {Name: "by bytes", Color: br.color, Dash: true}},
		SVG:     lineChart(tl, []layer{hr, br}, ya, bands, nil)})

	// Latency percentiles, on a log scale so that p50 and p99 both show.
	p50 := layer{name: "p50", color: "#1f9d55", values: make([]float64, n)}
	p90 := layer{name: "p90", color: "#f79009", values: make([]float64, n)}
	p99 := layer{name: "p99", color: "#d92d20", values: make([]float64, n)}
	lo, hi, zero := math.Inf(1), 0.0, false
	for i, b := range tl.Buckets {
		p50.values[i], p90.values[i], p99.values[i] = math.NaN(), math.NaN(), math.NaN()
		if b.Requests == 0 {
			continue
		}
		p50.values[i], p90.values[i], p99.values[i] = b.P50, b.P90, b.P99
		for _, v := range []float64{b.P50, b.P90, b.P99} {
			if v > 0 {
				lo = math.Min(lo, v)
			} else {
				zero = true
			}
		}
		hi = math.Max(hi, b.P99)
	}
	if math.IsInf(lo, 1) {
		lo = 0.001
	}
	charts = append(charts, chartView{Title: "Latency percentiles over time",
		Caption: "time-taken, seconds, logarithmic scale (0 on its own line under it)",
		Legend:  []legendItem{{Name: "p50", Color: p50.color}, {Name: "p90", Color: p90.color}, {Name: "p99", Color: p99.color}},
		SVG:     lineChart(tl, []layer{p50, p90, p99}, logAxis(lo, hi, zero, secondsLabel), bands, nil)})
	return charts
}

// codeSpans escapes a message and shows its `commands` as code.
func codeSpans(msg string) template.HTML {
	var b strings.Builder
	for i, part := range strings.Split(msg, "`") {
		if i%2 == 1 {
			b.WriteString("<code>" + template.HTMLEscapeString(part) + "</code>")
		} else {
			b.WriteString(template.HTMLEscapeString(part))
		}
	}
	return template.HTML(b.String())
}

// secondsText formats a latency in seconds for people.
func secondsText(v float64) string {
	switch {
	case v == 0:
		return "0 ms"
	case v < 1:
		return fmt.Sprintf("%.0f ms", v*1000)
	case v < 60:
		return fmt.Sprintf("%.2f s", v)
	}
	return (time.Duration(v * float64(time.Second))).Round(time.Second).String()
}
