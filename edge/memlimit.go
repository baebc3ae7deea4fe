package edge

import "math"

// The Go memory limit an edge sets for itself (unless GOMEMLIMIT is set):
// the memory tier's bound times memoryLimitFactor plus memoryLimitBase.
// The tier weighs an object by its real heap cost (cache.Memory), so the
// factor is room for garbage between collections (issue 14 measured 1.5x
// when the tier undercounted), and the base covers everything else:
// connections, TLS state, copy buffers, responses in flight, the runtime.
// Near the limit the garbage collector works harder instead of letting
// garbage grow the heap; it is a soft limit, so a live heap above it is
// slowed, not killed.
const (
	memoryLimitFactor = 1.5
	memoryLimitBase   = 256 << 20
	// memoryLimitCeilingShare is the share of a container's memory limit
	// the heap may take, as automemlimit's default: the rest is for
	// memory the Go runtime does not count (stacks in flight, the binary).
	memoryLimitCeilingShare = 0.9
)

// MemoryLimit returns the Go memory limit this config calls for, in bytes:
// the memory tier times 1.5 plus 256 MiB, but at most 90% of ceiling when
// ceiling is not 0 (the memory limit of the process's container).
func (c *Config) MemoryLimit(ceiling uint64) int64 {
	limit := float64(c.Edge.Cache.Memory)*memoryLimitFactor + memoryLimitBase
	if ceiling > 0 {
		limit = math.Min(limit, float64(ceiling)*memoryLimitCeilingShare)
	}
	return int64(math.Min(limit, math.MaxInt64/2))
}
