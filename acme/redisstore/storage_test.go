package redisstore

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/edgegate/edgegate/internal/testredis"
)

// treeKeys is a small certmagic-like layout used by several tests.
func treeKeys() []string {
	return []string{
		"certificates/acme/example.com/example.com.crt",
		"certificates/acme/example.com/example.com.key",
		"certificates/acme/example.com/example.com.json",
		"certificates/acme/other.org/other.org.crt",
		"certificates/acmex/x.net/x.net.crt",
		"acme/users/admin@example.com/key",
	}
}

func fill(t *testing.T, s *Storage) {
	t.Helper()
	ctx := testCtx(t)
	for _, k := range treeKeys() {
		if err := s.Store(ctx, k, []byte("value of "+k)); err != nil {
			t.Fatalf("Store(%q): %v", k, err)
		}
	}
}

// conformance runs certmagic's Storage contract against Storages made by mk,
// each on its own prefix.
func conformance(t *testing.T, mk func(t *testing.T) *Storage) {
	t.Run("StoreLoad", func(t *testing.T) {
		s := mk(t)
		ctx := testCtx(t)
		steps := []struct {
			name, storeKey string
			value          []byte
			loadKey        string
		}{
			{"new key", "a/b/c.crt", []byte("one"), "a/b/c.crt"},
			{"overwrite", "a/b/c.crt", []byte("two"), "a/b/c.crt"},
			{"empty value", "a/empty", []byte{}, "a/empty"},
			{"binary value", "a/bin", []byte{0, 0xff, '\n', 0}, "a/bin"},
			{"non-canonical key", "/x//y/z/", []byte("zz"), "x/y/z"},
			{"top-level file", "top", []byte("t"), "top"},
		}
		for _, st := range steps {
			if err := s.Store(ctx, st.storeKey, st.value); err != nil {
				t.Fatalf("%s: Store(%q): %v", st.name, st.storeKey, err)
			}
			got, err := s.Load(ctx, st.loadKey)
			if err != nil {
				t.Fatalf("%s: Load(%q): %v", st.name, st.loadKey, err)
			}
			if !bytes.Equal(got, st.value) {
				t.Fatalf("%s: Load(%q) = %q, want %q", st.name, st.loadKey, got, st.value)
			}
		}
		for _, k := range []string{"missing", "a/b/missing", "a/b", "a", ""} {
			if _, err := s.Load(ctx, k); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Load(%q) error = %v, want fs.ErrNotExist", k, err)
			}
		}
		if err := s.Store(ctx, "", []byte("x")); err == nil {
			t.Error("Store of the empty key succeeded")
		}
	})

	t.Run("FileDirectoryConflict", func(t *testing.T) {
		s := mk(t)
		ctx := testCtx(t)
		if err := s.Store(ctx, "d/f", []byte("x")); err != nil {
			t.Fatal(err)
		}
		if err := s.Store(ctx, "d", []byte("x")); err == nil {
			t.Error("Store over a directory succeeded")
		}
		if err := s.Store(ctx, "d/f/g", []byte("x")); err == nil {
			t.Error("Store below a file succeeded")
		}
		got, err := s.List(ctx, "d", true)
		if err != nil || !slices.Equal(got, []string{"d/f"}) {
			t.Errorf("after refused stores List(d) = %v, %v; want [d/f]", got, err)
		}
	})

	t.Run("List", func(t *testing.T) {
		s := mk(t)
		fill(t, s)
		ctx := testCtx(t)
		cases := []struct {
			path      string
			recursive bool
			want      []string // nil with notExist
			notExist  bool
		}{
			{path: "certificates", want: []string{"certificates/acme", "certificates/acmex"}},
			{path: "certificates/acme", want: []string{"certificates/acme/example.com", "certificates/acme/other.org"}},
			{path: "certificates/acme/example.com", want: []string{
				"certificates/acme/example.com/example.com.crt",
				"certificates/acme/example.com/example.com.json",
				"certificates/acme/example.com/example.com.key",
			}},
			{path: "certificates/acme", recursive: true, want: []string{
				"certificates/acme/example.com",
				"certificates/acme/example.com/example.com.crt",
				"certificates/acme/example.com/example.com.json",
				"certificates/acme/example.com/example.com.key",
				"certificates/acme/other.org",
				"certificates/acme/other.org/other.org.crt",
			}},
			{path: "", want: []string{"acme", "certificates"}},
			{path: "/certificates/acmex/", recursive: true, want: []string{"certificates/acmex/x.net", "certificates/acmex/x.net/x.net.crt"}},
			{path: "certificates/acme/other.org/other.org.crt", want: []string{}},
			{path: "missing", notExist: true},
			{path: "missing", recursive: true, notExist: true},
			{path: "cert", notExist: true}, // a prefix is per component
			{path: "certificates/acme/example", notExist: true},
		}
		for _, c := range cases {
			got, err := s.List(ctx, c.path, c.recursive)
			if c.notExist {
				if !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("List(%q, %v) = %v, %v; want fs.ErrNotExist", c.path, c.recursive, got, err)
				}
				continue
			}
			if err != nil || !slices.Equal(got, c.want) {
				t.Errorf("List(%q, %v) = %q, %v; want %q", c.path, c.recursive, got, err, c.want)
			}
		}
	})

	t.Run("Stat", func(t *testing.T) {
		s := mk(t)
		ctx := testCtx(t)
		before := time.Now()
		if err := s.Store(ctx, "s/dir/file", []byte("12345")); err != nil {
			t.Fatal(err)
		}
		fi, err := s.Stat(ctx, "s/dir/file")
		if err != nil {
			t.Fatal(err)
		}
		// Modified is Redis's clock, on this machine: compare with slack.
		if fi.Key != "s/dir/file" || !fi.IsTerminal || fi.Size != 5 ||
			fi.Modified.Before(before.Add(-2*time.Second)) || fi.Modified.After(time.Now().Add(2*time.Second)) {
			t.Errorf("Stat(file) = %+v", fi)
		}
		if err := s.Store(ctx, "s/dir/file", []byte("1234567")); err != nil {
			t.Fatal(err)
		}
		fi2, err := s.Stat(ctx, "s/dir/file")
		if err != nil || fi2.Size != 7 || fi2.Modified.Before(fi.Modified) {
			t.Errorf("Stat after overwrite = %+v, %v; want size 7, modified not before %v", fi2, err, fi.Modified)
		}
		for _, dir := range []string{"s", "s/dir", ""} {
			di, err := s.Stat(ctx, dir)
			if err != nil || di.IsTerminal || di.Key != dir {
				t.Errorf("Stat(dir %q) = %+v, %v; want non-terminal", dir, di, err)
			}
		}
		if _, err := s.Stat(ctx, "s/missing"); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Stat(missing) error = %v, want fs.ErrNotExist", err)
		}
	})

	t.Run("Exists", func(t *testing.T) {
		s := mk(t)
		fill(t, s)
		ctx := testCtx(t)
		for k, want := range map[string]bool{
			"certificates/acme/example.com/example.com.crt": true,
			"certificates/acme/example.com":                 true,
			"certificates":                                  true,
			"certificates/acme/example.com/missing":         false,
			"certificates/acm":                              false,
			"nothing":                                       false,
		} {
			if got := s.Exists(ctx, k); got != want {
				t.Errorf("Exists(%q) = %v, want %v", k, got, want)
			}
		}
	})

	t.Run("Delete", func(t *testing.T) {
		cases := []struct {
			name, key string
			gone      []string // keys that must no longer exist
			kept      []string // keys that must remain
			listAfter map[string][]string
		}{
			{
				name: "file", key: "certificates/acme/example.com/example.com.key",
				gone: []string{"certificates/acme/example.com/example.com.key"},
				kept: []string{"certificates/acme/example.com/example.com.crt", "certificates/acme/example.com"},
				listAfter: map[string][]string{"certificates/acme/example.com": {
					"certificates/acme/example.com/example.com.crt",
					"certificates/acme/example.com/example.com.json",
				}},
			},
			{
				name: "last file prunes empty parents", key: "certificates/acme/other.org/other.org.crt",
				gone:      []string{"certificates/acme/other.org"},
				kept:      []string{"certificates/acme/example.com"},
				listAfter: map[string][]string{"certificates/acme": {"certificates/acme/example.com"}},
			},
			{
				name: "missing", key: "certificates/nothing/here",
				kept: treeKeys(),
			},
			{
				name: "directory tree", key: "certificates/acme",
				gone: []string{
					"certificates/acme", "certificates/acme/example.com", "certificates/acme/other.org",
					"certificates/acme/example.com/example.com.crt", "certificates/acme/other.org/other.org.crt",
				},
				kept:      []string{"certificates/acmex/x.net/x.net.crt", "acme/users/admin@example.com/key"},
				listAfter: map[string][]string{"certificates": {"certificates/acmex"}},
			},
			{
				name: "partial component is not a prefix", key: "certificates/acm",
				kept: treeKeys(),
			},
			{
				name: "everything", key: "",
				gone: append([]string{"certificates", "acme"}, treeKeys()...),
			},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				s := mk(t)
				fill(t, s)
				ctx := testCtx(t)
				if err := s.Delete(ctx, c.key); err != nil {
					t.Fatalf("Delete(%q): %v", c.key, err)
				}
				if err := s.Delete(ctx, c.key); err != nil {
					t.Fatalf("second Delete(%q): %v", c.key, err)
				}
				for _, k := range c.gone {
					if s.Exists(ctx, k) {
						t.Errorf("%q still exists", k)
					}
					if _, err := s.Stat(ctx, k); !errors.Is(err, fs.ErrNotExist) {
						t.Errorf("Stat(%q) after delete: %v, want fs.ErrNotExist", k, err)
					}
				}
				for _, k := range c.kept {
					if !s.Exists(ctx, k) {
						t.Errorf("%q was deleted too", k)
					}
				}
				for dir, want := range c.listAfter {
					if got, err := s.List(ctx, dir, false); err != nil || !slices.Equal(got, want) {
						t.Errorf("List(%q) = %q, %v; want %q", dir, got, err, want)
					}
				}
			})
		}
	})

	t.Run("ConcurrentStoresKeepIndex", func(t *testing.T) {
		s := mk(t)
		ctx := testCtx(t)
		const writers, each = 6, 15
		var wg sync.WaitGroup
		errs := make(chan error, writers*each)
		var want []string
		for w := range writers {
			for i := range each {
				want = append(want, fmt.Sprintf("c/w%d/k%02d", w, i))
			}
			wg.Go(func() {
				for i := range each {
					k := fmt.Sprintf("c/w%d/k%02d", w, i)
					if err := s.Store(ctx, k, []byte(k)); err != nil {
						errs <- err
					}
					if i%5 == 4 { // delete and re-store while others write alongside
						if err := s.Delete(ctx, k); err != nil {
							errs <- err
						}
						if err := s.Store(ctx, k, []byte(k)); err != nil {
							errs <- err
						}
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		got, err := s.List(ctx, "c", true)
		if err != nil {
			t.Fatal(err)
		}
		var files []string
		for _, k := range got {
			if _, err := s.Load(ctx, k); err == nil {
				files = append(files, k)
			}
		}
		slices.Sort(want)
		if !slices.Equal(files, want) || len(got) != len(want)+writers {
			t.Errorf("after concurrent stores List(c, recursive) = %d entries (%d files), want %d files and %d dirs", len(got), len(files), len(want), writers)
		}
	})
}

func TestConformanceSingleNode(t *testing.T) {
	srv := testredis.Start(t)
	conformance(t, func(t *testing.T) *Storage {
		opts, _ := storeOpts(t, srv.URL())
		return open(t, opts)
	})
}

// TestDeleteLeavesNoOrphans checks the Redis keyspace itself (the test may
// scan; the Storage never does): after deleting everything, no file, index or
// empty directory entry is left behind.
func TestDeleteLeavesNoOrphans(t *testing.T) {
	s, srv, _ := newSingle(t)
	ctx := testCtx(t)
	fill(t, s)
	raw := rawClient(t, srv.URL())
	keys, err := raw.Keys(ctx, s.base+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	// 6 files; dirs: root, certificates, certificates/acme, .../example.com,
	// .../other.org, certificates/acmex, .../x.net, acme, acme/users,
	// acme/users/admin@example.com.
	if len(keys) != 16 {
		t.Fatalf("after fill: %d keys %q, want 16", len(keys), keys)
	}
	if err := s.Delete(ctx, "certificates"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "acme/users/admin@example.com/key"); err != nil {
		t.Fatal(err)
	}
	keys, err = raw.Keys(ctx, s.base+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 0 {
		t.Errorf("after deleting everything, keys left: %q", keys)
	}
	if _, err := s.List(ctx, "", false); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("List(root) of an empty store: %v, want fs.ErrNotExist", err)
	}
}

// TestRedisDownAndBack: while Redis is down every operation fails with an
// error naming the key (never a false fs.ErrNotExist, which would make
// certmagic order again); after a restart everything works.
func TestRedisDownAndBack(t *testing.T) {
	t.Parallel()
	s, srv, logs := newSingle(t)
	ctx := testCtx(t)
	if err := s.Store(ctx, "down/k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	held, err := s.TryLock(ctx, "held")
	if err != nil || !held {
		t.Fatalf("TryLock = %v, %v", held, err)
	}

	srv.Kill()
	checkDown := func(op string, err error) {
		t.Helper()
		if err == nil {
			t.Errorf("%s with Redis down: no error", op)
			return
		}
		if errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s with Redis down: %v looks like a missing key", op, err)
		}
		t.Logf("%s: %v", op, err)
	}
	checkDown("Store", s.Store(ctx, "down/k2", []byte("v")))
	_, err = s.Load(ctx, "down/k")
	checkDown("Load", err)
	_, err = s.List(ctx, "down", true)
	checkDown("List", err)
	_, err = s.Stat(ctx, "down/k")
	checkDown("Stat", err)
	checkDown("Delete", s.Delete(ctx, "down/k"))
	_, err = s.TryLock(ctx, "other")
	checkDown("TryLock", err)
	checkDown("Lock", s.Lock(ctx, "other"))
	if s.Exists(ctx, "down/k") {
		t.Error("Exists with Redis down = true")
	}
	if _, err := s.Load(ctx, "down/k"); err == nil || !bytes.Contains([]byte(err.Error()), []byte(`"down/k"`)) {
		t.Errorf("Load error %v does not name the key", err)
	}
	// The refresher of the held lock reports its failures.
	eventually(t, 5*time.Second, "refresher logs its failure", func() bool {
		return logs.contains("could not refresh lock lease")
	})

	srv.Restart()
	// The restarted Redis lost its data, including the lease: the refresher
	// must say so rather than carry on.
	eventually(t, 5*time.Second, "refresher reports the lost lease", func() bool {
		return logs.contains("lock lease lost")
	})
	if err := s.Unlock(ctx, "held"); !errors.Is(err, ErrLockLost) {
		t.Errorf("Unlock of the lost lease: %v, want ErrLockLost", err)
	}
	if err := s.Store(ctx, "up/k", []byte("again")); err != nil {
		t.Fatalf("Store after restart: %v", err)
	}
	if v, err := s.Load(ctx, "up/k"); err != nil || string(v) != "again" {
		t.Fatalf("Load after restart = %q, %v", v, err)
	}
	if ok, err := s.TryLock(ctx, "held"); err != nil || !ok {
		t.Fatalf("TryLock after restart = %v, %v", ok, err)
	}
	if err := s.Unlock(ctx, "held"); err != nil {
		t.Fatalf("Unlock after restart: %v", err)
	}
}
