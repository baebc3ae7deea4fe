// Package synth generates realistic edge traffic as standard log records,
// for the logs package's tests and benchmarks and for `make bench-logs`.
// The traffic is deterministic for a seed: Zipf-distributed URIs and
// clients, a realistic mix of result types, statuses, protocols and
// latencies, and optionally a set of incidents that `edgegate logs` must
// explain (see Incidents).
package synth

import (
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/edgegate/edgegate/edge/accesslog"
)

// Config describes the traffic.
type Config struct {
	Seed     uint64        // the same seed gives the same records
	Start    time.Time     // time of the first record (UTC)
	Duration time.Duration // span over which the records are spread
	URIs     int           // distinct URIs; 0 means 20,000
	Clients  int           // distinct clients; 0 means 50,000
	// Incidents adds the events listed in Incidents.
	Incidents bool
}

// The incidents, as fractions of Duration, and who they concern.
const (
	// ConnectHost's origin cannot be reached between ConnectFrom and
	// ConnectTo: its misses fail with OriginConnectError (502).
	ConnectHost            = "api.example.com"
	ConnectFrom, ConnectTo = 0.40, 0.43
	// DropHost's hit ratio falls to about 10% between DropFrom and DropTo.
	DropHost         = "www.example.com"
	DropFrom, DropTo = 0.60, 0.65
	// ScanClient probes for well-known weak spots ten times a second
	// between ScanFrom and ScanTo: a 4xx spike.
	ScanClient       = "198.51.100.23"
	ScanFrom, ScanTo = 0.70, 0.71
	// ReadHost's origin slows down from SlowFrom, then breaks responses
	// midway (OriginReadError) between ReadFrom and ReadTo.
	ReadHost         = "shop.example.com"
	SlowFrom         = 0.75
	ReadFrom, ReadTo = 0.80, 0.81
	// HammerClient posts to HammerURI twice a second between HammerFrom
	// and HammerTo.
	HammerClient         = "203.0.113.66"
	HammerURI            = "/api/v1/login"
	HammerFrom, HammerTo = 0.20, 0.30
)

const (
	hammerEvery     = 500 * time.Millisecond
	scanEvery       = 100 * time.Millisecond
	connectShare    = 0.35 // share of requests that go to ConnectHost during its incident
	defaultURIs     = 20_000
	defaultClients  = 50_000
	defaultDuration = time.Hour
)

// tables are the values requests are drawn from.
type tables struct {
	hosts, locations, agents, referers, ciphers13, ciphers12, scanPaths []string
}

func newTables() tables {
	return tables{
		hosts: []string{"www.example.com", "www.example.com", "www.example.com", "static.example.com",
			"static.example.com", "shop.example.com", "api.example.com"},
		locations: []string{"NRT57", "NRT57", "NRT12-C2", "KIX50", "FRA56-P1", "IAD89-C1", "SEA19-C2", "LHR61",
			"SIN2-C1", "GRU3"},
		agents: []string{
			"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
			"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
			"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
			"Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
			"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
			"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
			"curl/8.5.0",
			"okhttp/4.12.0",
			"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
			"python-requests/2.32.3",
		},
		referers: []string{"", "", "https://www.example.com/", "https://www.example.com/products/shoes?color=red",
			"https://www.google.com/", "https://t.co/xyz", "https://shop.example.com/cart"},
		ciphers13: []string{"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"},
		ciphers12: []string{"ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384"},
		scanPaths: []string{"/wp-login.php", "/.env", "/admin/config.php", "/.git/config", "/phpmyadmin/index.php", "/xmlrpc.php"},
	}
}

// Generator produces records.
type Generator struct {
	cfg     Config
	rng     *rand.Rand
	uriZipf *rand.Zipf
	cliZipf *rand.Zipf
	n       int64 // records generated
	total   int64 // records planned, to place them in time
	rec     accesslog.Record
	tab     tables

	nextHammer, nextScan time.Time
	pending              []accesslog.Record
}

