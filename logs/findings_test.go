package logs

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgegate/edgegate/logs/internal/synth"
)

// TestFindingsExplainIncidents: the synthetic incidents are each explained,
// for the right host or client, inside the right window.
func TestFindingsExplainIncidents(t *testing.T) {
	const span = 6 * time.Hour
	path := writeFile(t, filepath.Join(t.TempDir(), "incidents.log"), synthLog(t, 40_000, span, true))
	_, s := analyze(t, Options{}, path)
	at := func(f float64) time.Time { return testStart().Add(time.Duration(f * float64(span))) }
	slack := 5 * time.Minute
	for _, want := range []struct {
		kind, host, words string
		from, to          float64
	}{
		{"origin_connect", synth.ConnectHost, "could not connect to or verify the origin for host api.example.com", synth.ConnectFrom, synth.ConnectTo},
		{"origin_read", synth.ReadHost, "In the 10 minutes before, origin fetches for shop.example.com took", synth.ReadFrom, synth.ReadTo},
		{"hit_ratio_drop", synth.DropHost, "The cache hit ratio for host www.example.com fell", synth.DropFrom, synth.DropTo},
		{"client_hammering", "", "Client " + synth.HammerClient + " requested " + synth.HammerURI, synth.HammerFrom, synth.HammerTo},
		{"status_4xx_spike", "", "4xx responses spiked", synth.ScanFrom, synth.ScanTo},
	} {
		var found *Finding
		for i, f := range s.Findings {
			if f.Kind == want.kind && strings.Contains(f.Message, want.words) && f.From != nil &&
				!f.From.Before(at(want.from).Add(-slack)) && !f.To.After(at(want.to).Add(slack)) && !f.To.Before(at(want.from)) {
				found = &s.Findings[i]
				break
			}
		}
		if found == nil {
			t.Errorf("no %s finding saying %q between %v and %v; findings:\n%s", want.kind, want.words,
				at(want.from), at(want.to), findingList(s.Findings))
			continue
		}
		if (want.host != "" && found.Host != want.host) || found.Requests == 0 {
			t.Errorf("%s: host %q, %d requests", want.kind, found.Host, found.Requests)
		}
		if !strings.Contains(found.Message, found.From.Format("15:04:05")) {
			t.Errorf("%s: the message does not give its window: %s", want.kind, found.Message)
		}
	}
	if s.Findings[0].Kind != "origin_connect" {
		t.Errorf("the origin that cannot be reached should come first:\n%s", findingList(s.Findings))
	}
}

// TestNoFindingsOnQuietTraffic: ordinary traffic raises nothing.
func TestNoFindingsOnQuietTraffic(t *testing.T) {
	path := writeFile(t, filepath.Join(t.TempDir(), "quiet.log"), synthLog(t, 40_000, 6*time.Hour, false))
	_, s := analyze(t, Options{}, path)
	if len(s.Findings) != 0 {
		t.Errorf("findings on quiet traffic:\n%s", findingList(s.Findings))
	}
}

func findingList(fs []Finding) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString("  [" + f.Kind + "] " + f.Message + "\n")
	}
	return b.String()
}

func TestSpanAndNumbers(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 9, 36, 0, 0, time.UTC)
	for _, tc := range []struct{ got, want string }{
		{span(t0, t0.Add(43*time.Minute)), "from 09:36:00 to 10:19:00 UTC on 2026-11-22"},
		{span(t0, t0), "at 2026-11-22 09:36:00 UTC"},
		{span(t0, t0.Add(24*time.Hour)), "from 2026-11-22 09:36:00 to 2026-11-23 09:36:00 UTC"},
		{num(1234567), "1,234,567"}, {num(-1000), "-1,000"}, {num(999), "999"},
		{percent(0.5), "50%"}, {percent(0.0999), "10%"}, {percent(0.0994), "9.9%"}, {percent(0.0123), "1.2%"}, {percent(0.9999), "99%"}, {percent(1), "100%"}, {percent(0.00001), "<0.1%"},
		{dur(12), "12 ms"}, {dur(5400), "5.4 s"}, {dur(125_000), "2m5s"},
		{words(10 * time.Minute), "10 minutes"}, {words(time.Hour), "60 minutes"}, {words(3 * time.Hour), "3 hours"},
		{words(time.Minute), "minute"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}
