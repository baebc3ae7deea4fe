package cache

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"
)

// Invalidation statuses, as CloudFront names them.
const (
	InProgress = "InProgress"
	Completed  = "Completed"
)

// MaxInvalidationPaths bounds one request, as CloudFront's 3,000.
const MaxInvalidationPaths = 3000

// ErrInvalidPaths is a request whose paths break the rules (count, length,
// '*' only at the end): the caller's mistake, not worth retrying as is.
var ErrInvalidPaths = errors.New("invalid invalidation paths")

// ErrNotDurable is an invalidation that could not be made durable (Redis,
// or the edge's own journal where there is no Redis, did not take it). It
// was applied on this edge, but the request should be retried.
var ErrNotDurable = errors.New("invalidation not durable")

// Invalidation is one invalidation request and its state.
type Invalidation struct {
	// ID is CloudFront-like: 14 upper-case letters and digits.
	ID string `json:"id"`
	// Paths are the patterns, each starting with "/".
	Paths []string `json:"paths"`
	// CreateTime is when the invalidation was made, on the issuing edge's
	// clock; entries fetched before it (less Skew) are invalid.
	CreateTime time.Time `json:"create_time"`
	// Status is InProgress or Completed.
	Status string `json:"status,omitempty"`
}

// InvalidatorOptions configures an Invalidator.
type InvalidatorOptions struct {
	// Redis shares invalidations with the other edges; nil keeps them local.
	Redis redis.UniversalClient
	// Journal is a file where this edge keeps every invalidation it knows
	// (fsynced before one is acknowledged), reloaded at start: entries that
	// outlive a restart (the disk tier) stay invalidated even if Redis lost
	// its data, and Redis is seeded again from it. Empty: none (a cache that
	// is all memory loses its entries on restart anyway).
	Journal string
	// WriteTimeout bounds writing an invalidation to Redis; default 2s.
	WriteTimeout time.Duration
	// Prefix starts every Redis key and the channel; default "edgegate:inv:".
	Prefix string
	// Node names this edge in acknowledgements; default host name + random.
	Node string
	// Logger receives Redis trouble met in the background.
	Logger zerolog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Skew is the clock difference allowed between edges: an entry fetched
	// up to Skew after an invalidation's time is still invalidated (one more
	// miss rather than a stale object surviving). Default 1s.
	Skew time.Duration
	// Retention is how long invalidation records are kept. Entries fetched
	// before the oldest forgotten record count as invalidated, since we no
	// longer know what covered them. Default 7 days.
	Retention time.Duration
	// PollInterval is the backstop re-read of the record log, for messages
	// Pub/Sub lost while a connection was down. Default 5s.
	PollInterval time.Duration
	// Heartbeat is how often this edge announces itself; an edge silent for
	// 5 heartbeats no longer holds up Completed. Default 1s.
	Heartbeat time.Duration
	// OnApply runs (synchronously, keep it short) for every invalidation
	// this edge learns of, e.g. to purge the memory tier.
	OnApply func(Invalidation)
}

// Invalidator records path-pattern invalidations and answers, on the
// request path and without any Redis call, whether an entry fetched at some
// time is covered by a later one, at a cost that does not grow with their
// number (an exact-path map and a prefix tree, each keeping the newest
// time; see invIndex).
//
// Durability: an invalidation is written to Redis (or, without Redis, to
// the edge's journal file) before Invalidate reports success; if that
// fails, Invalidate returns ErrNotDurable and the admin API answers 503 so
// that automation retries. Every edge also journals what it learns, so
// that an invalidation survives a restart of every edge and of Redis (an
// edge puts records Redis lost back into it).
//
// Cluster design: a record {id, paths, time} goes into a sorted set (score =
// time) and is published on a channel. Every edge's Run subscribes, applies
// the record, and acknowledges it in a per-invalidation set; it also
// re-reads the sorted set every PollInterval and on start, so a lost
// message, or an edge cut off for a while, is only late, never lost. An
// entry is invalid when a matching record is newer than the entry's
// RequestTime (less Skew); nothing is deleted from Redis, so no keyspace
// scan is ever needed: entries expire by their TTL and are refused on read
// meanwhile. Status is Completed once every edge with a recent heartbeat
// acknowledged.
type Invalidator struct {
	o InvalidatorOptions

	mu      sync.RWMutex // guards the fields below
	recs    invRecords
	idx     *invIndex
	horizon int64 // Unix ns: entries fetched before it count as invalidated
	hooks   []func(Invalidation)

	jmu sync.Mutex // serialises journal writes

	dials dialWatch // the Redis client's failed dials, named in timeouts
}

