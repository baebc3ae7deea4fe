package redisstore

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/edgegate/edgegate/internal/testredis"
)

// Environment of the helper process that holds a lock for
// TestLockAcrossProcesses.
const (
	helperEnv       = "EDGEGATE_REDISSTORE_HELPER"
	helperURLEnv    = "EDGEGATE_REDISSTORE_HELPER_URL"
	helperPrefixEnv = "EDGEGATE_REDISSTORE_HELPER_PREFIX"
	helperLock      = "issue_cert_example.com"
	// procTTL is longer than testTTL: two processes on busy shared cores
	// need the margin.
	procTTL = 2 * time.Second
)

// TestHelperProcess is not a test: TestLockAcrossProcesses runs the test
// binary again with helperEnv set, and this takes the lock, reports it on
// stdout and keeps it (refreshing) until it is killed.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := New(ctx, Options{
		URL:     os.Getenv(helperURLEnv),
		Prefix:  os.Getenv(helperPrefixEnv),
		LockTTL: procTTL,
	})
	if err != nil {
		os.Stdout.WriteString("ERROR " + err.Error() + "\n")
		os.Exit(2)
	}
	if err := s.Lock(ctx, helperLock); err != nil {
		os.Stdout.WriteString("ERROR " + err.Error() + "\n")
		os.Exit(2)
	}
	os.Stdout.WriteString("LOCKED\n")
	<-ctx.Done() // killed long before; the bound only avoids a stray process
	os.Exit(3)
}

// TestLockAcrossProcesses: another process holds the lock and keeps it past
// its TTL; once that process is SIGKILLed (no Unlock), the lease runs out and
// this process takes the lock.
func TestLockAcrossProcesses(t *testing.T) {
	t.Parallel()
	srv := testredis.Start(t)
	opts, _ := storeOpts(t, srv.URL())
	opts.LockTTL = procTTL
	s := open(t, opts)
	ctx := testCtx(t)

	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"=1", helperURLEnv+"="+srv.URL(), helperPrefixEnv+"="+opts.Prefix)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	kill := func() {
		once.Do(func() {
			_ = cmd.Process.Signal(syscall.SIGKILL)
			_ = cmd.Wait()
		})
	}
	t.Cleanup(kill)

	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(out).ReadString('\n')
		line <- strings.TrimSpace(l)
	}()
	select {
	case l := <-line:
		if l != "LOCKED" {
			t.Fatalf("helper process: %q", l)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("helper process did not take the lock within 15s")
	}

	if ok, err := s.TryLock(ctx, helperLock); err != nil || ok {
		t.Fatalf("TryLock while the other process holds it = %v, %v; want false", ok, err)
	}
	// Past its TTL the other process's refresher still keeps the lease.
	time.Sleep(procTTL * 3 / 2)
	if ok, err := s.TryLock(ctx, helperLock); err != nil || ok {
		t.Fatalf("TryLock after 1.5 TTLs = %v, %v; want false (the holder refreshes)", ok, err)
	}

	kill()
	// Killing does not release the lease (its last refresh was at most TTL/3
	// ago, leaving about 2/3 of a TTL)...
	if ok, err := s.TryLock(ctx, helperLock); err != nil || ok {
		t.Fatalf("TryLock right after the kill = %v, %v; want false until the lease expires", ok, err)
	}
	// ...its expiry does: Lock waits for it, within a bound.
	lctx, cancel := context.WithTimeout(ctx, 3*procTTL)
	defer cancel()
	if err := s.Lock(lctx, helperLock); err != nil {
		t.Fatalf("Lock after the holder was killed: %v", err)
	}
	if err := s.Unlock(ctx, helperLock); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
}

