package logs

import (
	"strings"
	"testing"
	"time"

	"github.com/edgegate/edgegate/edge/accesslog"
)

func TestNewFilterErrors(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		spec FilterSpec
		want string // substring of the error, naming the flag
	}{
		{FilterSpec{Since: "yesterday"}, "-since"},
		{FilterSpec{Until: "2026-13-01"}, "-until"},
		{FilterSpec{Since: "-2h"}, "-since"},
		{FilterSpec{Since: "2026-11-22", Until: "2026-11-21"}, "not after -since"},
		{FilterSpec{Status: "5x"}, "-status"},
		{FilterSpec{Status: "600-500"}, "-status"},
		{FilterSpec{Status: "1000"}, "-status"},
		{FilterSpec{URI: "api/*"}, "-uri"},
	} {
		if _, err := NewFilter(tc.spec, now); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want one mentioning %q", tc.spec, err, tc.want)
		}
	}
}

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Time{
		"2h":                        now.Add(-2 * time.Hour),
		"2026-11-22":                time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC),
		"2026-11-22 13:05":          time.Date(2026, 11, 22, 13, 5, 0, 0, time.UTC),
		"2026-11-22T13:05:07":       time.Date(2026, 11, 22, 13, 5, 7, 0, time.UTC),
		"2026-11-22T13:05:07+09:00": time.Date(2026, 11, 22, 4, 5, 7, 0, time.UTC),
	} {
		got, err := ParseTime(in, now)
		if err != nil || !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
}

func TestFilterMatch(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	rec := accesslog.Record{Time: time.Date(2026, 11, 22, 10, 30, 0, 0, time.UTC), Host: "d111.cloudfront.net",
		HostHeader: "WWW.Example.com", URIStem: "/api/v1/items/7", Status: 502, ResultType: accesslog.ResultError,
		ResponseResultType: accesslog.ResultError, DetailedResultType: accesslog.ResultOriginConnectError}
	for _, tc := range []struct {
		spec FilterSpec
		want bool
	}{
		{FilterSpec{}, true},
		{FilterSpec{Since: "2026-11-22 10:30"}, true}, // inclusive
		{FilterSpec{Since: "2026-11-22 10:31"}, false},
		{FilterSpec{Until: "2026-11-22 10:30"}, false}, // exclusive
		{FilterSpec{Until: "2026-11-22 10:31"}, true},
		{FilterSpec{Since: "3h"}, true},
		{FilterSpec{Since: "1h"}, false},
		{FilterSpec{Host: "www.example.com"}, true}, // case-insensitive
		{FilterSpec{Host: "*.cloudfront.net"}, true},
		{FilterSpec{Host: "static.example.com, api.*"}, false},
		{FilterSpec{Status: "5xx"}, true},
		{FilterSpec{Status: "404,500-501"}, false},
		{FilterSpec{Status: "500-504"}, true},
		{FilterSpec{Result: "originconnecterror"}, true},
		{FilterSpec{Result: "Error"}, true},
		{FilterSpec{Result: "Hit,Miss"}, false},
		{FilterSpec{URI: "/api/*"}, true},
		{FilterSpec{URI: "/api/v?/items/*"}, true},
		{FilterSpec{URI: "/api/v1/items"}, false},
		{FilterSpec{URI: "*/items/7"}, true},
		{FilterSpec{Host: "www.example.com", Status: "502", URI: "/api/*", Result: "Error"}, true},
		{FilterSpec{Host: "www.example.com", Status: "404"}, false},
	} {
		f, err := NewFilter(tc.spec, now)
		if err != nil {
			t.Fatalf("%+v: %v", tc.spec, err)
		}
		if got := f.Match(&rec); got != tc.want {
			t.Errorf("%+v: Match = %v, want %v", tc.spec, got, tc.want)
		}
		if f.Empty() != (tc.spec == FilterSpec{}) {
			t.Errorf("%+v: Empty = %v", tc.spec, f.Empty())
		}
	}
}

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, s string
		want       bool
	}{
		{"*", "", true},
		{"*", "/anything/at/all", true},
		{"/a*c", "/abc", true},
		{"/a*c", "/abcd", false},
		{"/a*b*c", "/a-b-b-c", true},
		{"/a?c", "/abc", true},
		{"/a?c", "/ac", false},
		{"/images/*.jpg", "/images/2026/x.jpg", true},
		{"/images/*.jpg", "/images/x.jpeg", false},
		{"", "", true},
		{"", "/", false},
	} {
		if got := match(tc.pattern, tc.s); got != tc.want {
			t.Errorf("match(%q, %q) = %v, want %v", tc.pattern, tc.s, got, tc.want)
		}
	}
}
