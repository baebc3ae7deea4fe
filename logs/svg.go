package logs

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"strings"
	"time"
)

// The report's charts are SVG drawn here, by hand, so that the page needs
// no script and no network. Every text that comes from a log goes through
// html.EscapeString.

// Chart geometry, in SVG user units (the SVG scales to its container).
const (
	chartW    = 1160.0
	chartH    = 240.0
	padLeft   = 64.0
	padRight  = 16.0
	padTop    = 12.0
	padBottom = 30.0
	plotW     = chartW - padLeft - padRight
	plotH     = chartH - padTop - padBottom
	// zeroBand is the height kept under a logarithmic axis for zero values,
	// which a logarithm cannot place: they sit on a line labelled 0.
	zeroBand = 0.1 * plotH
)

// layer is one series of a chart.
type layer struct {
	name   string
	color  string
	values []float64 // one per bucket; NaN = no value (a gap in a line)
	dash   bool
}

// band is a shaded time window with a label (a finding).
type band struct {
	from, to time.Time
	label    string
	color    string
}

// timeAxis maps times to x.
type timeAxis struct {
	t0, t1 time.Time // start of the first bucket, end of the last
	step   time.Duration
	n      int // buckets
}

func newTimeAxis(tl Timeline) timeAxis {
	step := time.Duration(tl.BucketSeconds) * time.Second
	if step <= 0 {
		step = time.Minute
	}
	ax := timeAxis{step: step, n: len(tl.Buckets)}
	if ax.n > 0 {
		ax.t0 = tl.Buckets[0].Start
		ax.t1 = tl.Buckets[ax.n-1].Start.Add(step)
	}
	return ax
}

// x returns the x of a time.
func (ax timeAxis) x(t time.Time) float64 {
	span := ax.t1.Sub(ax.t0)
	if span <= 0 {
		return padLeft
	}
	return padLeft + plotW*float64(t.Sub(ax.t0))/float64(span)
}

// bucketX returns the x of the start and the end of a bucket: every chart
// draws a bucket over the whole time it covers, so that a finding's window
// (snapped to buckets) has the data of its time under it, and a single
// bucket is a bar rather than a hairline.
func (ax timeAxis) bucketX(b TimeBucket) (float64, float64) {
	return ax.x(b.Start), ax.x(b.Start.Add(ax.step))
}

// snap widens a band to the buckets it touches.
func (ax timeAxis) snap(from, to time.Time) (time.Time, time.Time) {
	w := int64(ax.step / time.Second)
	start := floorDiv(from.Unix(), w) * w
	end := (floorDiv(to.Unix(), w) + 1) * w
	return unix(start), unix(end)
}