// NewInvalidator builds an Invalidator, loading its journal if any; call
// Run to join the cluster.
func NewInvalidator(o InvalidatorOptions) *Invalidator {
	if o.Prefix == "" {
		o.Prefix = "edgegate:inv:"
	}
	if o.Node == "" {
		h, _ := os.Hostname()
		o.Node = h + "-" + newID()[:6]
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Skew <= 0 {
		o.Skew = time.Second
	}
	if o.Retention <= 0 {
		o.Retention = 7 * 24 * time.Hour
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 5 * time.Second
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = time.Second
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 2 * time.Second
	}
	v := &Invalidator{o: o, recs: newInvRecords(), idx: newInvIndex()}
	if o.Redis != nil {
		o.Redis.AddHook(&v.dials)
	}
	v.loadJournal()
	return v
}

// addHook registers a function run for every invalidation applied.
func (v *Invalidator) addHook(h func(Invalidation)) {
	v.mu.Lock()
	v.hooks = append(v.hooks, h)
	v.mu.Unlock()
}

// Node is this edge's name in acknowledgements.
func (v *Invalidator) Node() string { return v.o.Node }

// Invalidated reports whether an entry for the decoded path, fetched from the
// origin at fetched, is covered by an invalidation. Its cost depends on the
// path's length only.
func (v *Invalidator) Invalidated(path string, fetched time.Time) bool {
	f := fetched.UnixNano()
	after := fetched.Add(-v.o.Skew).UnixNano()
	v.mu.RLock()
	defer v.mu.RUnlock()
	return f < v.horizon || v.idx.covered(path, after)
}

// Covers reports whether inv applies to an entry for path fetched at fetched.
func (v *Invalidator) Covers(inv Invalidation, path string, fetched time.Time) bool {
	if !inv.CreateTime.After(fetched.Add(-v.o.Skew)) {
		return false
	}
	for _, p := range inv.Paths {
		if matchPattern(decodePattern(p), path) {
			return true
		}
	}
	return false
}

// CheckPaths applies CloudFront's rules to the paths of an invalidation and
// returns them cleaned (a leading "/" added): 1 to MaxInvalidationPaths
// paths, each at most 4096 bytes, '*' only as the last character. An error
// wraps ErrInvalidPaths.
func CheckPaths(paths []string) ([]string, error) {
	if len(paths) == 0 || len(paths) > MaxInvalidationPaths {
		return nil, fmt.Errorf("%w: need 1 to %d paths, got %d", ErrInvalidPaths, MaxInvalidationPaths, len(paths))
	}
	clean := make([]string, 0, len(paths))
	for _, p := range paths {
		p = strings.TrimSpace(p)
		if p == "" || len(p) > 4096 {
			return nil, fmt.Errorf("%w: path %q is empty or longer than 4096 bytes", ErrInvalidPaths, p)
		}
		if i := strings.IndexByte(p, '*'); i >= 0 && i != len(p)-1 {
			return nil, fmt.Errorf("%w: path %q: '*' may only be the last character", ErrInvalidPaths, p)
		}
		if !strings.HasPrefix(p, "/") {
			p = "/" + p
		}
		clean = append(clean, p)
	}
	return clean, nil
}

// Invalidate records an invalidation of the path patterns ("/index.html",
// "/images/*"; a final "*" matches any rest of the path, "/" included; query
// strings are not part of a pattern: every variant of a path goes) and shares
// it with the cluster. It is in force on this edge when Invalidate returns,
// whatever the error. An error wrapping ErrInvalidPaths is bad input; one
// wrapping ErrNotDurable means it could not be made durable (Redis, or the
// journal without Redis, failed) and the request should be retried.
func (v *Invalidator) Invalidate(ctx context.Context, paths []string) (Invalidation, error) {
	clean, err := CheckPaths(paths)
	if err != nil {
		return Invalidation{}, fmt.Errorf("invalidate: %w", err)
	}
	inv := Invalidation{ID: newID(), Paths: clean, CreateTime: v.o.Now()}
	if v.o.Redis == nil {
		inv.Status = Completed
		if _, err := v.apply(inv); err != nil {
			return inv, fmt.Errorf("invalidate %s: applied on this edge, but not journaled: %w: %w", inv.ID, ErrNotDurable, err)
		}
		return inv, nil
	}
	inv.Status = InProgress
	shareErr := v.share(ctx, inv, true)
	if _, err := v.apply(inv); err != nil {
		v.o.Logger.Warn().Err(err).Str("invalidation", inv.ID).Msg("cache: cannot journal invalidation")
	}
	if shareErr != nil {
		return inv, fmt.Errorf("invalidate %s: applied on this edge only, Redis did not take it: %w: %w", inv.ID, ErrNotDurable, shareErr)
	}
	return inv, nil
}

// share writes a record to Redis and publishes it; own marks one made here
// (acknowledged by this edge at once).
func (v *Invalidator) share(ctx context.Context, inv Invalidation, own bool) error {
	data, err := json.Marshal(Invalidation{ID: inv.ID, Paths: inv.Paths, CreateTime: inv.CreateTime})
	if err != nil {
		return fmt.Errorf("encode record: %w", err)
	}
	return v.redisDo(ctx, func(ctx context.Context) error {
		pipe := v.o.Redis.TxPipeline()
		pipe.ZAdd(ctx, v.key("log"), redis.Z{Score: float64(inv.CreateTime.UnixMilli()), Member: data})
		pipe.Set(ctx, v.key("rec:"+inv.ID), data, v.o.Retention)
		if own {
			pipe.SAdd(ctx, v.key("ack:"+inv.ID), v.o.Node)
			pipe.Expire(ctx, v.key("ack:"+inv.ID), v.o.Retention)
		}
		pipe.Publish(ctx, v.key("events"), data)
		_, err := pipe.Exec(ctx)
		return err
	})
}

// redisDo runs op with WriteTimeout, returning by then even if the client
// does not (a hung Redis).
func (v *Invalidator) redisDo(ctx context.Context, op func(context.Context) error) error {
	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, v.o.WriteTimeout)
	// Cancelled when redisDo returns, not when op does: op's goroutine
	// cancelling after handing over its result made cctx.Done ready beside
	// it, and select picks at random, so a success read as a failure.
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- op(cctx) }()
	select {
	case err := <-done:
		return err
	case <-cctx.Done():
		select {
		case err := <-done: // it ended just as the deadline came
			if err == nil || !errors.Is(err, cctx.Err()) { // else say more below
				return err
			}
		default:
		}
		// go-redis retries refused dials until the deadline and then
		// reports only the deadline: name the dial's failure, if one
		// happened meanwhile, to tell a Redis that is down from a slow one.
		if f := v.dials.since(start); f != nil {
			return fmt.Errorf("redis: no answer within %s (last dial: %w): %w", v.o.WriteTimeout, f, cctx.Err())
		}
		return fmt.Errorf("redis: no answer within %s: %w", v.o.WriteTimeout, cctx.Err())
	}
}

