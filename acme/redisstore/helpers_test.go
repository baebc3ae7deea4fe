package redisstore

import (
	"bytes"
	"context"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgegate/edgegate/internal/testredis"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

// testTTL is short so that expiry tests finish in seconds; the refresher
// runs every TTL/3.
const testTTL = time.Second

// logBuffer collects a Storage's log lines for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) contains(s string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Contains(b.buf.String(), s)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// storeOpts are test defaults: a per-test prefix, a short TTL, fast polling
// and a captured log.
func storeOpts(t testing.TB, url string) (Options, *logBuffer) {
	logs := &logBuffer{}
	l := zerolog.New(logs)
	return Options{
		URL:              url,
		Prefix:           "t:" + strings.NewReplacer("/", ":", "{", "(", "}", ")").Replace(t.Name()),
		LockTTL:          testTTL,
		LockPollInterval: 50 * time.Millisecond,
		Logger:           &l,
	}, logs
}

// open makes a Storage that is closed when the test ends.
func open(t testing.TB, opts Options) *Storage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := New(ctx, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// newSingle starts a redis-server and a Storage on it.
func newSingle(t testing.TB) (*Storage, *testredis.Server, *logBuffer) {
	t.Helper()
	srv := testredis.Start(t)
	opts, logs := storeOpts(t, srv.URL())
	return open(t, opts), srv, logs
}

// rawClient is a plain client for checking what the Storage left in Redis.
func rawClient(t testing.TB, url string) *redis.Client {
	t.Helper()
	o, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(o)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond until it holds or the bound passes.
func eventually(t testing.TB, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", bound, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freePort finds a free loopback port for a server this test starts itself.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
