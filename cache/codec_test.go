package cache

import (
	"errors"
	"net/http"
	"reflect"
	"testing"
	"time"
)

func sampleEntry() *Entry {
	return &Entry{
		Kind: KindResponse, Status: 200,
		Header:      http.Header{"Content-Type": {"text/html"}, "Etag": {`"v1"`}, "X-Multi": {"a", "b"}},
		Body:        []byte("<html>hello</html>"),
		RequestTime: t0, ResponseTime: t0.Add(time.Millisecond), InitialAge: 3 * time.Second,
		Lifetime: time.Hour, StaleWhileRevalidate: time.Minute, StaleIfError: time.Hour, NoStale: true,
		Path: "/index.html", VaryFields: []string{"Accept-Encoding"}, Expires: t0.Add(2 * time.Hour),
	}
}

func TestCodecRoundTrip(t *testing.T) {
	for _, e := range []*Entry{sampleEntry(), {Kind: KindVary, Status: 200, Header: http.Header{}, VaryFields: []string{"Origin"}, Generation: 1 << 60}} {
		b, err := e.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var got Entry
		if err := got.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		if !got.RequestTime.Equal(e.RequestTime) || !got.ResponseTime.Equal(e.ResponseTime) || !got.Expires.Equal(e.Expires) {
			t.Fatalf("times differ: %+v", got)
		}
		got.RequestTime, got.ResponseTime, got.Expires = e.RequestTime, e.ResponseTime, e.Expires
		if len(got.Body) == 0 {
			got.Body = e.Body
		}
		if !reflect.DeepEqual(&got, e) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, *e)
		}
	}
}

func TestCodecRejectsDamage(t *testing.T) {
	good, _ := sampleEntry().MarshalBinary()
	for i := range len(good) {
		var e Entry
		if err := e.UnmarshalBinary(good[:i]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated at %d: err %v", i, err)
		}
	}
	bad := append([]byte(nil), good...)
	bad[3] = 99 // version
	var e Entry
	if err := e.UnmarshalBinary(bad); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("unknown version: %v", err)
	}
	if err := e.UnmarshalBinary(append(good, 0)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("trailing byte: %v", err)
	}
	// A forged huge header count must fail, not allocate.
	forged := []byte("EGC\x01\x00\x00\xc8\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff\xff\xff\x0f")
	if err := e.UnmarshalBinary(forged); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("forged count: %v", err)
	}
}

func FuzzUnmarshal(f *testing.F) {
	good, _ := sampleEntry().MarshalBinary()
	f.Add(good)
	f.Add([]byte("EGC\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var e Entry
		if err := e.UnmarshalBinary(data); err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error not wrapping ErrCorrupt: %v", err)
			}
			return
		}
		again, _ := e.MarshalBinary()
		var e2 Entry
		if err := e2.UnmarshalBinary(again); err != nil {
			t.Fatalf("re-encoding a decoded entry fails: %v", err)
		}
	})
}