// dialWatch is a go-redis hook that remembers the client's last failed
// dial.
type dialWatch struct{ last atomic.Pointer[dialFailure] }

type dialFailure struct {
	at  time.Time
	err error
}

// since returns the last dial failure at or after t, or nil.
func (w *dialWatch) since(t time.Time) error {
	if f := w.last.Load(); f != nil && !f.at.Before(t) {
		return f.err
	}
	return nil
}

// DialHook notes failed dials.
func (w *dialWatch) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := next(ctx, network, addr)
		if err != nil {
			w.last.Store(&dialFailure{at: time.Now(), err: err})
		}
		return c, err
	}
}

// ProcessHook leaves commands alone.
func (w *dialWatch) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

// ProcessPipelineHook leaves pipelines alone.
func (w *dialWatch) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// Status reports an invalidation by ID: Completed once every live edge has
// applied it.
func (v *Invalidator) Status(ctx context.Context, id string) (Invalidation, error) {
	if v.o.Redis == nil {
		v.mu.RLock()
		defer v.mu.RUnlock()
		if r, ok := v.recs.get(id); ok {
			r.Status = Completed
			return r, nil
		}
		return Invalidation{}, fmt.Errorf("invalidation %q: %w", id, ErrNotFound)
	}
	var inv Invalidation
	var live, acked []string
	err := v.redisDo(ctx, func(ctx context.Context) error {
		data, err := v.o.Redis.Get(ctx, v.key("rec:"+id)).Bytes()
		if errors.Is(err, redis.Nil) {
			return fmt.Errorf("invalidation %q: %w", id, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("invalidation %q status: %w", id, err)
		}
		if err := json.Unmarshal(data, &inv); err != nil {
			return fmt.Errorf("invalidation %q: decode record: %w", id, err)
		}
		live, err = v.o.Redis.ZRangeByScore(ctx, v.key("nodes"), &redis.ZRangeBy{
			Min: strconv.FormatInt(v.o.Now().Add(-5*v.o.Heartbeat).UnixMilli(), 10), Max: "+inf"}).Result()
		if err != nil {
			return fmt.Errorf("invalidation %q status: list edges: %w", id, err)
		}
		acked, err = v.o.Redis.SMembers(ctx, v.key("ack:"+id)).Result()
		if err != nil {
			return fmt.Errorf("invalidation %q status: acknowledgements: %w", id, err)
		}
		return nil
	})
	if err != nil {
		return Invalidation{}, err
	}
	inv.Status = Completed
	for _, n := range live {
		if !slices.Contains(acked, n) {
			inv.Status = InProgress
		}
	}
	return inv, nil
}

// Run joins the cluster: it loads recent invalidations, subscribes to new
// ones, heartbeats and re-polls, until ctx ends. Redis trouble is logged and
// retried, never returned. Without Redis it just waits for ctx.
func (v *Invalidator) Run(ctx context.Context) error {
	if v.o.Redis == nil {
		tick := time.NewTicker(time.Hour)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-tick.C:
				v.prune()
			}
		}
	}
	sub := v.o.Redis.Subscribe(ctx, v.key("events"))
	defer sub.Close()
	msgs := sub.Channel()
	v.heartbeat(ctx)
	v.poll(ctx)
	beat := time.NewTicker(v.o.Heartbeat)
	defer beat.Stop()
	poll := time.NewTicker(v.o.PollInterval)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			leave, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			_ = v.o.Redis.ZRem(leave, v.key("nodes"), v.o.Node).Err()
			cancel()
			return nil
		case m, ok := <-msgs:
			if !ok {
				return nil
			}
			var inv Invalidation
			if err := json.Unmarshal([]byte(m.Payload), &inv); err != nil {
				v.o.Logger.Warn().Err(err).Msg("cache: undecodable invalidation message")
				continue
			}
			v.learn(ctx, inv)
		case <-beat.C:
			v.heartbeat(ctx)
		case <-poll.C:
			v.poll(ctx)
		}
	}
}

