package cache

import (
	"net/http"
	"testing"
)

func TestRespond(t *testing.T) {
	lm := t0.Format(http.TimeFormat)
	e := NewEntry(200, hdr("ETag", `"v1"`, "Last-Modified", lm, "Content-Type", "text/plain"), []byte("0123456789"),
		Decision{Store: true, Lifetime: 3600e9}, "/f", t0, t0)
	tests := []struct {
		name       string
		method     string
		kv         []string
		status     int
		body       string
		cr, length string
	}{
		{"plain", "GET", nil, 200, "0123456789", "", "10"},
		{"head", "HEAD", nil, 200, "", "", "10"},
		{"range", "GET", []string{"Range", "bytes=2-4"}, 206, "234", "bytes 2-4/10", "3"},
		{"range open", "GET", []string{"Range", "bytes=7-"}, 206, "789", "bytes 7-9/10", "3"},
		{"range suffix", "GET", []string{"Range", "bytes=-3"}, 206, "789", "bytes 7-9/10", "3"},
		{"range suffix longer", "GET", []string{"Range", "bytes=-30"}, 206, "0123456789", "bytes 0-9/10", "10"},
		{"range end clipped", "GET", []string{"Range", "bytes=8-100"}, 206, "89", "bytes 8-9/10", "2"},
		{"range head", "HEAD", []string{"Range", "bytes=0-0"}, 206, "", "bytes 0-0/10", "1"},
		{"unsatisfiable", "GET", []string{"Range", "bytes=10-"}, 416, "", "bytes */10", "0"},
		{"multi range whole", "GET", []string{"Range", "bytes=0-1,3-4"}, 200, "0123456789", "", "10"},
		{"malformed range whole", "GET", []string{"Range", "bytes=x-y"}, 200, "0123456789", "", "10"},
		{"other unit whole", "GET", []string{"Range", "items=0-1"}, 200, "0123456789", "", "10"},
		{"if-range etag match", "GET", []string{"Range", "bytes=0-1", "If-Range", `"v1"`}, 206, "01", "bytes 0-1/10", "2"},
		{"if-range etag mismatch", "GET", []string{"Range", "bytes=0-1", "If-Range", `"v0"`}, 200, "0123456789", "", "10"},
		{"if-range date", "GET", []string{"Range", "bytes=0-1", "If-Range", lm}, 206, "01", "bytes 0-1/10", "2"},
		{"if-none-match", "GET", []string{"If-None-Match", `"x", W/"v1"`}, 304, "", "", ""},
		{"if-none-match miss", "GET", []string{"If-None-Match", `"x"`}, 200, "0123456789", "", "10"},
		{"if-modified-since", "GET", []string{"If-Modified-Since", lm}, 304, "", "", ""},
		{"if-modified-since older", "GET", []string{"If-Modified-Since", t0.Add(-3600e9).Format(http.TimeFormat)}, 200, "0123456789", "", "10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := getReq(tt.kv...)
			r.Method = tt.method
			status, h, body := Respond(e, r, t0.Add(5e9))
			if status != tt.status || string(body) != tt.body || h.Get("Content-Range") != tt.cr || h.Get("Content-Length") != tt.length {
				t.Fatalf("got %d %q range %q length %q", status, body, h.Get("Content-Range"), h.Get("Content-Length"))
			}
			if h.Get("Age") != "5" {
				t.Errorf("Age %q", h.Get("Age"))
			}
		})
	}
	if e.Header.Get("Age") != "" || e.Header.Get("Content-Range") != "" {
		t.Fatal("Respond changed the stored entry")
	}
	// A stored 404 ignores Range.
	nf := NewEntry(404, hdr(), []byte("nope"), Decision{Store: true}, "/", t0, t0)
	if status, _, body := Respond(nf, getReq("Range", "bytes=0-1"), t0); status != 404 || string(body) != "nope" {
		t.Fatalf("404: %d %q", status, body)
	}
}