// TestLockMutualExclusion: two nodes (Storages) and several goroutines
// contend for one name; at most one is ever inside, and a waiter gets the
// lock after Unlock.
func TestLockMutualExclusion(t *testing.T) {
	srv := testredis.Start(t)
	optsA, _ := storeOpts(t, srv.URL())
	a, b := open(t, optsA), open(t, optsA)
	ctx := testCtx(t)

	if err := a.Lock(ctx, "m"); err != nil {
		t.Fatal(err)
	}
	if ok, err := b.TryLock(ctx, "m"); err != nil || ok {
		t.Fatalf("b.TryLock while a holds = %v, %v", ok, err)
	}
	if ok, err := a.TryLock(ctx, "m"); err != nil || ok {
		t.Fatalf("a.TryLock of its own held lock = %v, %v; a name is held once", ok, err)
	}
	got := make(chan error, 1)
	go func() { got <- b.Lock(ctx, "m") }()
	select {
	case err := <-got:
		t.Fatalf("b.Lock returned while a holds the lock: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	if err := a.Unlock(ctx, "m"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("b.Lock: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("b.Lock did not acquire within 5s of a.Unlock")
	}
	if err := b.Unlock(ctx, "m"); err != nil {
		t.Fatal(err)
	}

	// Many rounds from two nodes: a counter of holders never exceeds one.
	var inside, rounds atomic.Int32
	var overlap atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for _, s := range []*Storage{a, a, b, b} {
		wg.Go(func() {
			for range 5 {
				if err := s.Lock(ctx, "counter"); err != nil {
					errs <- err
					return
				}
				if inside.Add(1) > 1 {
					overlap.Store(true)
				}
				time.Sleep(5 * time.Millisecond)
				inside.Add(-1)
				rounds.Add(1)
				if err := s.Unlock(ctx, "counter"); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if overlap.Load() || rounds.Load() != 20 {
		t.Errorf("two holders at once: %v; rounds %d, want 20", overlap.Load(), rounds.Load())
	}
}

// TestLockRespectsContext: a waiting Lock gives up when its context ends.
func TestLockRespectsContext(t *testing.T) {
	s, _, _ := newSingle(t)
	ctx := testCtx(t)
	if err := s.Lock(ctx, "busy"); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if err := s.Lock(wctx, "busy"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock of a held name with a short deadline: %v, want DeadlineExceeded", err)
	}
	if err := s.Unlock(ctx, "busy"); err != nil {
		t.Fatal(err)
	}
}

// TestRefresherKeepsLockAlive: a lock held for several TTLs is still held.
func TestRefresherKeepsLockAlive(t *testing.T) {
	t.Parallel()
	srv := testredis.Start(t)
	opts, _ := storeOpts(t, srv.URL())
	a, b := open(t, opts), open(t, opts)
	ctx := testCtx(t)
	if err := a.Lock(ctx, "long"); err != nil {
		t.Fatal(err)
	}
	raw := rawClient(t, srv.URL())
	for i := range 3 {
		time.Sleep(testTTL)
		if ok, err := b.TryLock(ctx, "long"); err != nil || ok {
			t.Fatalf("after %d TTLs b.TryLock = %v, %v; want false", i+1, ok, err)
		}
		if pttl, err := raw.PTTL(ctx, a.lockKey("long")).Result(); err != nil || pttl <= 0 || pttl > testTTL {
			t.Fatalf("lease PTTL = %v, %v; want within (0, %s]", pttl, err, testTTL)
		}
	}
	if err := a.RenewLockLease(ctx, "long", time.Hour); err != nil {
		t.Fatalf("RenewLockLease: %v", err)
	}
	if pttl, err := raw.PTTL(ctx, a.lockKey("long")).Result(); err != nil || pttl > testTTL {
		t.Fatalf("after RenewLockLease PTTL = %v, %v; the lease stays at the TTL", pttl, err)
	}
	if err := a.Unlock(ctx, "long"); err != nil {
		t.Fatal(err)
	}
	if n, err := raw.Exists(ctx, a.lockKey("long")).Result(); err != nil || n != 0 {
		t.Fatalf("lock key after Unlock: exists=%d, %v", n, err)
	}
	if ok, err := b.TryLock(ctx, "long"); err != nil || !ok {
		t.Fatalf("b.TryLock after Unlock = %v, %v", ok, err)
	}
	if err := b.Unlock(ctx, "long"); err != nil {
		t.Fatal(err)
	}
}

// TestStolenLeaseIsNotReleased: A's lease vanishes (as after an expiry), B
// takes the lock; A's refresher reports the loss, and A's Unlock and
// RenewLockLease fail without touching B's lock.
func TestStolenLeaseIsNotReleased(t *testing.T) {
	t.Parallel()
	srv := testredis.Start(t)
	optsA, logsA := storeOpts(t, srv.URL())
	a := open(t, optsA)
	optsB, _ := storeOpts(t, srv.URL())
	b := open(t, optsB)
	ctx := testCtx(t)
	raw := rawClient(t, srv.URL())

	if err := a.Lock(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	if err := raw.Del(ctx, a.lockKey("x")).Err(); err != nil {
		t.Fatal(err)
	}
	if ok, err := b.TryLock(ctx, "x"); err != nil || !ok {
		t.Fatalf("b.TryLock after a's lease vanished = %v, %v", ok, err)
	}
	bToken, err := raw.Get(ctx, b.lockKey("x")).Result()
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, 3*testTTL, "a's refresher reports the lost lease", func() bool {
		return logsA.contains("lock lease lost")
	})
	if err := a.RenewLockLease(ctx, "x", time.Minute); !errors.Is(err, ErrLockLost) {
		t.Errorf("a.RenewLockLease of a stolen lease: %v, want ErrLockLost", err)
	}
	if err := a.Unlock(ctx, "x"); !errors.Is(err, ErrLockLost) {
		t.Errorf("a.Unlock of a stolen lease: %v, want ErrLockLost", err)
	}
	if tok, err := raw.Get(ctx, b.lockKey("x")).Result(); err != nil || tok != bToken {
		t.Fatalf("b's lease after a's Unlock = %q, %v; want b's token kept", tok, err)
	}
	if err := a.Unlock(ctx, "x"); !errors.Is(err, ErrLockNotHeld) {
		t.Errorf("second a.Unlock: %v, want ErrLockNotHeld", err)
	}
	if err := a.RenewLockLease(ctx, "never", time.Minute); !errors.Is(err, ErrLockNotHeld) {
		t.Errorf("RenewLockLease of a lock never taken: %v, want ErrLockNotHeld", err)
	}
	if err := b.RenewLockLease(ctx, "x", time.Minute); err != nil {
		t.Errorf("b.RenewLockLease: %v", err)
	}
	if err := b.Unlock(ctx, "x"); err != nil {
		t.Fatalf("b.Unlock: %v", err)
	}
}
