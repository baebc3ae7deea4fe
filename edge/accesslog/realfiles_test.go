package accesslog

import (
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestRealCloudFrontFiles reads excerpts of real CloudFront logs of several
// eras (see testdata/README.md), plain and gzipped, and checks every field.
func TestRealCloudFrontFiles(t *testing.T) {
	ms := time.Millisecond
	at := func(s string) time.Time {
		tm, err := time.Parse(time.DateTime, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	const (
		chrome78  = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/78.0.3904.108 Safari/537.36"
		chrome77  = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/77.0.3865.75 Safari/537.36"
		chrome100 = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/100.0.4896.127 Safari/537.36"
		headless  = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/100.0.4896.88 Safari/537.36"
		baidu     = "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)"
		cfHost    = "d111111abcdef8.cloudfront.net"
		ecdhe     = "ECDHE-RSA-AES128-GCM-SHA256"
	)
	// old fills the fields absent from files of older eras.
	old := func(r Record) Record {
		r.ContentLength, r.RangeStart, r.RangeEnd = -1, -1, -1
		return r
	}
	lax := Record{Time: at("2019-12-04 21:02:31"), Location: "LAX1", BytesSent: 392, ClientIP: "89.160.20.112",
		Method: "GET", Host: cfHost, URIStem: "/index.html", Status: 200, UserAgent: chrome78,
		ResultType: ResultHit, RequestID: "SOX4xwn4XV6Q4rgb7XiVGOHms_BGlTAC4KyHmureZmBNrjGdRLiNIQ==",
		HostHeader: cfHost, Protocol: "https", BytesReceived: 23, TimeTaken: ms, SSLProtocol: "TLSv1.2",
		SSLCipher: ecdhe, ResponseResultType: ResultHit, ProtocolVersion: "HTTP/2.0", ClientPort: 11040,
		TimeToFirstByte: ms, DetailedResultType: ResultHit, ContentType: "text/html", ContentLength: 78,
		RangeStart: -1, RangeEnd: -1}
	lax6 := lax
	lax6.ClientIP = "2a02:cf40:add:4002:91f2:a9b2:e09a:6fc6"
	lax6.RequestID = "k6WGMNkEzR5BEM_SaF47gjtX9zBDO2m349OY2an0QPEaUum1ZOLrow=="
	lax6.TimeTaken, lax6.TimeToFirstByte = 0, 0
	dns := Record{Time: at("2019-12-13 22:36:27"), Location: "SEA19-C1", BytesSent: 900, ClientIP: "89.160.20.112",
		Method: "GET", Host: cfHost, URIStem: "/favicon.ico", Status: 502, Referer: "http://www.example.com/",
		UserAgent: chrome78, ResultType: ResultError, RequestID: "1pkpNfBQ39sYMnjjUQjmH2w1wdJnbHYTbag21o_3OfcQgPzdL2RSSQ==",
		HostHeader: "www.example.com", Protocol: "http", BytesReceived: 675, TimeTaken: 102 * ms,
		ResponseResultType: ResultError, ProtocolVersion: "HTTP/1.1", ClientPort: 25260, TimeToFirstByte: 102 * ms,
		DetailedResultType: ResultOriginDnsError, ContentType: "text/html", ContentLength: 507, RangeStart: -1, RangeEnd: -1}
	curl := dns
	curl.Time, curl.Location, curl.URIStem, curl.Referer, curl.UserAgent = at("2019-12-13 22:37:02"), "SEA19-C2", "/", "", "curl/7.55.1"
	curl.RequestID, curl.BytesReceived, curl.TimeTaken, curl.ClientPort, curl.TimeToFirstByte =
		"kBkDzGnceVtWHqSCqBUqtA_cEs2T3tFUBbnBNkB9El_uVRhHgcZfcw==", 387, 103*ms, 12644, 103*ms
	hungUp := Record{Time: at("2022-04-19 12:29:36"), Location: "SEA19-C2", BytesSent: 10157, ClientIP: "81.2.69.143",
		Method: "POST", Host: cfHost, URIStem: "/getApplications", Status: 0, Referer: "https://test.com/global",
		UserAgent: chrome100, Query: "source=global", ResultType: ResultMiss,
		RequestID: "hrsHM5OM6sTIXUleC1G20YtDxMf5Cq0Jbz0pwhVpod2kgEn_W6akCQ==", HostHeader: "test.com", Protocol: "https",
		BytesReceived: 1057, TimeTaken: 238 * ms, SSLProtocol: "TLSv1.3", SSLCipher: "TLS_AES_128_GCM_SHA256",
		ResponseResultType: ResultMiss, ProtocolVersion: "HTTP/2.0", ClientPort: 4203, TimeToFirstByte: 238 * ms,
		DetailedResultType: ResultMiss, ContentType: "application/json;charset=UTF-8", ContentLength: -1, RangeStart: -1, RangeEnd: -1}
	xff := hungUp
	xff.Time, xff.Method, xff.Status, xff.UserAgent, xff.Query = at("2022-11-15 08:43:04"), "GET", 200, headless, ""
	xff.TimeTaken, xff.TimeToFirstByte, xff.ForwardedFor = 93*ms, 93*ms, "81.2.69.142,216.160.83.56"
	xff.SSLProtocol, xff.SSLCipher, xff.ProtocolVersion, xff.ClientPort, xff.ContentType = "TLSv1.2", ecdhe, "HTTP/1.1", 33359, "application/javascript"
	xffHost := xff
	xffHost.ForwardedFor = "localhost:8080"

	madras := Record{Time: at("2020-06-16 11:00:04"), Location: "MAA50-C2", BytesSent: 7486,
		ClientIP: "2409:4073:20a:8398:c85d:cc75:6c7a:be8b", Method: "GET", Host: "dej1k5scircsp.cloudfront.net",
		URIStem: "/css/style/style.css", Status: 200, Referer: "http://dej1k5scircsp.cloudfront.net/", UserAgent: chrome77,
		ResultType: ResultMiss, RequestID: "P9QcGJ-je6GoPCt-1KqOIgAHr6j05In8FFJK4E8DbZKHFyjp-dDfKw==",
		HostHeader: "dej1k5scircsp.cloudfront.net", Protocol: "http", BytesReceived: 376, TimeTaken: 102 * ms,
		ResponseResultType: ResultMiss, ProtocolVersion: "HTTP/1.1", ClientPort: 38404, TimeToFirstByte: 102 * ms,
		DetailedResultType: ResultMiss, ContentType: "text/css", ContentLength: 7057, RangeStart: -1, RangeEnd: -1}
	madras2 := madras
	madras2.Time, madras2.BytesSent, madras2.URIStem = at("2020-06-16 11:00:05"), 1133051, "/js/datatable_v1-10/dataTableTool.pkg.js"
	madras2.RequestID, madras2.BytesReceived, madras2.TimeTaken, madras2.TimeToFirstByte =
		"1UxBIVRPz1XhX9qrpg9zyQvUoTQwXQqZxvGdnfkO5vGeppNMqVRq2g==", 381, 940*ms, 89*ms
	madras2.ContentType, madras2.ContentLength = "application/javascript", 1132605

	iad := old(Record{Time: at("2016-06-10 18:41:39"), Location: "IAD53", BytesSent: 224281, ClientIP: "192.168.1.1",
		Method: "GET", Host: "d27enomp470abc.cloudfront.net", URIStem: "/content/sample/thing.pdf", Status: 200,
		Referer:    "https://example.com/",
		UserAgent:  "Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/51.0.2704.79 Safari/537.36",
		ResultType: ResultMiss, RequestID: "UGskZ6dUKY7b4C6Pt7wAWVsU2KO-vTRe-mR4r9H-WQMjhNvY6w1Xcg==",
		HostHeader: "host.example.com", Protocol: "https", BytesReceived: 883, TimeTaken: 36 * ms,
		SSLProtocol: "TLSv1.2", SSLCipher: ecdhe, ResponseResultType: ResultMiss})
	redacted := iad
	redacted.Time, redacted.ClientIP = at("2016-06-10 18:41:40"), "xxx.xxx.xxx.xxx"

	mac := old(Record{Time: at("2016-09-21 21:26:31"), Location: "IAD53", BytesSent: 1385, ClientIP: "108.171.135.164",
		Method: "GET", Host: "foo.cloudfront.net", URIStem: "/dashboard/", Status: 200,
		UserAgent:  "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_6) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/52.0.2743.116 Safari/537.36",
		ResultType: ResultMiss, RequestID: "9UkY7AyxVTkMICBtL9T1Qq0UicuzKrQOzJ4qsYY6KIIMiClg2poRcA==", HostHeader: "foo.com",
		Protocol: "https", BytesReceived: 419, TimeTaken: 510 * ms, SSLProtocol: "TLSv1.2", SSLCipher: ecdhe,
		ResponseResultType: ResultMiss, ProtocolVersion: "HTTP/1.1"})
	redirect := old(Record{Time: at("2017-07-12 22:25:50"), Location: "IND6", BytesSent: 556, ClientIP: "2607:f2f8:a8e0::2",
		Method: "GET", Host: "d25881aryus3ny.cloudfront.net", URIStem: "/", Status: 301, UserAgent: "Python-urllib/1.17",
		ResultType: ResultRedirect, RequestID: "tZXUNOuLdA-Yel6XE5T6F7nkTohRc1JFMB3JJjRUxt0VSqof06UR_w==",
		HostHeader: "blog.aarongorka.com", Protocol: "http", BytesReceived: 90, TimeTaken: ms,
		ResponseResultType: ResultRedirect, ProtocolVersion: "HTTP/1.0"})
	spider := redirect
	spider.Time, spider.Location, spider.BytesSent, spider.ClientIP, spider.URIStem, spider.UserAgent =
		at("2017-07-12 22:25:53"), "NRT51", 566, "123.125.71.109", "/robots.txt", baidu
	spider.RequestID, spider.BytesReceived, spider.TimeTaken, spider.ProtocolVersion =
		"zB2s7XD7M6EHz27GOi3-jL7QQZEEFEs9BcJqBlchdkhCOLQ-zy9CZg==", 237, 0, "HTTP/1.1"
	spiderTLS := spider
	spiderTLS.Time, spiderTLS.BytesSent, spiderTLS.ClientIP, spiderTLS.Status = at("2017-07-12 22:25:54"), 499, "123.125.71.52", 200
	spiderTLS.ResultType, spiderTLS.ResponseResultType = ResultMiss, ResultMiss
	spiderTLS.RequestID, spiderTLS.Protocol, spiderTLS.BytesReceived, spiderTLS.TimeTaken =
		"1fg7fZ1V_tdyYxtAuupGb8JBbR-81QIo6vimOXgNAhM8ieDwCJe7ZA==", "https", 195, 1187*ms
	spiderTLS.SSLProtocol, spiderTLS.SSLCipher = "TLSv1.2", ecdhe

	fra := old(Record{Time: at("2014-05-23 01:13:11"), Location: "FRA2", BytesSent: 182, ClientIP: "192.0.2.10",
		Method: "GET", Host: cfHost, URIStem: "/view/my/file.html", Status: 200, Referer: "www.displaymyfiles.com",
		UserAgent: "Mozilla/4.0 (compatible; MSIE 5.0b1; Mac_PowerPC)", Cookie: "zip=98101", ResultType: ResultRefreshHit,
		RequestID: "MRVMF7KydIvxMWfJIglgwHQwZsbG2IhRJ07sn9AkKUFSHS9EXAMPLE==", HostHeader: cfHost, Protocol: "http",
		BytesReceived: 0, TimeTaken: ms, ResponseResultType: ResultRefreshHit, ProtocolVersion: "HTTP/1.1",
		FLEStatus: "Processed", FLEEncryptedFields: "1"})
	lax2014 := old(Record{Time: at("2014-05-23 01:13:12"), Location: "LAX1", BytesSent: 2390282, ClientIP: "192.0.2.202",
		Method: "GET", Host: cfHost, URIStem: "/soundtrack/happy.mp3", Status: 304, Referer: "www.unknownsingers.com",
		UserAgent: "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 5.1)", Query: "a=b&c=d", Cookie: "zip=50158",
		ResultType: ResultHit, RequestID: "xGN7KWpVEmB9Dp7ctcVFQC4E-nrcOcEKS3QyAez--06dV7TEXAMPLE==", HostHeader: cfHost,
		Protocol: "http", TimeTaken: 2 * ms, ResponseResultType: ResultHit, ProtocolVersion: "HTTP/1.1"})

	type want struct {
		rec     *Record
		errLine int // LineError expected on this line instead
	}
	tests := []struct {
		file   string
		fields int
		want   []want
	}{
		{"cloudfront-2014-26fields.log", 26, []want{{rec: &fra}, {rec: &lax2014}}},
		{"cloudfront-2016-23fields.log", 23, []want{{rec: &iad}, {rec: &redacted}}},
		{"cloudfront-2017-24fields.log", 24, []want{{rec: &mac}, {rec: &redirect}, {rec: &spider}, {rec: &spiderTLS}}},
		{"cloudfront-2019-33fields.log", 33, []want{{rec: &lax}, {rec: &lax6}, {rec: &dns}, {rec: &curl},
			{rec: &hungUp}, {rec: &xff}, {rec: &xffHost}, {errLine: 10}}},
		{"cloudfront-2020-33fields.log", 33, []want{{rec: &madras}, {rec: &madras2}}},
	}
	for _, tt := range tests {
		plain := filepath.Join("testdata", tt.file)
		gz := gzipCopy(t, plain)
		for _, path := range []string{plain, gz} {
			t.Run(filepath.Base(path), func(t *testing.T) {
				rc, err := Open(path)
				if err != nil {
					t.Fatal(err)
				}
				defer rc.Close()
				rd := NewReader(rc, path)
				for i, w := range tt.want {
					rec, err := rd.Next()
					if w.rec == nil {
						var le *LineError
						if !errors.As(err, &le) || le.Line != w.errLine || le.File != path {
							t.Fatalf("record %d: %v, want a LineError on line %d", i, err, w.errLine)
						}
						continue
					}
					if err != nil {
						t.Fatalf("record %d: %v", i, err)
					}
					if d := diffRecords(*rec, *w.rec); d != "" {
						t.Errorf("record %d (line %d):%s", i, rd.Line(), d)
					}
					if n := len(rd.Fields()); n != tt.fields {
						t.Errorf("record %d: %d fields in force, want %d", i, n, tt.fields)
					}
				}
				if _, err := rd.Next(); !errors.Is(err, io.EOF) {
					t.Fatalf("after the records: %v, want io.EOF", err)
				}
			})
		}
	}
}

// gzipCopy writes a gzip copy of a testdata file into a temporary directory.
func gzipCopy(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), filepath.Base(path)+".gz")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(f)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}
