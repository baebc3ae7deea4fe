package redisstore

import (
	"context"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// startCluster runs a three-primary Redis Cluster on loopback (no replicas)
// and returns its redis-cluster:// URL. Creating it takes about a second.
func startCluster(t *testing.T) string {
	t.Helper()
	var addrs []string
	for i := range 3 {
		dir := filepath.Join(t.TempDir(), strconv.Itoa(i))
		port, bus := freePort(t), freePort(t)
		if err := exec.Command("mkdir", "-p", dir).Run(); err != nil {
			t.Fatal(err)
		}
		startRedis(t, dir, "--port", strconv.Itoa(port), "--cluster-enabled", "yes",
			"--cluster-port", strconv.Itoa(bus), "--cluster-config-file", filepath.Join(dir, "nodes.conf"),
			"--cluster-node-timeout", "2000")
		addrs = append(addrs, "127.0.0.1:"+strconv.Itoa(port))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, a := range addrs {
		c := redis.NewClient(&redis.Options{Addr: a})
		eventually(t, 5*time.Second, "cluster node "+a+" answers", func() bool { return c.Ping(ctx).Err() == nil })
		_ = c.Close()
	}
	out, err := exec.CommandContext(ctx, "redis-cli", append(append([]string{"--cluster", "create"}, addrs...),
		"--cluster-replicas", "0", "--cluster-yes")...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	for _, a := range addrs {
		c := redis.NewClient(&redis.Options{Addr: a})
		eventually(t, 8*time.Second, "cluster_state:ok on "+a, func() bool {
			info, err := c.ClusterInfo(ctx).Result()
			return err == nil && strings.Contains(info, "cluster_state:ok")
		})
		_ = c.Close()
	}
	return "redis-cluster://" + strings.Join(addrs, ",")
}

// TestCluster runs the conformance suite and the lock basics against a real
// three-primary Cluster, where multi-key scripts would fail with CROSSSLOT
// unless every key of a Storage hashes to one slot.
func TestCluster(t *testing.T) {
	t.Parallel()
	url := startCluster(t)

	t.Run("OneSlotPerPrefix", func(t *testing.T) {
		opts, _ := storeOpts(t, url)
		s := open(t, opts)
		ctx := testCtx(t)
		want := redisSlot(t, ctx, s, s.fileKey("x"))
		for _, k := range []string{
			s.fileKey("certificates/acme/example.com/example.com.crt"), s.dirKey(""), s.dirKey("a/b{c}"),
			s.fileKey("}{odd"), s.lockKey("issue_cert_example.com"),
		} {
			if got := redisSlot(t, ctx, s, k); got != want {
				t.Errorf("key %q in slot %d, want %d", k, got, want)
			}
		}
	})

	conformance(t, func(t *testing.T) *Storage {
		opts, _ := storeOpts(t, url)
		return open(t, opts)
	})

	t.Run("Lock", func(t *testing.T) {
		opts, _ := storeOpts(t, url)
		a, b := open(t, opts), open(t, opts)
		ctx := testCtx(t)
		if err := a.Lock(ctx, "c"); err != nil {
			t.Fatal(err)
		}
		if ok, err := b.TryLock(ctx, "c"); err != nil || ok {
			t.Fatalf("b.TryLock while a holds = %v, %v", ok, err)
		}
		if err := a.RenewLockLease(ctx, "c", time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := a.Unlock(ctx, "c"); err != nil {
			t.Fatal(err)
		}
		if ok, err := b.TryLock(ctx, "c"); err != nil || !ok {
			t.Fatalf("b.TryLock after Unlock = %v, %v", ok, err)
		}
		if err := b.Unlock(ctx, "c"); err != nil {
			t.Fatal(err)
		}
	})
}

func redisSlot(t *testing.T, ctx context.Context, s *Storage, key string) int64 {
	t.Helper()
	n, err := s.client.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		t.Fatalf("CLUSTER KEYSLOT %q: %v", key, err)
	}
	return n
}