// New returns a generator that spreads total records over cfg.Duration.
func New(cfg Config, total int64) *Generator {
	if cfg.URIs <= 0 {
		cfg.URIs = defaultURIs
	}
	if cfg.Clients <= 0 {
		cfg.Clients = defaultClients
	}
	if cfg.Duration <= 0 {
		cfg.Duration = defaultDuration
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))
	g := &Generator{
		cfg:     cfg,
		rng:     rng,
		uriZipf: rand.NewZipf(rng, 1.1, 4, uint64(cfg.URIs-1)),
		cliZipf: rand.NewZipf(rng, 1.05, 8, uint64(cfg.Clients-1)),
		total:   max(total, 1),
		tab:     newTables(),
	}
	g.nextHammer = cfg.Start.Add(time.Duration(HammerFrom * float64(cfg.Duration)))
	g.nextScan = cfg.Start.Add(time.Duration(ScanFrom * float64(cfg.Duration)))
	return g
}

// frac returns where t falls in the configured span, 0..1.
func (g *Generator) frac(t time.Time) float64 {
	return float64(t.Sub(g.cfg.Start)) / float64(g.cfg.Duration)
}

// More reports whether records remain of the total planned (the ordinary
// ones, and the incidents' own until then).
func (g *Generator) More() bool { return g.n < g.total || len(g.pending) > 0 }

// Next returns the next record; it is valid until the next call. Past the
// planned total it goes on at the same pace.
func (g *Generator) Next() *accesslog.Record {
	if len(g.pending) > 0 {
		g.rec = g.pending[0]
		g.pending = g.pending[1:]
		return &g.rec
	}
	t := g.cfg.Start.Add(time.Duration(float64(g.cfg.Duration) * float64(g.n) / float64(g.total))).Truncate(time.Second)
	g.n++
	if g.cfg.Incidents {
		for !g.nextHammer.After(t) && g.frac(g.nextHammer) < HammerTo {
			r := g.base(g.nextHammer.Truncate(time.Second))
			r.ClientIP, r.URIStem, r.Method, r.HostHeader, r.Host = HammerClient, HammerURI, "POST", "api.example.com", "E2QWRUHAPOMQZL"
			r.ResultType, r.ResponseResultType, r.DetailedResultType, r.Status = accesslog.ResultMiss, accesslog.ResultMiss, accesslog.ResultMiss, 401
			r.UserAgent = "python-requests/2.32.3"
			g.pending = append(g.pending, r)
			g.nextHammer = g.nextHammer.Add(hammerEvery)
		}
		for !g.nextScan.After(t) && g.frac(g.nextScan) < ScanTo {
			r := g.base(g.nextScan.Truncate(time.Second))
			r.ClientIP, r.URIStem, r.Status = ScanClient, g.tab.scanPaths[g.rng.IntN(len(g.tab.scanPaths))], 404
			r.UserAgent = "Mozilla/5.0 zgrab/0.x"
			r.ResultType, r.ResponseResultType, r.DetailedResultType = accesslog.ResultError, accesslog.ResultError, accesslog.ResultError
			g.pending = append(g.pending, r)
			g.nextScan = g.nextScan.Add(scanEvery)
		}
	}
	g.rec = g.base(t)
	return &g.rec
}

