package accesslog

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a goroutine-safe settable clock for WriterConfig.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{t: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// blank returns a reset record with the given time.
func blank(t time.Time) Record {
	var r Record
	r.Reset()
	r.Time = t
	return r
}

// typical is a representative HTTPS hit, used by benchmarks and tests.
func typical(t time.Time) Record {
	return Record{
		Time:               t,
		Location:           "NRT57",
		BytesSent:          18734,
		ClientIP:           "203.0.113.7",
		Method:             "GET",
		Host:               "www.example.com",
		URIStem:            "/assets/app.3f9a1c.js",
		Status:             200,
		Referer:            "https://www.example.com/products/shoes?color=red",
		UserAgent:          "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
		Query:              "v=3&utm_source=news%20letter",
		Cookie:             "",
		ResultType:         ResultHit,
		RequestID:          "mZq2Tq1bVb0f7m3QmWQ2v5h9n5G4kP7q1r8sX0yZ2aA==",
		HostHeader:         "www.example.com",
		Protocol:           "https",
		BytesReceived:      412,
		TimeTaken:          12 * time.Millisecond,
		ForwardedFor:       "",
		SSLProtocol:        "TLSv1.3",
		SSLCipher:          "TLS_AES_128_GCM_SHA256",
		ResponseResultType: ResultHit,
		ProtocolVersion:    "HTTP/2.0",
		ClientPort:         53211,
		TimeToFirstByte:    3 * time.Millisecond,
		DetailedResultType: ResultHit,
		ContentType:        "application/javascript",
		ContentLength:      18210,
		RangeStart:         -1,
		RangeEnd:           -1,
	}
}

// sampleRecords returns varied records with awkward values; times are whole
// seconds in UTC and durations whole milliseconds, which is what the format
// keeps, so they must survive a round trip unchanged.
func sampleRecords(base time.Time) []Record {
	var rs []Record
	add := func(r Record) { rs = append(rs, r) }

	add(typical(base))

	r := typical(base.Add(time.Second))
	r.UserAgent = "Mozilla/5.0 \"quoted\" 'single' <tag> {x} |pipe| \\back^caret~tilde [b] `tick` #hash 100% done\ttab\nnewline\r é 日本 \x7f"
	r.Query = "a=b%20c&d=e f&g=%ZZ&h=%"
	r.Cookie = `session=abc; theme=dark; x="y z"; pct=50%25`
	r.Referer = "https://example.org/search?q=caf%C3%A9 & more"
	add(r)

	r = blank(base.Add(2 * time.Second)) // viewer hung up: status 000, nearly empty
	r.Location = "NRT57"
	r.ClientIP = "198.51.100.9"
	r.Method = "POST"
	r.Host = "www.example.com"
	r.URIStem = "/upload"
	r.ResultType = ResultError
	r.DetailedResultType = ResultClientHungUpRequest
	r.ResponseResultType = ResultError
	r.Protocol = "https"
	r.ProtocolVersion = "HTTP/1.1"
	add(r)

	r = typical(base.Add(3 * time.Second)) // range request
	r.Status = 206
	r.ContentLength = 1024
	r.RangeStart = 0
	r.RangeEnd = 1023
	r.ResultType, r.ResponseResultType, r.DetailedResultType = ResultMiss, ResultMiss, ResultMiss
	add(r)

	r = typical(base.Add(4 * time.Second)) // values that are exactly "-"
	r.Referer = "-"
	r.UserAgent = "-"
	r.Cookie = "--"
	add(r)

	r = typical(base.Add(5 * time.Second)) // path with spaces, %, unicode; several forwarded addresses
	r.URIStem = "/a b/%41/ü/[x]"
	r.ForwardedFor = "203.0.113.1, 198.51.100.2,192.0.2.3"
	r.ClientIP = "xxx.xxx.xxx.xxx"
	r.Cookie = "bin=\xff\xfe\x00end"
	add(r)

	r = typical(base.Add(6 * time.Second)) // big numbers, long durations, an encoded-looking UA
	r.BytesSent = 1 << 40
	r.BytesReceived = 1<<31 + 7
	r.TimeTaken = 3*time.Hour + 1*time.Millisecond
	r.TimeToFirstByte = 1234 * time.Millisecond
	r.UserAgent = "curl%2F8.5.0"
	r.ContentLength = 0
	add(r)

	r = typical(base.Add(7 * time.Second)) // plain HTTP redirect
	r.Protocol = "http"
	r.Status = 301
	r.SSLProtocol, r.SSLCipher = "", ""
	r.ResultType, r.ResponseResultType, r.DetailedResultType = ResultRedirect, ResultRedirect, ResultRedirect
	r.ContentType = "text/html; charset=utf-8"
	add(r)

	r = typical(base.Add(8 * time.Second)) // origin failure
	r.Status = 502
	r.ResultType, r.ResponseResultType, r.DetailedResultType = ResultError, ResultError, ResultOriginConnectError
	r.Protocol = "wss"
	r.FLEStatus = "Processed"
	r.FLEEncryptedFields = "1"
	add(r)

	r = typical(base.Add(9 * time.Second)) // unknown result type passes through
	r.ResultType = ResultType("SomethingNew")
	add(r)
	return rs
}

// readFile reads every record of a file opened with Open; it fails the test
// on any error.
func readFile(t *testing.T, path string) []Record {
	t.Helper()
	rc, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var out []Record
	rd := NewReader(rc, path)
	for {
		rec, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, *rec)
	}
}

