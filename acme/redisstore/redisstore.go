// Package redisstore is a certmagic.Storage on Redis, so that the edges of a
// cluster share viewer certificates, ACME accounts and locks: one node orders
// a certificate while the others wait and then load it.
//
// It avoids the known faults of earlier Redis storages:
//
//   - Every write is one Lua script, so a value, its modification time and the
//     directory index that lists it change together or not at all.
//   - List walks directory index sets kept by Store and Delete; it never scans
//     the keyspace (no KEYS, no SCAN).
//   - Deleting a directory deletes everything under it, in the same script.
//   - rediss:// verifies the server certificate; it cannot be turned off.
//   - Commands always go to the primary: replica reads (ReadOnly,
//     RouteByLatency, RouteRandomly) are refused, because a lagging replica
//     would let Load miss the last Store or a lock look free.
//   - Locks are token-checked leases kept alive by a refresher that logs every
//     failure instead of stopping silently.
//
// # Key layout and Redis Cluster
//
// All keys of one Storage share the hash tag "{Prefix}", so they live in one
// Cluster slot. That is deliberate: Store and Delete touch a file and every
// ancestor directory index, and deleting a directory touches a whole tree, so
// splitting the tree across slots would make these writes non-atomic or
// impossible (CROSSSLOT). Certificate data is small (kilobytes per name), so
// one slot holds a large fleet; the cost is that one primary serves it all.
// Because of the single slot, the scripts may also reach keys they discover
// while running (children of a directory), which Cluster allows within the
// slot the script's declared keys hash to.
//
//	{Prefix}:f:<key>   hash: v (value), s and us (Redis TIME at the last Store)
//	{Prefix}:d:<dir>   set of the full keys of the directory's direct children
//	                   (the root directory is "{Prefix}:d:")
//	{Prefix}:l:<name>  lock: a random token, with a PX expiry
package redisstore

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

// Defaults for Options. The lease TTL bounds how long a crashed holder keeps
// other nodes waiting; it is long enough that a refresh every TTL/3 survives a
// short network or Redis hiccup.
const (
	DefaultPrefix           = "edgegate:certmagic"
	DefaultLockTTL          = 30 * time.Second
	DefaultLockPollInterval = time.Second
)

// Compile-time checks that Storage offers everything certmagic looks for.
var (
	_ certmagic.Storage          = (*Storage)(nil)
	_ certmagic.TryLocker        = (*Storage)(nil)
	_ certmagic.LockLeaseRenewer = (*Storage)(nil)
)

// ErrLockNotHeld is returned by Unlock and RenewLockLease for a lock this
// Storage did not acquire (or already released).
var ErrLockNotHeld = errors.New("lock not held by this storage")

// ErrLockLost is returned by Unlock and RenewLockLease when the lease in
// Redis no longer carries this holder's token: it expired (refreshes failed,
// or Redis lost its data) and may now belong to another node. The lock of the
// other holder is left alone.
var ErrLockLost = errors.New("lock lease lost: expired or taken by another holder")

// Options configure a Storage.
type Options struct {
	// URL of the Redis deployment, used when Client is nil:
	//
	//	redis://[user:password@]host:port[/db]
	//	rediss://[user:password@]host:port[/db]            (TLS, verified)
	//	redis-cluster://[user:password@]h1:p1,h2:p2,...
	//	rediss-cluster://[user:password@]h1:p1,h2:p2,...   (TLS, verified)
	//
	// go-redis query parameters (dial_timeout, pool_size, ...) are accepted,
	// except those that disable TLS verification or read from replicas.
	URL string

	// Client is an existing client to use instead of URL. The Storage does
	// not close it. A Cluster client set up to read from replicas is refused.
	Client redis.UniversalClient

	// TLSConfig is the base TLS configuration for rediss URLs, e.g. RootCAs
	// for a private CA. InsecureSkipVerify is refused. Nil means the system
	// roots.
	TLSConfig *tls.Config

	// Prefix namespaces the keys, so that several edgegate clusters can share
	// one Redis. It must not contain '{' or '}' (it becomes the hash tag).
	// Default DefaultPrefix.
	Prefix string

	// LockTTL is the lease of a lock: how long a holder that stops refreshing
	// (crashed, partitioned) blocks the others. Default DefaultLockTTL; at
	// least 300ms, so that TTL/3 refreshes are meaningful.
	LockTTL time.Duration

	// LockPollInterval is how often a waiting Lock retries. Default
	// DefaultLockPollInterval, capped at LockTTL/2.
	LockPollInterval time.Duration

	// Logger receives refresher failures and lost leases. Nil means JSON on
	// standard error: these events must never go unreported.
	Logger *zerolog.Logger
}

