package cache

import (
	"context"
	"net/http"
	"testing"
	"time"
)

func benchRequest(b *testing.B) *http.Request {
	r, err := http.NewRequest(http.MethodGet, "https://www.example.com/images/products/12345/photo.jpg?w=640&h=480&utm_source=x", nil)
	if err != nil {
		b.Fatal(err)
	}
	r.Header.Set("Accept-Encoding", "gzip, deflate, br")
	r.Header.Set("Origin", "https://shop.example.com")
	r.Header.Set("Cookie", "session=abcdef0123456789; lang=en")
	return r
}

var benchKeyPolicy = KeyPolicy{QueryStrings: SelectNames("w", "h"), Headers: []string{"Origin"}, Cookies: SelectNames("lang"),
	AcceptEncodingGzip: true, AcceptEncodingBrotli: true}

func BenchmarkKey(b *testing.B) {
	r := benchRequest(b)
	b.ReportAllocs()
	for b.Loop() {
		_ = Key(r, benchKeyPolicy)
	}
}

func BenchmarkKeyNoParts(b *testing.B) {
	r := benchRequest(b)
	b.ReportAllocs()
	for b.Loop() {
		_ = Key(r, KeyPolicy{})
	}
}

// BenchmarkMemoryHit is the hit path's store lookup: Get from the memory
// tier plus the freshness check.
func BenchmarkMemoryHit(b *testing.B) {
	m, err := NewMemory(MemoryOptions{MaxBytes: 64 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	ctx := context.Background()
	key := Key(benchRequest(b), benchKeyPolicy)
	e := bodyEntry(16 << 10)
	e.ResponseTime, e.RequestTime = time.Now(), time.Now()
	_ = m.Set(ctx, key, e, time.Hour)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		got, err := m.Get(ctx, key)
		if err != nil || got.Freshness(now) != Fresh {
			b.Fatal("miss")
		}
	}
}

// BenchmarkCacheHit is a whole Do on a fresh memory hit: key, origin-request
// preparation, lookup, invalidation check and response building.
func BenchmarkCacheHit(b *testing.B) {
	m, err := NewMemory(MemoryOptions{MaxBytes: 64 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	c := New(m, Options{})
	r := benchRequest(b)
	p := Policy{DefaultTTL: time.Hour, MaxTTL: time.Hour, Key: benchKeyPolicy}
	origin := func(ctx context.Context, req *http.Request) (*http.Response, error) {
		b.Fatal("origin called on the hit path")
		return nil, nil
	}
	e := bodyEntry(16 << 10)
	e.ResponseTime, e.RequestTime, e.Lifetime, e.VaryFields = time.Now(), time.Now(), time.Hour, nil
	_ = m.Set(context.Background(), Key(r, p.Key), e, time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		resp, err := c.Do(context.Background(), r, p, origin)
		if err != nil || resp.Outcome != Hit {
			b.Fatal(err, resp.Outcome)
		}
	}
}
