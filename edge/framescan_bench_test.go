package edge

import (
	"bytes"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// BenchmarkFrameScanResponse is the cost the refusal scan adds to one
// typical HTTP/2 response (HEADERS with the edge's headers, one DATA
// frame), HPACK decoding included.
func BenchmarkFrameScanResponse(b *testing.B) {
	var hb, out bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	fr := http2.NewFramer(&out, nil)
	var first []byte
	for i := range 2 { // the second block uses the dynamic table, as most do
		hb.Reset()
		for _, f := range [][2]string{{":status", "200"}, {"content-type", "text/html"}, {"cache-control", "public, max-age=60"},
			{"x-cache", "Hit from edgegate"}, {"via", "1.1 NRT57 (edgegate)"}, {"x-edge-location", "NRT57"}, {"x-edge-request-id", "0123456789abcdef"}, {"content-length", "5"}} {
			_ = enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
		}
		if i == 1 {
			first = append(first, out.Bytes()...)
			out.Reset()
		}
		_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: uint32(2*i + 1), BlockFragment: hb.Bytes(), EndHeaders: true})
		_ = fr.WriteData(uint32(2*i+1), true, []byte("hello"))
	}
	frames := out.Bytes()
	var f frameScan
	f.feed(first) // the first response fills the table
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		f.feed(frames)
	}
	if f.broken {
		b.Fatal("the scan gave up decoding")
	}
	if len(f.refused) != 0 {
		b.Fatalf("the edge's own responses counted as refusals: %v", f.refused)
	}
}

// BenchmarkHeaderScanBrowserRequest is the framing scan's cost for a
// request as a browser sends it (about 700 bytes of header fields).
func BenchmarkHeaderScanBrowserRequest(b *testing.B) {
	req := []byte("GET /assets/app.js?v=3 HTTP/1.1\r\nHost: www.example.test\r\n" +
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36\r\n" +
		"Accept: */*\r\nAccept-Encoding: gzip, deflate, br, zstd\r\nAccept-Language: en-US,en;q=0.9\r\n" +
		"Referer: https://www.example.test/\r\nSec-Fetch-Dest: script\r\nSec-Fetch-Mode: no-cors\r\nSec-Fetch-Site: same-origin\r\n" +
		"Cookie: session=0123456789abcdef0123456789abcdef; prefs=dark; _ga=GA1.1.123456789.1700000000\r\n" +
		"sec-ch-ua: \"Chromium\";v=\"131\", \"Not_A Brand\";v=\"24\"\r\nsec-ch-ua-mobile: ?0\r\nsec-ch-ua-platform: \"Linux\"\r\n\r\n")
	b.SetBytes(int64(len(req)))
	b.ReportAllocs()
	var h headerScan
	for b.Loop() {
		h = headerScan{name: h.name[:0]} // as handlerDone resets it
		h.feed(req)
	}
}