func (v *Invalidator) heartbeat(ctx context.Context) {
	err := v.o.Redis.ZAdd(ctx, v.key("nodes"), redis.Z{Score: float64(v.o.Now().UnixMilli()), Member: v.o.Node}).Err()
	if err != nil && ctx.Err() == nil {
		v.o.Logger.Debug().Err(err).Msg("cache: invalidation heartbeat failed")
	}
	v.prune()
}

// poll re-reads the record log, so nothing Pub/Sub dropped is missed,
// trims records past Retention, and puts back records Redis lost (a
// restart without persistence) from this edge's own.
func (v *Invalidator) poll(ctx context.Context) {
	cutoff := v.o.Now().Add(-v.o.Retention).UnixMilli()
	_ = v.o.Redis.ZRemRangeByScore(ctx, v.key("log"), "-inf", "("+strconv.FormatInt(cutoff, 10)).Err()
	recs, err := v.o.Redis.ZRangeByScore(ctx, v.key("log"), &redis.ZRangeBy{Min: strconv.FormatInt(cutoff, 10), Max: "+inf"}).Result()
	if err != nil {
		if ctx.Err() == nil {
			v.o.Logger.Warn().Err(err).Msg("cache: cannot read invalidation log; retrying")
		}
		return
	}
	inRedis := make(map[invID]bool, len(recs))
	var invs []Invalidation
	for _, r := range recs {
		var inv Invalidation
		if json.Unmarshal([]byte(r), &inv) == nil {
			inRedis[idOf(inv.ID)] = true
			invs = append(invs, inv)
		}
	}
	v.learn(ctx, invs...)
	v.mu.RLock()
	var lost []Invalidation
	for _, r := range v.recs.refs {
		if !inRedis[r.id] && r.at/1e6 >= cutoff {
			lost = append(lost, v.recs.decode(r))
		}
	}
	v.mu.RUnlock()
	for _, r := range lost {
		if err := v.share(ctx, r, true); err != nil {
			return
		}
	}
	if len(lost) > 0 {
		v.o.Logger.Info().Int("invalidations", len(lost)).Msg("cache: invalidations Redis had lost put back")
	}
}

