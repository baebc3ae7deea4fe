package edge

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
)

// assetOrigin serves text assets (with Range and ETag, as a static file
// server does) and counts the fetches of each path and Accept-Encoding.
type assetOrigin struct {
	mu      sync.Mutex
	fetches map[string]int
	files   map[string]asset
}

type asset struct {
	ctype, encoding, cacheControl string
	body                          []byte
}

func (o *assetOrigin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	o.fetches[r.URL.Path+" "+r.Header.Get("Accept-Encoding")]++
	o.mu.Unlock()
	a, ok := o.files[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", a.ctype)
	cc := "max-age=300"
	if a.cacheControl != "" {
		cc = a.cacheControl
	}
	w.Header().Set("Cache-Control", cc)
	w.Header().Set("ETag", `"v1"`)
	if a.encoding != "" {
		w.Header().Set("Content-Encoding", a.encoding)
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}

func (o *assetOrigin) count(key string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.fetches[key]
}

// script is a compressible JavaScript file of some 40 KB.
func script() []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < 40_000; i++ {
		fmt.Fprintf(&b, "function handler%d(event) { return fetch('/api/items/%d').then(r => r.json()); }\n", i, i)
	}
	return b.Bytes()
}

func decode(t *testing.T, coding string, body []byte) []byte {
	t.Helper()
	var r io.Reader
	switch coding {
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	case "br":
		r = brotli.NewReader(bytes.NewReader(body))
	case "zstd":
		zr, err := zstd.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		r = zr
	case "":
		return body
	default:
		t.Fatalf("unexpected coding %q", coding)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("decoding %s: %v", coding, err)
	}
	return out
}

func TestCompressionAtTheEdge(t *testing.T) {
	js := script()
	pre := &bytes.Buffer{}
	zw := gzip.NewWriter(pre)
	zw.Write(js)
	zw.Close()
	origin := &assetOrigin{fetches: map[string]int{}, files: map[string]asset{
		"/app.js":    {ctype: "text/javascript; charset=utf-8", body: js},
		"/small.css": {ctype: "text/css", body: js[:500]},
		"/photo.png": {ctype: "image/png", body: js},
		"/pre.js":    {ctype: "text/javascript", encoding: "gzip", body: pre.Bytes()},
		"/stale.js":  {ctype: "text/javascript", cacheControl: "max-age=0", body: js},
	}}
	e := newTestEnv(t)
	originAddr, _ := e.httpsOrigin("127.0.0.2", origin, "app.example.test")
	re := e.startEdge(e.edgeConfig("", fmt.Sprintf(`    origins:
      - {id: app, domain_name: app.example.test, connect_to: %q, trusted_ca: %q}
    default_behavior: {target: app, compress: true}`, originAddr, e.caFile)))
	_, port, _ := net.SplitHostPort(re.Addr("https"))
	base := "https://www.example.test:" + port

	t.Run("curl --compressed", func(t *testing.T) {
		curl, err := exec.LookPath("curl")
		if err != nil {
			t.Fatal("curl is needed for this test (apt-get install curl):", err)
		}
		for i, want := range []string{"Miss from edgegate", "Hit from edgegate"} {
			var headers, stderr bytes.Buffer
			cmd := exec.Command(curl, "--compressed", "-sS", "--max-time", "20", "-D", "/dev/stderr",
				"--cacert", e.caFile, "--resolve", "www.example.test:"+port+":127.0.0.1", base+"/app.js")
			cmd.Stderr = &headers
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("curl: %v\n%s%s", err, headers.String(), stderr.String())
			}
			h := strings.ToLower(headers.String())
			if !strings.Contains(h, "content-encoding: br") && !strings.Contains(h, "content-encoding: gzip") {
				t.Fatalf("request %d: no br or gzip:\n%s", i, headers.String())
			}
			if !strings.Contains(headers.String(), "X-Cache: "+want) && !strings.Contains(h, "x-cache: "+strings.ToLower(want)) {
				t.Errorf("request %d: want %s:\n%s", i, want, headers.String())
			}
			if !bytes.Equal(out, js) {
				t.Fatalf("request %d: curl decoded %d bytes, not the origin's %d", i, len(out), len(js))
			}
		}
		if n := origin.count("/app.js br"); n != 1 {
			t.Errorf("the origin was asked %d times for the br variant; want 1 (the compressed variant is stored)", n)
		}
	})

	c := re.client(false)
	c.Transport.(*http.Transport).DisableCompression = true // the test reads the bytes as sent
	fetch := func(t *testing.T, path string, hdr ...string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, "https://www.example.test"+path, nil) // the client dials the edge for :443
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, body
	}

	for _, coding := range []string{"gzip", "zstd", "br"} {
		t.Run(coding, func(t *testing.T) {
			for i := range 2 {
				resp, body := fetch(t, "/app.js", "Accept-Encoding", coding)
				if got := resp.Header.Get("Content-Encoding"); got != coding {
					t.Fatalf("Content-Encoding %q, want %s", got, coding)
				}
				if resp.ContentLength != int64(len(body)) || len(body) >= len(js)/2 {
					t.Errorf("Content-Length %d, body %d bytes of %d", resp.ContentLength, len(body), len(js))
				}
				if !bytes.Equal(decode(t, coding, body), js) {
					t.Fatal("the body does not decode to the origin's bytes")
				}
				if et := resp.Header.Get("ETag"); et != `W/"v1"` {
					t.Errorf("ETag %q, want the origin's weakened", et)
				}
				if !strings.Contains(strings.Join(resp.Header.Values("Vary"), ","), "Accept-Encoding") {
					t.Errorf("Vary %q lacks Accept-Encoding", resp.Header.Values("Vary"))
				}
				if i == 1 && resp.Header.Get("X-Cache") != "Hit from edgegate" {
					t.Errorf("second request: %s", resp.Header.Get("X-Cache"))
				}
			}
		})
	}

	t.Run("identity without Accept-Encoding", func(t *testing.T) {
		resp, body := fetch(t, "/app.js")
		if resp.Header.Get("Content-Encoding") != "" || !bytes.Equal(body, js) || resp.ContentLength != int64(len(js)) {
			t.Fatalf("Content-Encoding %q, %d bytes", resp.Header.Get("Content-Encoding"), len(body))
		}
		if et := resp.Header.Get("ETag"); et != `"v1"` {
			t.Errorf("identity ETag %q, want the origin's strong one", et)
		}
	})

	t.Run("one variant per encoding", func(t *testing.T) {
		before := origin.count("/app.js gzip")
		resp, _ := fetch(t, "/app.js", "Accept-Encoding", "gzip, deflate")
		if resp.Header.Get("X-Cache") != "Hit from edgegate" || resp.Header.Get("Content-Encoding") != "gzip" {
			t.Errorf("gzip, deflate: %s, %q", resp.Header.Get("X-Cache"), resp.Header.Get("Content-Encoding"))
		}
		if origin.count("/app.js gzip") != before {
			t.Error("another gzip variant was fetched")
		}
	})

	t.Run("range on a compressible object", func(t *testing.T) {
		_, full := fetch(t, "/app.js", "Accept-Encoding", "gzip")
		resp, part := fetch(t, "/app.js", "Accept-Encoding", "gzip", "Range", "bytes=0-99")
		if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(part, full[:100]) || resp.Header.Get("Content-Encoding") != "gzip" {
			t.Errorf("gzip range: status %d, %d bytes, Content-Range %q", resp.StatusCode, len(part), resp.Header.Get("Content-Range"))
		}
		resp, part = fetch(t, "/app.js", "Range", "bytes=100-199")
		if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(part, js[100:200]) || resp.Header.Get("Content-Encoding") != "" {
			t.Errorf("identity range: status %d, %q", resp.StatusCode, part)
		}
	})

	t.Run("revalidated variant stays weak", func(t *testing.T) {
		for i, want := range []string{"Miss from edgegate", "RefreshHit from edgegate"} {
			resp, body := fetch(t, "/stale.js", "Accept-Encoding", "br")
			if resp.Header.Get("X-Cache") != want || resp.Header.Get("ETag") != `W/"v1"` || !bytes.Equal(decode(t, resp.Header.Get("Content-Encoding"), body), js) {
				t.Errorf("request %d: %s, ETag %q, Content-Encoding %q", i, resp.Header.Get("X-Cache"), resp.Header.Get("ETag"), resp.Header.Get("Content-Encoding"))
			}
		}
	})

	t.Run("not compressed", func(t *testing.T) {
		for _, tt := range []struct{ path, why string }{
			{"/small.css", "under 1,000 bytes"},
			{"/photo.png", "image/png is not in CloudFront's list"},
		} {
			resp, body := fetch(t, tt.path, "Accept-Encoding", "br, gzip")
			if resp.Header.Get("Content-Encoding") != "" || resp.ContentLength != int64(len(body)) {
				t.Errorf("%s (%s): Content-Encoding %q", tt.path, tt.why, resp.Header.Get("Content-Encoding"))
			}
		}
		// Already encoded by the origin: passed on, not compressed twice.
		resp, body := fetch(t, "/pre.js", "Accept-Encoding", "gzip")
		if resp.Header.Get("Content-Encoding") != "gzip" || !bytes.Equal(decode(t, "gzip", body), js) {
			t.Errorf("origin's gzip: Content-Encoding %q", resp.Header.Get("Content-Encoding"))
		}
	})
}