// base builds an ordinary request at t, with the incidents applied.
func (g *Generator) base(t time.Time) accesslog.Record {
	rng := g.rng
	r := accesslog.Record{Time: t, ContentLength: -1, RangeStart: -1, RangeEnd: -1}
	r.Location = g.tab.locations[rng.IntN(len(g.tab.locations))]
	host := g.tab.hosts[rng.IntN(len(g.tab.hosts))]
	f := g.frac(t)
	if g.cfg.Incidents && f >= ConnectFrom && f < ConnectTo && rng.Float64() < connectShare {
		host = ConnectHost
	}
	r.HostHeader = host
	r.Host = "E" + fmt.Sprintf("%X", len(host)*7919) + "EXAMPLE"
	c := g.cliZipf.Uint64()
	h := (c + 1) * 2654435761 // scatter the Zipf ranks over the address space
	if c%17 == 3 {
		r.ClientIP = fmt.Sprintf("2001:db8:%x:%x::%x", h>>16&0xffff, h&0xffff, c%251+1)
	} else {
		r.ClientIP = fmt.Sprintf("%d.%d.%d.%d", 1+(h>>24)%222, h>>16&255, h>>8&255, h&254|1)
	}
	r.ClientPort = 1024 + rng.IntN(64000)
	u := g.uriZipf.Uint64()
	switch u % 5 {
	case 0:
		r.URIStem, r.ContentType = fmt.Sprintf("/assets/app.%06x.js", u*2654435761%0xffffff), "application/javascript"
	case 1:
		r.URIStem, r.ContentType = fmt.Sprintf("/images/p/%d.webp", u), "image/webp"
	case 2:
		r.URIStem, r.ContentType = fmt.Sprintf("/products/%d", u), "text/html; charset=utf-8"
	case 3:
		r.URIStem, r.ContentType = fmt.Sprintf("/api/v1/items/%d", u), "application/json"
		r.Query = fmt.Sprintf("fields=name,price&page=%d", u%7)
	default:
		r.URIStem, r.ContentType = fmt.Sprintf("/static/css/site.%d.css", u%97), "text/css"
	}
	if u == 0 {
		r.URIStem, r.ContentType = "/", "text/html; charset=utf-8"
	}
	r.Method = "GET"
	if rng.IntN(50) == 0 {
		r.Method = "POST"
	}
	r.UserAgent = g.tab.agents[rng.IntN(len(g.tab.agents))]
	r.Referer = g.tab.referers[rng.IntN(len(g.tab.referers))]
	r.RequestID = fmt.Sprintf("%016x%016xEXAMPLE==", rng.Uint64(), rng.Uint64())
	r.BytesReceived = int64(250 + rng.IntN(600))
	switch p := rng.IntN(100); {
	case p < 3:
		r.Protocol, r.ProtocolVersion = "http", "HTTP/1.1"
	case p < 70:
		r.Protocol, r.ProtocolVersion, r.SSLProtocol = "https", "HTTP/2.0", "TLSv1.3"
		r.SSLCipher = g.tab.ciphers13[rng.IntN(len(g.tab.ciphers13))]
	default:
		r.Protocol, r.ProtocolVersion, r.SSLProtocol = "https", "HTTP/1.1", "TLSv1.2"
		r.SSLCipher = g.tab.ciphers12[rng.IntN(len(g.tab.ciphers12))]
	}

	// Cache outcome: popular objects hit more.
	hitP := 0.93 - 0.3*float64(min(u, 5000))/5000
	if r.Method != "GET" || u%5 == 3 {
		hitP = 0.05
	}
	if g.cfg.Incidents && host == DropHost && f >= DropFrom && f < DropTo {
		hitP = 0.1
	}
	size := int64(800 + (u*7919)%180_000)
	origin := time.Duration(20+rng.IntN(120)) * time.Millisecond
	if g.cfg.Incidents && host == ReadHost && f >= SlowFrom && f < ReadTo {
		origin += time.Duration((f-SlowFrom)/(ReadTo-SlowFrom)*4000) * time.Millisecond
	}
	switch x := rng.Float64(); {
	case r.Protocol == "http" && rng.IntN(2) == 0:
		r.Status, r.ResultType = 301, accesslog.ResultRedirect
		r.ContentType, size = "text/html", 183
		r.TimeToFirstByte = time.Millisecond
	case x < hitP*0.97:
		r.Status, r.ResultType = 200, accesslog.ResultHit
		r.TimeToFirstByte = time.Duration(1+rng.IntN(4)) * time.Millisecond
	case x < hitP:
		r.Status, r.ResultType = 304, accesslog.ResultRefreshHit
		size = 0
		r.TimeToFirstByte = origin
	default:
		r.Status, r.ResultType = 200, accesslog.ResultMiss
		r.TimeToFirstByte = origin
		if rng.IntN(40) == 0 {
			r.Status, size = 404, 512
		}
	}
	r.ResponseResultType, r.DetailedResultType = r.ResultType, r.ResultType
	if r.ResultType == accesslog.ResultMiss && g.cfg.Incidents {
		switch {
		case host == ConnectHost && f >= ConnectFrom && f < ConnectTo:
			r.Status, r.ResultType, r.ResponseResultType = 502, accesslog.ResultError, accesslog.ResultError
			r.DetailedResultType, size, r.ContentType = accesslog.ResultOriginConnectError, 512, "text/html"
			r.TimeToFirstByte = time.Duration(5+rng.IntN(40)) * time.Millisecond
		case host == ReadHost && f >= ReadFrom && f < ReadTo && rng.IntN(3) > 0:
			r.ResultType, r.DetailedResultType = accesslog.ResultError, accesslog.ResultOriginReadError
			size /= 3
		}
	}
	if rng.IntN(400) == 0 && r.ResultType != accesslog.ResultRedirect {
		r.Status, r.ResultType, r.DetailedResultType = 0, accesslog.ResultError, accesslog.ResultClientHungUpRequest
		size = 0
	}
	r.ContentLength = size
	r.BytesSent = size + 350
	r.TimeTaken = r.TimeToFirstByte + time.Duration(size/200_000)*time.Millisecond + time.Duration(rng.IntN(3))*time.Millisecond
	if r.DetailedResultType == accesslog.ResultOriginReadError {
		r.TimeTaken += 2 * time.Second
	}
	return r
}

