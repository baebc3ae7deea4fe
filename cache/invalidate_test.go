package cache

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/edgegate/edgegate/internal/testredis"
)

func TestMatchPattern(t *testing.T) {
	for _, tt := range []struct {
		pattern, path string
		want          bool
	}{
		{"/index.html", "/index.html", true},
		{"/index.html", "/index.htm", false},
		{"/index.html", "/index.html/x", false},
		{"/images/*", "/images/a.png", true},
		{"/images/*", "/images/sub/a.png", true},
		{"/images/*", "/images", false},
		{"/images/*", "/imagesX/a", false},
		{"/*", "/", true},
		{"*", "/anything", true},
		{"/a*b*c", "/axxbyyc", true},
		{"/a*b*c", "/axxbyy", false},
		{"/*.jpg", "/x/y.jpg", true},
		{"/Images/*", "/images/a", false}, // case-sensitive, as CloudFront
		{"/" + string(make([]byte, 0)) + "****************************x", "/" + string(make([]byte, 200)), false},
	} {
		if got := matchPattern(tt.pattern, tt.path); got != tt.want {
			t.Errorf("%q ~ %q = %v", tt.pattern, tt.path, got)
		}
	}
}

func TestInvalidatorLocal(t *testing.T) {
	now := t0
	v := NewInvalidator(InvalidatorOptions{Now: func() time.Time { return now }, Skew: time.Second, Retention: time.Hour})
	ctx := context.Background()
	if _, err := v.Invalidate(ctx, nil); err == nil {
		t.Fatal("empty invalidation accepted")
	}
	inv, err := v.Invalidate(ctx, []string{"images/*", "/caf%C3%A9.html"})
	if err != nil || inv.Status != Completed || len(inv.ID) != 14 || inv.Paths[0] != "/images/*" {
		t.Fatalf("%+v %v", inv, err)
	}
	for _, tt := range []struct {
		path    string
		fetched time.Time
		want    bool
	}{
		{"/images/a.png", t0.Add(-time.Hour), true},
		{"/images/a.png", t0.Add(500 * time.Millisecond), true}, // within skew: refetched once more
		{"/images/a.png", t0.Add(2 * time.Second), false},       // fetched after the invalidation
		{"/css/a.css", t0.Add(-time.Hour), false},
		{"/café.html", t0.Add(-time.Hour), true},
	} {
		if got := v.Invalidated(tt.path, tt.fetched); got != tt.want {
			t.Errorf("Invalidated(%q, %s) = %v", tt.path, tt.fetched.Sub(t0), got)
		}
	}
	got, err := v.Status(ctx, inv.ID)
	if err != nil || got.Status != Completed {
		t.Fatalf("status %+v %v", got, err)
	}
	if _, err := v.Status(ctx, "NOPE"); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	// Past retention the record is forgotten, and whatever it could have
	// covered counts as invalidated.
	now = t0.Add(2 * time.Hour)
	v.prune()
	if v.Invalidated("/images/a.png", t0.Add(2*time.Second)) {
		t.Fatal("entry fetched after the forgotten record was refused")
	}
	if !v.Invalidated("/css/a.css", t0.Add(-time.Hour)) {
		t.Fatal("entry older than the forgotten record was trusted")
	}
}

// TestInvalidatorCluster: an invalidation on one edge reaches another
// sharing Redis by Pub/Sub, is Completed once both applied it, and reaches
// an edge that joins later through the log.
func TestInvalidatorCluster(t *testing.T) {
	srv := testredis.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The log is polled only at start, so what reaches a running edge came
	// through Pub/Sub, which delivers in milliseconds.
	mk := func(node string) *Invalidator {
		v := NewInvalidator(InvalidatorOptions{Redis: redisClient(t, srv), Node: node, Heartbeat: 100 * time.Millisecond, PollInterval: time.Hour})
		go v.Run(ctx)
		return v
	}
	a, b := mk("edge-a"), mk("edge-b")
	waitFor(t, "both edges registered", func() bool {
		n, _ := redisClient(t, srv).ZCard(ctx, "edgegate:inv:nodes").Result()
		return n == 2
	})
	before := time.Now().Add(-time.Minute)
	inv, err := a.Invalidate(ctx, []string{"/images/*"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "edge b applies", func() bool { return b.Invalidated("/images/x.png", before) })
	waitFor(t, "completed", func() bool {
		s, err := a.Status(ctx, inv.ID)
		return err == nil && s.Status == Completed
	})
	// A third edge that joins later learns it from the log.
	c := mk("edge-c")
	waitFor(t, "late edge loads the log", func() bool { return c.Invalidated("/images/x.png", before) })
	// Status reads the same from any edge.
	s, _ := b.Status(ctx, inv.ID)
	if s.Status != Completed || len(s.Paths) != 1 {
		t.Fatalf("%+v", s)
	}
}
