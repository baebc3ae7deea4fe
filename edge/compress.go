package edge

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// CloudFront's compression limits: smaller objects gain too little, larger
// ones are sent as the origin sent them.
const (
	minCompressBytes = 1000
	maxCompressBytes = 10_000_000
)

// Compression levels, chosen with BenchmarkCompressionLevels on real web
// text (an HTML document and two JavaScript files, 430 KB). The compressed
// variant is made once per fill and then served from the cache, so bytes
// saved on every hit outweigh CPU spent once, up to where a 10 MB miss
// would wait long for its first byte. Measured on the 2-core CI machine
// (share of bytes saved, input MB/s):
//
//	gzip 4: 69.8%, 150 MB/s   gzip 6: 71.6%, 100 MB/s   gzip 9: 72.9%, 25 MB/s
//	br 4:   72.1%, 12-46 MB/s br 5:   74.1%, 7-8 MB/s   br 6:   74.4%, 13-21 MB/s   br 11: 77.1%, 0.65 MB/s
//	zstd 2: 71.0%, 123 MB/s   zstd 3: 72.4%, 115 MB/s   zstd 4: 74.1%, 24 MB/s
//
// Each chosen level is the last before the cost jumps: gzip 9 and zstd 4
// cost four to five times the CPU for little more than a point; brotli 6
// beats 5 on both counts (andybalholm/brotli switches hashers there) and
// 11 is thirty times slower.
const (
	brotliLevel = 6
	gzipLevel   = 6
	zstdLevel   = zstd.SpeedBetterCompression // klauspost's level 3
)

// compressibleTypes are the Content-Types CloudFront compresses.
var compressibleTypes = func() map[string]bool {
	m := map[string]bool{}
	for _, t := range strings.Fields(`application/dash+xml application/eot application/font application/font-sfnt
		application/javascript application/json application/opentype application/otf application/pdf
		application/pkcs7-mime application/protobuf application/rss+xml application/truetype application/ttf
		application/vnd.apple.mpegurl application/vnd.mapbox-vector-tile application/vnd.ms-fontobject
		application/wasm application/xhtml+xml application/xml application/x-font-opentype
		application/x-font-truetype application/x-font-ttf application/x-httpd-cgi application/x-javascript
		application/x-mpegurl application/x-opentype application/x-otf application/x-perl application/x-ttf
		font/eot font/opentype font/otf font/ttf image/svg+xml text/css text/csv text/html text/javascript
		text/js text/plain text/richtext text/tab-separated-values text/xml text/x-script text/x-component
		text/x-java-source`) {
		m[t] = true
	}
	return m
}()

// compressor makes the compressed variants of cached objects.
type compressor struct {
	zstd *zstd.Encoder // EncodeAll is safe for concurrent use
	gz   sync.Pool     // *gzip.Writer
}

func newCompressor() (*compressor, error) {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstdLevel), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, fmt.Errorf("zstd encoder: %w", err)
	}
	return &compressor{zstd: enc}, nil
}

// encode compresses data with a coding (br, zstd or gzip).
func (c *compressor) encode(coding string, data []byte) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(len(data) / 3)
	switch coding {
	case "zstd":
		return c.zstd.EncodeAll(data, make([]byte, 0, len(data)/3)), nil
	case "br":
		w := brotli.NewWriterLevel(&buf, brotliLevel)
		if _, err := w.Write(data); err != nil {
			return nil, err
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
	case "gzip":
		w, _ := c.gz.Get().(*gzip.Writer)
		if w == nil {
			w, _ = gzip.NewWriterLevel(&buf, gzipLevel) // the level is valid
		} else {
			w.Reset(&buf)
		}
		defer c.gz.Put(w)
		if _, err := w.Write(data); err != nil {
			return nil, err
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("unknown content coding %q", coding)
	}
	return buf.Bytes(), nil
}

// eligible reports whether an origin response may be compressed at the
// edge, as CloudFront decides: a status CloudFront compresses, a
// Content-Type in its list, no Content-Encoding of the origin's, no
// no-transform (RFC 9111 §5.2.2.6), and a length that is not known to be
// out of 1,000 to 10,000,000 bytes.
func eligible(resp *http.Response) bool {
	switch resp.StatusCode {
	case http.StatusOK, http.StatusForbidden, http.StatusNotFound:
	default:
		return false
	}
	if ce := resp.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return false
	}
	mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil || !compressibleTypes[mt] {
		return false
	}
	for _, v := range resp.Header.Values("Cache-Control") {
		if strings.Contains(strings.ToLower(v), "no-transform") {
			return false
		}
	}
	if resp.Header.Get("Content-Range") != "" {
		return false
	}
	return resp.ContentLength < 0 || (resp.ContentLength >= minCompressBytes && resp.ContentLength <= maxCompressBytes)
}

// compressResponse compresses an origin response for the coding the
// origin request asked for (the cache key's normalised Accept-Encoding), so
// that the cache stores the compressed variant under that key and serves
// it to every later viewer of the same coding without compressing again.
// Responses it does not compress are returned as they are, their body
// unread past what was needed to decide.
func (c *compressor) compressResponse(resp *http.Response, coding string) (*http.Response, error) {
	if resp.StatusCode == http.StatusNotModified && isCoding(coding) {
		// A 304 updates the stored variant's fields (RFC 9111 §4.3.4): its
		// ETag must stay as weak as the compressed variant's.
		weakenETag(resp.Header)
		return resp, nil
	}
	if resp.Request != nil && resp.Request.Method == http.MethodHead || !eligible(resp) {
		return resp, nil
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxCompressBytes+1))
	if err != nil {
		resp.Body.Close()
		return nil, err
	}
	if len(data) > maxCompressBytes {
		// Too large after all (no Content-Length): send it as it comes.
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(data), resp.Body), resp.Body}
		return resp, nil
	}
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(data))
	if len(data) < minCompressBytes {
		return resp, nil
	}
	// Another viewer's coding gets another variant: caches after the edge
	// must keep them apart too.
	addVary(resp.Header, "Accept-Encoding")
	if !isCoding(coding) {
		return resp, nil
	}
	out, err := c.encode(coding, data)
	if err != nil {
		return nil, fmt.Errorf("compressing for the viewer: %w", err)
	}
	resp.Body = io.NopCloser(bytes.NewReader(out))
	resp.ContentLength = int64(len(out))
	resp.Header.Set("Content-Length", strconv.Itoa(len(out)))
	resp.Header.Set("Content-Encoding", coding)
	resp.Header.Del("Content-MD5")
	weakenETag(resp.Header)
	return resp, nil
}

func isCoding(c string) bool { return c == "br" || c == "gzip" || c == "zstd" }

// weakenETag makes a strong ETag weak: the compressed bytes differ from the
// origin's, so a strong validator would lie (RFC 9110 §8.8.1). A weak one
// still revalidates with the origin, whose If-None-Match comparison is
// weak.
func weakenETag(h http.Header) {
	if et := h.Get("ETag"); et != "" && !strings.HasPrefix(et, "W/") {
		h.Set("ETag", "W/"+et)
	}
}

// addVary adds a field name to Vary unless it is there (or Vary is *).
func addVary(h http.Header, field string) {
	for _, v := range h.Values("Vary") {
		for f := range strings.SplitSeq(v, ",") {
			if f = strings.TrimSpace(f); f == "*" || strings.EqualFold(f, field) {
				return
			}
		}
	}
	h.Add("Vary", field)
}