// learn applies records from the cluster, journals the new ones with one
// fsync (an edge joining late may learn thousands at once) and
// acknowledges them.
func (v *Invalidator) learn(ctx context.Context, invs ...Invalidation) {
	added, err := v.apply(invs...)
	if err != nil {
		v.o.Logger.Warn().Err(err).Int("invalidations", len(added)).Msg("cache: cannot journal invalidations")
	}
	if len(added) == 0 {
		return
	}
	pipe := v.o.Redis.Pipeline()
	for _, inv := range added {
		pipe.SAdd(ctx, v.key("ack:"+inv.ID), v.o.Node)
		pipe.Expire(ctx, v.key("ack:"+inv.ID), v.o.Retention)
	}
	if _, err := pipe.Exec(ctx); err != nil && ctx.Err() == nil {
		v.o.Logger.Warn().Err(err).Int("invalidations", len(added)).Msg("cache: cannot acknowledge invalidations")
	}
}

// apply adds records to the index and the journal and returns those that
// were new. err is a journal failure (they are in force on this edge
// regardless).
func (v *Invalidator) apply(invs ...Invalidation) (added []Invalidation, err error) {
	v.mu.Lock()
	for _, inv := range invs {
		inv.Status = ""
		if !v.recs.has(inv.ID) {
			v.addLocked(inv)
			added = append(added, inv)
		}
	}
	hooks := slices.Clone(v.hooks)
	v.mu.Unlock()
	if len(added) == 0 {
		return nil, nil
	}
	err = v.journal(added...)
	for _, inv := range added {
		if v.o.OnApply != nil {
			v.o.OnApply(inv)
		}
		for _, h := range hooks {
			h(inv)
		}
	}
	return added, err
}

func (v *Invalidator) addLocked(inv Invalidation) {
	v.recs.add(inv)
	t := inv.CreateTime.UnixNano()
	for _, p := range inv.Paths {
		v.idx.add(decodePattern(p), t)
	}
}

// prune forgets records past Retention, moving the horizon up to them, and
// rewrites the journal without them.
func (v *Invalidator) prune() {
	v.mu.Lock()
	cutoff := v.o.Now().Add(-v.o.Retention).UnixNano()
	refs := v.recs.refs
	i := sort.Search(len(refs), func(i int) bool { return refs[i].at > cutoff })
	if i == 0 {
		v.mu.Unlock()
		return
	}
	v.horizon = max(v.horizon, refs[i-1].at+int64(v.o.Skew))
	keep := make([]Invalidation, 0, len(refs)-i)
	for _, r := range refs[i:] {
		keep = append(keep, v.recs.decode(r))
	}
	v.recs = newInvRecords()
	v.idx = newInvIndex()
	for _, r := range keep {
		v.addLocked(r)
	}
	horizon := v.horizon
	v.mu.Unlock()
	if err := v.rewriteJournal(keep, horizon); err != nil {
		v.o.Logger.Warn().Err(err).Msg("cache: cannot compact the invalidation journal")
	}
}

func (v *Invalidator) key(s string) string { return v.o.Prefix + s }

// decodePattern percent-decodes a pattern so that it compares with decoded
// request paths.
func decodePattern(p string) string {
	if d, err := url.PathUnescape(p); err == nil {
		return d
	}
	return p
}

// matchPattern matches a path against a pattern: a pattern with '*' is a
// prefix (what comes before its first '*'; CloudFront allows it only at
// the end), any other must equal the path.
func matchPattern(pattern, path string) bool {
	if i := strings.IndexByte(pattern, '*'); i >= 0 {
		return strings.HasPrefix(path, pattern[:i])
	}
	return pattern == path
}

// newID is a CloudFront-like invalidation ID: 14 upper-case characters.
func newID() string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	var b [14]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b[:])
}