// ticks returns round times for the axis labels, at most about a dozen:
// clock steps up to two weeks, whole months (and years) beyond.
func (ax timeAxis) ticks() []time.Time {
	span := ax.t1.Sub(ax.t0)
	steps := []time.Duration{time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute,
		30 * time.Minute, time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour,
		2 * 24 * time.Hour, 7 * 24 * time.Hour, 14 * 24 * time.Hour}
	var out []time.Time
	for _, step := range steps {
		if span/step <= 12 {
			for t := ax.t0.Truncate(step); !t.After(ax.t1); t = t.Add(step) {
				if !t.Before(ax.t0) {
					out = append(out, t)
				}
			}
			return out
		}
	}
	months := 1
	for _, m := range []int{1, 2, 3, 6, 12, 24, 60, 120} {
		months = m
		if span/(time.Duration(m)*30*24*time.Hour) <= 12 {
			break
		}
	}
	y, mo, _ := ax.t0.Date()
	t := time.Date(y, mo, 1, 0, 0, 0, 0, time.UTC)
	if months >= 12 {
		t = time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	for ; !t.After(ax.t1); t = t.AddDate(0, months, 0) {
		if !t.Before(ax.t0) {
			out = append(out, t)
		}
	}
	return out
}

// label formats a tick: the clock, with the date at midnight or on the
// first tick; the date alone for spans of days; month and year, or the
// year, for longer ones.
func (ax timeAxis) label(t time.Time, first bool) string {
	span := ax.t1.Sub(ax.t0)
	switch {
	case span > 3*365*24*time.Hour:
		return t.Format("2006")
	case span > 60*24*time.Hour:
		return t.Format("Jan 2006")
	case span > 3*24*time.Hour:
		return t.Format("Jan 2")
	case first || (t.Hour() == 0 && t.Minute() == 0):
		return t.Format("Jan 2 15:04")
	}
	return t.Format("15:04")
}

// yAxis is a linear or logarithmic value axis; a logarithmic one with
// zero set has a line for 0 under its lowest power of ten.
type yAxis struct {
	max      float64
	log      bool
	logMin   float64
	zero     bool
	format   func(float64) string
	tickVals []float64
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func linearAxis(maxV float64, format func(float64) string) yAxis {
	step := niceCeil(math.Max(maxV, 1e-9) / 4)
	top := step * math.Ceil(maxV*1.02/step)
	top = math.Max(top, step)
	ax := yAxis{max: top, format: format}
	for v := 0.0; v <= top*1.0001; v += step {
		ax.tickVals = append(ax.tickVals, v)
	}
	return ax
}

// ratioAxis is 0 to 100%.
func ratioAxis() yAxis {
	return yAxis{max: 1, format: percentLabel, tickVals: []float64{0, 0.25, 0.5, 0.75, 1}}
}

// logAxis spans powers of ten from lo (the least positive value) to at
// least hi, with a line for 0 under them when zero is set.
func logAxis(lo, hi float64, zero bool, format func(float64) string) yAxis {
	lo = math.Pow(10, math.Floor(math.Log10(math.Max(lo, 1e-3))))
	top := math.Pow(10, math.Ceil(math.Log10(math.Max(hi, lo*10))))
	ax := yAxis{max: top, log: true, logMin: lo, zero: zero, format: format}
	if zero {
		ax.tickVals = append(ax.tickVals, 0)
	}
	for v := lo; v <= top*1.0001; v *= 10 {
		ax.tickVals = append(ax.tickVals, v)
	}
	return ax
}

// y returns the y of a value.
func (ax yAxis) y(v float64) float64 {
	f := 0.0
	if ax.log {
		h := plotH
		if ax.zero {
			if v <= 0 {
				return padTop + plotH
			}
			h -= zeroBand
		}
		v = math.Max(v, ax.logMin)
		f = math.Log10(v/ax.logMin) / math.Log10(ax.max/ax.logMin)
		return padTop + h*(1-math.Min(math.Max(f, 0), 1))
	} else if ax.max > 0 {
		f = v / ax.max
	}
	return padTop + plotH*(1-math.Min(math.Max(f, 0), 1))
}

// frame draws the grid, the axes' labels and the finding bands.
func frame(b *strings.Builder, tx timeAxis, ya yAxis, bands []band) {
	fmt.Fprintf(b, `<svg viewBox="0 0 %.0f %.0f" role="img" xmlns="http://www.w3.org/2000/svg" class="chart">`, chartW, chartH)
	labelled := map[int]string{} // x of a label → its text, so that bands starting together share one label
	var xs []int
	for _, bd := range bands {
		from, to := tx.snap(bd.from, bd.to)
		x0, x1 := tx.x(from), tx.x(to)
		fmt.Fprintf(b, `<rect x="%.2f" y="%.1f" width="%.2f" height="%.1f" fill="%s" opacity="0.12" class="finding"/>`,
			x0, padTop, x1-x0, plotH, bd.color)
		key := int(x0 / 14) // labels closer than 14 units would overlap
		if _, ok := labelled[key]; !ok {
			xs = append(xs, key)
			labelled[key] = fmt.Sprintf("%.1f|", x0+3)
		}
		labelled[key] += bd.label + ","
	}
	for _, key := range xs {
		pos, text, _ := strings.Cut(strings.TrimSuffix(labelled[key], ","), "|")
		fmt.Fprintf(b, `<text x="%s" y="%.1f" class="band">%s</text>`, pos, padTop+11, html.EscapeString(text))
	}
	for _, v := range ya.tickVals {
		y := ya.y(v)
		fmt.Fprintf(b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" class="grid"/>`, padLeft, chartW-padRight, y, y)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" class="ylab">%s</text>`, padLeft-8, y+4, html.EscapeString(ya.format(v)))
	}
	for i, t := range tx.ticks() {
		x := tx.x(t)
		fmt.Fprintf(b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" class="tick"/>`, x, x, padTop+plotH, padTop+plotH+4)
		anchor := "middle"
		if x > chartW-padRight-40 {
			anchor = "end" // keep the last label inside the chart
		}
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" class="xlab" text-anchor="%s">%s</text>`, x, chartH-10, anchor,
			html.EscapeString(tx.label(t, i == 0)))
	}
	fmt.Fprintf(b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" class="axis"/>`, padLeft, chartW-padRight, padTop+plotH, padTop+plotH)
}

// hoverColumns adds an invisible column per bucket whose <title> the
// browser shows on hover.
func hoverColumns(b *strings.Builder, tx timeAxis, tl Timeline, tips []string) {
	if len(tips) != tx.n {
		return
	}
	for i, tip := range tips {
		if tip == "" {
			continue
		}
		x0, x1 := tx.bucketX(tl.Buckets[i])
		fmt.Fprintf(b, `<rect x="%.2f" y="%.1f" width="%.2f" height="%.1f" class="hover"><title>%s</title></rect>`,
			x0, padTop, x1-x0, plotH, html.EscapeString(tip))
	}
}

// lineChart draws each layer as steps: a bucket's value is a level across
// the time the bucket covers, joined to its neighbours; NaN values leave
// gaps.
func lineChart(tl Timeline, layers []layer, ya yAxis, bands []band, tips []string) template.HTML {
	tx := newTimeAxis(tl)
	if tx.n == 0 {
		return emptyChart()
	}
	var b strings.Builder
	frame(&b, tx, ya, bands)
	for _, l := range layers {
		var d strings.Builder
		prevEnd := math.NaN()
		points := 0
		for i, v := range l.values {
			if math.IsNaN(v) {
				prevEnd = math.NaN()
				continue
			}
			x0, x1 := tx.bucketX(tl.Buckets[i])
			y := ya.y(v)
			if prevEnd == x0 {
				fmt.Fprintf(&d, "L%.2f,%.2f ", x0, y)
			} else {
				fmt.Fprintf(&d, "M%.2f,%.2f ", x0, y)
			}
			fmt.Fprintf(&d, "L%.2f,%.2f ", x1, y)
			prevEnd = x1
			points++
		}
		dash := ""
		if l.dash {
			dash = ` stroke-dasharray="5 4"`
		}
		fmt.Fprintf(&b, `<path d="%s" fill="none" stroke="%s" stroke-width="1.8" stroke-linejoin="round"%s data-layer="%s"/>`,
			d.String(), l.color, dash, html.EscapeString(l.name))
		if points < 40 { // few points: mark them, a short step would not show
			for i, v := range l.values {
				if !math.IsNaN(v) {
					x0, x1 := tx.bucketX(tl.Buckets[i])
					fmt.Fprintf(&b, `<circle cx="%.2f" cy="%.2f" r="2.5" fill="%s"/>`, (x0+x1)/2, ya.y(v), l.color)
				}
			}
		}
	}
	hoverColumns(&b, tx, tl, tips)
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// stackedBars draws the layers stacked in a bar per bucket, each bar as
// wide as the time its bucket covers; tips, when given, are one per bucket.
func stackedBars(tl Timeline, layers []layer, bands []band, tips []string) template.HTML {
	tx := newTimeAxis(tl)
	n := tx.n
	if n == 0 {
		return emptyChart()
	}
	maxV := 0.0
	for i := range n {
		t := 0.0
		for _, l := range layers {
			t += l.values[i]
		}
		maxV = math.Max(maxV, t)
	}
	ya := linearAxis(math.Max(maxV, 4), compact)
	var b strings.Builder
	frame(&b, tx, ya, bands)
	for i, bk := range tl.Buckets {
		x0, x1 := tx.bucketX(bk)
		gap := math.Min(1, (x1-x0)*0.15)
		base := 0.0
		var tip []string
		for _, l := range layers {
			v := l.values[i]
			if v == 0 {
				continue
			}
			y0, y1 := ya.y(base), ya.y(base+v)
			fmt.Fprintf(&b, `<rect x="%.2f" y="%.2f" width="%.2f" height="%.2f" fill="%s" class="bar" data-layer="%s"/>`,
				x0+gap/2, y1, x1-x0-gap, y0-y1, l.color, html.EscapeString(l.name))
			base += v
			tip = append(tip, fmt.Sprintf("%s: %s", l.name, trimZero(v)))
		}
		if tips == nil && len(tip) > 0 {
			fmt.Fprintf(&b, `<rect x="%.2f" y="%.1f" width="%.2f" height="%.1f" class="hover"><title>%s</title></rect>`,
				x0, padTop, x1-x0, plotH, html.EscapeString(bk.Start.Format("2006-01-02 15:04")+" UTC\n"+strings.Join(tip, "\n")))
		}
	}
	hoverColumns(&b, tx, tl, tips)
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// hBars draws a horizontal bar per item, for mixes such as the status codes.
func hBars(items []Count, color func(string) string, limit int) template.HTML {
	if len(items) == 0 {
		return emptyChart()
	}
	if len(items) > limit {
		items = items[:limit]
	}
	const rowH, width = 26.0, 560.0
	h := rowH*float64(len(items)) + 8
	longest := 0
	for _, it := range items {
		longest = max(longest, len([]rune(clip(it.Key, 34))))
	}
	labelW := math.Min(270, math.Max(60, 8.2*float64(longest)+14)) // upper-case cipher names are wide
	maxV := 0.0
	for _, it := range items {
		maxV = math.Max(maxV, float64(it.Count))
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg viewBox="0 0 %.0f %.0f" role="img" xmlns="http://www.w3.org/2000/svg" class="hbars">`, width, h)
	for i, it := range items {
		y := 4 + rowH*float64(i)
		bw := (width - labelW - 130) * float64(it.Count) / math.Max(maxV, 1)
		fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" class="hlab">%s</text>`, labelW-10, y+rowH/2+4, html.EscapeString(clip(it.Key, 34)))
		fmt.Fprintf(&b, `<rect x="%.0f" y="%.1f" width="%.1f" height="%.1f" rx="3" fill="%s"><title>%s: %s</title></rect>`,
			labelW, y+4, math.Max(bw, 1.5), rowH-8, color(it.Key), html.EscapeString(it.Key), num(it.Count))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="hval">%s · %s</text>`, labelW+math.Max(bw, 1.5)+8, y+rowH/2+4,
			num(it.Count), html.EscapeString(percent(it.Share)))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// mixBar draws one 100% bar split by share, with a legend under it.
func mixBar(items []Count, color func(string) string) template.HTML {
	const width, h = 560.0, 34.0
	var b strings.Builder
	fmt.Fprintf(&b, `<svg viewBox="0 0 %.0f %.0f" role="img" xmlns="http://www.w3.org/2000/svg" class="mix">`, width, h)
	var total int64
	for _, it := range items {
		total += it.Count
	}
	x := 0.0
	for _, it := range items {
		w := width * float64(it.Count) / math.Max(float64(total), 1)
		fmt.Fprintf(&b, `<rect x="%.2f" y="0" width="%.2f" height="%.0f" fill="%s"><title>%s: %s (%s)</title></rect>`,
			x, w, h, color(it.Key), html.EscapeString(it.Key), num(it.Count), html.EscapeString(percent(it.Share)))
		if text := it.Key + " " + percent(it.Share); w > 7*float64(len(text))+12 {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="mixlab">%s %s</text>`, x+6, h/2+4, html.EscapeString(it.Key), html.EscapeString(percent(it.Share)))
		}
		x += w
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func emptyChart() template.HTML {
	return template.HTML(`<p class="empty">No timed requests to draw.</p>`)
}

// compact formats an axis value: 1.2k, 3M.
func compact(v float64) string {
	switch {
	case v >= 1e9:
		return trimZero(v/1e9) + "G"
	case v >= 1e6:
		return trimZero(v/1e6) + "M"
	case v >= 1e3:
		return trimZero(v/1e3) + "k"
	}
	return trimZero(v)
}

func trimZero(v float64) string {
	s := fmt.Sprintf("%.1f", v)
	return strings.TrimSuffix(s, ".0")
}

// seconds formats a latency axis value given in seconds.
func secondsLabel(v float64) string {
	switch {
	case v < 1:
		return trimZero(v*1000) + " ms"
	case v < 60:
		return trimZero(v) + " s"
	}
	return trimZero(v/60) + " min"
}

func percentLabel(v float64) string { return fmt.Sprintf("%.0f%%", v*100) }