// logFiles lists the files a Writer left in dir, sorted (period order).
func logFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, filepath.Join(dir, e.Name()))
	}
	sort.Strings(names)
	return names
}

// contentOf returns a file's decompressed content.
func contentOf(t *testing.T, path string) string {
	t.Helper()
	rc, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return string(b)
}

// diffRecords describes field differences between two records.
func diffRecords(got, want Record) string {
	var b strings.Builder
	check := func(name string, g, w any) {
		if g != w {
			fmt.Fprintf(&b, "\n\t%s: got %#v, want %#v", name, g, w)
		}
	}
	check("Time", got.Time.String(), want.Time.UTC().Truncate(time.Second).String())
	check("Location", got.Location, want.Location)
	check("BytesSent", got.BytesSent, want.BytesSent)
	check("ClientIP", got.ClientIP, want.ClientIP)
	check("Method", got.Method, want.Method)
	check("Host", got.Host, want.Host)
	check("URIStem", got.URIStem, want.URIStem)
	check("Status", got.Status, want.Status)
	check("Referer", got.Referer, want.Referer)
	check("UserAgent", got.UserAgent, want.UserAgent)
	check("Query", got.Query, want.Query)
	check("Cookie", got.Cookie, want.Cookie)
	check("ResultType", got.ResultType, want.ResultType)
	check("RequestID", got.RequestID, want.RequestID)
	check("HostHeader", got.HostHeader, want.HostHeader)
	check("Protocol", got.Protocol, want.Protocol)
	check("BytesReceived", got.BytesReceived, want.BytesReceived)
	check("TimeTaken", got.TimeTaken, want.TimeTaken)
	check("ForwardedFor", got.ForwardedFor, want.ForwardedFor)
	check("SSLProtocol", got.SSLProtocol, want.SSLProtocol)
	check("SSLCipher", got.SSLCipher, want.SSLCipher)
	check("ResponseResultType", got.ResponseResultType, want.ResponseResultType)
	check("ProtocolVersion", got.ProtocolVersion, want.ProtocolVersion)
	check("FLEStatus", got.FLEStatus, want.FLEStatus)
	check("FLEEncryptedFields", got.FLEEncryptedFields, want.FLEEncryptedFields)
	check("ClientPort", got.ClientPort, want.ClientPort)
	check("TimeToFirstByte", got.TimeToFirstByte, want.TimeToFirstByte)
	check("DetailedResultType", got.DetailedResultType, want.DetailedResultType)
	check("ContentType", got.ContentType, want.ContentType)
	check("ContentLength", got.ContentLength, want.ContentLength)
	check("RangeStart", got.RangeStart, want.RangeStart)
	check("RangeEnd", got.RangeEnd, want.RangeEnd)
	return b.String()
}
