package acme

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
)

// TestGatedStorageCloseWaitsForLocks: after Close no operation reaches the
// storage, and Close returns only once a lock held by a running job is
// released, so nothing is written into the storage after the edge stops.
func TestGatedStorageCloseWaitsForLocks(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, g := newGatedStorage(&certmagic.FileStorage{Path: dir})
	if err := s.Lock(ctx, "issue_cert_www.example.test"); err != nil {
		t.Fatal(err)
	}
	closed := make(chan bool)
	go func() { closed <- g.close(10 * time.Second) }()

	// Once the gate is shut, new work is refused by name.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		g.mu.Lock()
		shut := g.closed
		g.mu.Unlock()
		if shut {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("close did not shut the gate within 5s")
		}
	}
	if err := s.Store(ctx, "certificates/x/www.example.test.crt", []byte("x")); !errors.Is(err, errStorageClosed) {
		t.Errorf("Store after close: %v, want %v", err, errStorageClosed)
	}
	if _, err := s.Load(ctx, "anything"); !errors.Is(err, errStorageClosed) {
		t.Errorf("Load after close: %v, want %v", err, errStorageClosed)
	}
	if s.Exists(ctx, "locks") {
		t.Error("Exists after close reported true")
	}
	select {
	case <-closed:
		t.Fatal("close returned while a lock was still held")
	default:
	}
	// The job that held the lock releases it: Unlock passes the closed
	// gate, and close returns.
	if err := s.Unlock(ctx, "issue_cert_www.example.test"); err != nil {
		t.Fatal(err)
	}
	select {
	case ok := <-closed:
		if !ok {
			t.Error("close reported a lock still held after its release")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("close did not return after the lock was released")
	}
	locks, _ := filepath.Glob(filepath.Join(dir, "locks", "*"))
	if len(locks) != 0 {
		t.Errorf("lock files left after close: %v", locks)
	}
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			t.Errorf("%s written and left in the storage", p)
		}
		return nil
	})
}

// TestGatedStorageCloseGivesUp: a lock never released costs Close its
// bounded wait, not a hang.
func TestGatedStorageCloseGivesUp(t *testing.T) {
	s, g := newGatedStorage(&certmagic.FileStorage{Path: t.TempDir()})
	if err := s.Lock(context.Background(), "stuck"); err != nil {
		t.Fatal(err)
	}
	if g.close(50 * time.Millisecond) {
		t.Error("close reported settled with a lock still held")
	}
}

// leaseStorage is a FileStorage that also renews lock leases, as the Redis
// storage does.
type leaseStorage struct{ *certmagic.FileStorage }

func (leaseStorage) RenewLockLease(context.Context, string, time.Duration) error { return nil }

// TestGatedStorageKeepsOptionalInterfaces: certmagic locks differently when
// the storage is a TryLocker or a LockLeaseRenewer, so the gate must have
// exactly the ones the storage has.
func TestGatedStorageKeepsOptionalInterfaces(t *testing.T) {
	file := &certmagic.FileStorage{Path: t.TempDir()}
	for _, tt := range []struct {
		name       string
		in         certmagic.Storage
		try, lease bool
	}{
		{"file", file, true, false},
		{"lease and try", leaseStorage{file}, true, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := newGatedStorage(tt.in)
			_, try := s.(certmagic.TryLocker)
			_, lease := s.(certmagic.LockLeaseRenewer)
			if try != tt.try || lease != tt.lease {
				t.Errorf("TryLocker %v, LockLeaseRenewer %v; want %v, %v", try, lease, tt.try, tt.lease)
			}
		})
	}
}