// Storage is a certmagic.Storage, TryLocker and LockLeaseRenewer on Redis.
// It is safe for concurrent use. Locks are per name within one Storage: a
// second Lock of a held name waits like any other contender.
type Storage struct {
	client    redis.UniversalClient
	ownClient bool
	base      string // "{prefix}"
	ttl       time.Duration
	poll      time.Duration
	log       zerolog.Logger
	scripts   scripts

	mu     sync.Mutex
	leases map[string]*lease // nil once closed
}

// lease is a lock this Storage holds and keeps alive.
type lease struct {
	token string
	stop  context.CancelFunc
	done  chan struct{} // closed when the refresher has exited
}

// New connects to Redis as opts say and checks that it answers, so that a
// wrong address or password fails at startup rather than at the first order.
func New(ctx context.Context, opts Options) (*Storage, error) {
	s, err := newStorage(opts)
	if err != nil {
		return nil, err
	}
	if err := s.client.Ping(ctx).Err(); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("redisstore: ping Redis: %w", err)
	}
	return s, nil
}

func newStorage(opts Options) (*Storage, error) {
	prefix := opts.Prefix
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if strings.ContainsAny(prefix, "{}") {
		return nil, fmt.Errorf("redisstore: prefix %q must not contain '{' or '}': it is used as the Cluster hash tag", prefix)
	}
	ttl := opts.LockTTL
	if ttl == 0 {
		ttl = DefaultLockTTL
	}
	if ttl < 300*time.Millisecond {
		return nil, fmt.Errorf("redisstore: lock TTL %s is below the 300ms minimum", ttl)
	}
	poll := opts.LockPollInterval
	if poll <= 0 {
		poll = DefaultLockPollInterval
	}
	poll = min(poll, ttl/2)

	var log zerolog.Logger
	if opts.Logger != nil {
		log = *opts.Logger
	} else {
		log = zerolog.New(os.Stderr).With().Timestamp().Logger()
	}
	log = log.With().Str("component", "redisstore").Str("prefix", prefix).Logger()

	s := &Storage{
		base:    "{" + prefix + "}",
		ttl:     ttl,
		poll:    poll,
		log:     log,
		scripts: newScripts(),
		leases:  make(map[string]*lease),
	}
	switch {
	case opts.Client != nil && opts.URL != "":
		return nil, errors.New("redisstore: set either Client or URL, not both")
	case opts.Client != nil:
		if err := checkPrimaryOnly(opts.Client); err != nil {
			return nil, err
		}
		s.client = opts.Client
	case opts.URL != "":
		c, err := parseURL(opts.URL, opts.TLSConfig)
		if err != nil {
			return nil, err
		}
		s.client, s.ownClient = c, true
	default:
		return nil, errors.New("redisstore: no Redis URL or client configured")
	}
	return s, nil
}

// Close stops the lock refreshers and closes the client if New created it.
// Held leases are not deleted: they expire after the TTL. To hand locks over
// at once on shutdown, call certmagic.CleanUpOwnLocks (which calls Unlock)
// before Close.
func (s *Storage) Close() error {
	s.mu.Lock()
	leases := s.leases
	s.leases = nil // marks the Storage closed for hold
	s.mu.Unlock()
	for _, l := range leases {
		l.stop()
		<-l.done
	}
	if s.ownClient {
		if err := s.client.Close(); err != nil {
			return fmt.Errorf("redisstore: close client: %w", err)
		}
	}
	return nil
}

// String names the storage in certmagic's logs without revealing secrets.
func (s *Storage) String() string { return "redisstore:" + s.base }

func (s *Storage) fileKey(key string) string { return s.base + ":f:" + key }
func (s *Storage) dirKey(dir string) string  { return s.base + ":d:" + dir }
func (s *Storage) lockKey(name string) string {
	return s.base + ":l:" + name
}