// Write writes a complete log file (header and lines) of the given number
// of ordinary records to w, plus those of the incidents.
func Write(w io.Writer, cfg Config, records int64) error {
	g := New(cfg, records)
	buf := accesslog.AppendHeader(make([]byte, 0, 1<<16))
	for g.More() {
		buf = accesslog.AppendRecord(buf, g.Next())
		if len(buf) > 60<<10 {
			if _, err := w.Write(buf); err != nil {
				return fmt.Errorf("synthetic log: %w", err)
			}
			buf = buf[:0]
		}
	}
	if _, err := w.Write(buf); err != nil {
		return fmt.Errorf("synthetic log: %w", err)
	}
	return nil
}

// WriteSize writes a log file of about size bytes (at least one record) and
// returns the number of records written. It measures the average line of a
// sample first, so that the records spread over about cfg.Duration and the
// incidents fall where Incidents says.
func WriteSize(w io.Writer, cfg Config, size int64) (int64, error) {
	plain := cfg
	plain.Incidents = false // incidents add records of their own; measure ordinary lines
	sample := New(plain, 1000)
	var sampleBytes int
	var buf []byte
	for range 1000 {
		buf = accesslog.AppendRecord(buf[:0], sample.Next())
		sampleBytes += len(buf)
	}
	g := New(cfg, max(size*1000/int64(sampleBytes), 1))
	buf = accesslog.AppendHeader(make([]byte, 0, 1<<16))
	var written, n int64
	for written+int64(len(buf)) < size || n == 0 {
		buf = accesslog.AppendRecord(buf, g.Next())
		n++
		if len(buf) > 60<<10 {
			if _, err := w.Write(buf); err != nil {
				return n, fmt.Errorf("synthetic log: %w", err)
			}
			written += int64(len(buf))
			buf = buf[:0]
		}
	}
	if _, err := w.Write(buf); err != nil {
		return n, fmt.Errorf("synthetic log: %w", err)
	}
	return n, nil
}
