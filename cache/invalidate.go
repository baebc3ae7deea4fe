package cache

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
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
// time is covered by a later one.
//
// Cluster design: a record {id, paths, time} goes into a sorted set (score =
// time) and is published on a channel. Every edge's Run subscribes, applies
// the record to an in-memory, copy-on-write list, and acknowledges it in a
// per-invalidation set; it also re-reads the sorted set every PollInterval
// and on start, so a lost message is only late, never lost. An entry is
// invalid when a matching record is newer than the entry's RequestTime (less
// Skew); nothing is deleted from Redis, so no keyspace scan is ever needed:
// Redis entries expire by their TTL and are refused on read meanwhile.
// Status is Completed once every edge with a recent heartbeat acknowledged.
type Invalidator struct {
	o     InvalidatorOptions
	snap  atomic.Pointer[invSnapshot]
	mu    sync.Mutex // serialises snapshot writers
	hooks []func(Invalidation)
}

type invRecord struct {
	Invalidation
	patterns []string // decoded
}

type invSnapshot struct {
	recs    []invRecord // sorted by CreateTime
	horizon time.Time   // newest forgotten record
}

// NewInvalidator builds an Invalidator; call Run to join the cluster.
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
	v := &Invalidator{o: o}
	v.snap.Store(&invSnapshot{})
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
// origin at fetched, is covered by an invalidation. It is lock-free and
// touches only invalidations newer than the entry.
func (v *Invalidator) Invalidated(path string, fetched time.Time) bool {
	s := v.snap.Load()
	if fetched.Before(s.horizon) {
		return true
	}
	after := fetched.Add(-v.o.Skew)
	i := sort.Search(len(s.recs), func(i int) bool { return s.recs[i].CreateTime.After(after) })
	for _, r := range s.recs[i:] {
		for _, p := range r.patterns {
			if matchPattern(p, path) {
				return true
			}
		}
	}
	return false
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

// Invalidate records an invalidation of the path patterns ("/index.html",
// "/images/*"; "*" matches any run of characters, "/" included; query
// strings are not part of a pattern: every variant of a path goes) and shares
// it with the cluster. It is in force on this edge when Invalidate returns;
// an error means other edges may not have it, and the request should be
// retried.
func (v *Invalidator) Invalidate(ctx context.Context, paths []string) (Invalidation, error) {
	if len(paths) == 0 || len(paths) > MaxInvalidationPaths {
		return Invalidation{}, fmt.Errorf("invalidate: need 1 to %d paths, got %d", MaxInvalidationPaths, len(paths))
	}
	clean := make([]string, 0, len(paths))
	for _, p := range paths {
		p = strings.TrimSpace(p)
		if p == "" || len(p) > 4096 {
			return Invalidation{}, fmt.Errorf("invalidate: path %q is empty or too long", p)
		}
		if !strings.HasPrefix(p, "/") {
			p = "/" + p
		}
		clean = append(clean, p)
	}
	inv := Invalidation{ID: newID(), Paths: clean, CreateTime: v.o.Now()}
	v.apply(inv)
	if v.o.Redis == nil {
		inv.Status = Completed
		return inv, nil
	}
	inv.Status = InProgress
	data, err := json.Marshal(inv)
	if err != nil {
		return inv, fmt.Errorf("invalidate: encode record: %w", err)
	}
	pipe := v.o.Redis.TxPipeline()
	pipe.ZAdd(ctx, v.key("log"), redis.Z{Score: float64(inv.CreateTime.UnixMilli()), Member: data})
	pipe.Set(ctx, v.key("rec:"+inv.ID), data, v.o.Retention)
	pipe.SAdd(ctx, v.key("ack:"+inv.ID), v.o.Node)
	pipe.Expire(ctx, v.key("ack:"+inv.ID), v.o.Retention)
	pipe.Publish(ctx, v.key("events"), data)
	if _, err := pipe.Exec(ctx); err != nil {
		return inv, fmt.Errorf("invalidate %s: applied on this edge only, sharing failed: %w", inv.ID, err)
	}
	return inv, nil
}

// Status reports an invalidation by ID: Completed once every live edge has
// applied it.
func (v *Invalidator) Status(ctx context.Context, id string) (Invalidation, error) {
	if v.o.Redis == nil {
		for _, r := range v.snap.Load().recs {
			if r.ID == id {
				inv := r.Invalidation
				inv.Status = Completed
				return inv, nil
			}
		}
		return Invalidation{}, fmt.Errorf("invalidation %q: %w", id, ErrNotFound)
	}
	data, err := v.o.Redis.Get(ctx, v.key("rec:"+id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return Invalidation{}, fmt.Errorf("invalidation %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return Invalidation{}, fmt.Errorf("invalidation %q status: %w", id, err)
	}
	var inv Invalidation
	if err := json.Unmarshal(data, &inv); err != nil {
		return Invalidation{}, fmt.Errorf("invalidation %q: decode record: %w", id, err)
	}
	live, err := v.o.Redis.ZRangeByScore(ctx, v.key("nodes"), &redis.ZRangeBy{
		Min: strconv.FormatInt(v.o.Now().Add(-5*v.o.Heartbeat).UnixMilli(), 10), Max: "+inf"}).Result()
	if err != nil {
		return Invalidation{}, fmt.Errorf("invalidation %q status: list edges: %w", id, err)
	}
	acked, err := v.o.Redis.SMembers(ctx, v.key("ack:"+id)).Result()
	if err != nil {
		return Invalidation{}, fmt.Errorf("invalidation %q status: acknowledgements: %w", id, err)
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
		<-ctx.Done()
		return nil
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

// poll re-reads the record log, so nothing Pub/Sub dropped is missed, and
// trims records past Retention.
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
	for _, r := range recs {
		var inv Invalidation
		if json.Unmarshal([]byte(r), &inv) == nil {
			v.learn(ctx, inv)
		}
	}
}

// learn applies a record from the cluster once and acknowledges it.
func (v *Invalidator) learn(ctx context.Context, inv Invalidation) {
	if !v.apply(inv) {
		return
	}
	pipe := v.o.Redis.Pipeline()
	pipe.SAdd(ctx, v.key("ack:"+inv.ID), v.o.Node)
	pipe.Expire(ctx, v.key("ack:"+inv.ID), v.o.Retention)
	if _, err := pipe.Exec(ctx); err != nil && ctx.Err() == nil {
		v.o.Logger.Warn().Err(err).Str("invalidation", inv.ID).Msg("cache: cannot acknowledge invalidation")
	}
}

// apply adds a record to the snapshot; false if it was known already.
func (v *Invalidator) apply(inv Invalidation) bool {
	v.mu.Lock()
	old := v.snap.Load()
	for _, r := range old.recs {
		if r.ID == inv.ID {
			v.mu.Unlock()
			return false
		}
	}
	rec := invRecord{Invalidation: inv}
	for _, p := range inv.Paths {
		rec.patterns = append(rec.patterns, decodePattern(p))
	}
	recs := append(slices.Clip(old.recs), rec)
	slices.SortStableFunc(recs, func(a, b invRecord) int { return a.CreateTime.Compare(b.CreateTime) })
	v.snap.Store(&invSnapshot{recs: recs, horizon: old.horizon})
	hooks := slices.Clone(v.hooks)
	v.mu.Unlock()
	if v.o.OnApply != nil {
		v.o.OnApply(inv)
	}
	for _, h := range hooks {
		h(inv)
	}
	return true
}

// prune forgets records past Retention, moving the horizon up to them.
func (v *Invalidator) prune() {
	v.mu.Lock()
	defer v.mu.Unlock()
	old := v.snap.Load()
	cutoff := v.o.Now().Add(-v.o.Retention)
	i := sort.Search(len(old.recs), func(i int) bool { return old.recs[i].CreateTime.After(cutoff) })
	if i == 0 {
		return
	}
	v.snap.Store(&invSnapshot{recs: slices.Clone(old.recs[i:]), horizon: old.recs[i-1].CreateTime.Add(v.o.Skew)})
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

// matchPattern matches a path against a pattern where '*' stands for any
// run of characters; greedy matching that backtracks only to the last star,
// so a hostile pattern costs at most len(pattern)·len(path) steps.
func matchPattern(pattern, path string) bool {
	p, s := 0, 0
	star, mark := -1, 0
	for s < len(path) {
		switch {
		case p < len(pattern) && pattern[p] == '*':
			star, mark = p, s
			p++
		case p < len(pattern) && pattern[p] == path[s]:
			p++
			s++
		case star >= 0:
			p = star + 1
			mark++
			s = mark
		default:
			return false
		}
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
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
