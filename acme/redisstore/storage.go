package redisstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/redis/go-redis/v9"
)

// cleanKey puts a key in the canonical form certmagic describes (slash
// separated, no leading or trailing slash), so that "a//b/" and "a/b" name
// one entry; the root directory is "".
func cleanKey(key string) string {
	return strings.Trim(path.Clean("/"+key), "/")
}

// link is one step from a key up to the root: member is listed in dir.
type link struct{ dir, member string }

// parentChain lists the directory entries that make key reachable from the
// root, parent first.
func parentChain(key string) []link {
	var out []link
	for k := key; k != ""; {
		d := path.Dir(k)
		if d == "." {
			d = ""
		}
		out = append(out, link{dir: d, member: k})
		k = d
	}
	return out
}

// Store puts value at key, replacing any previous value. The value, its
// modification time and the directory entries leading to it are written in
// one script. Storing at a key that is a directory, or below a key that is a
// file, is an error, as on a file system.
func (s *Storage) Store(ctx context.Context, key string, value []byte) error {
	k := cleanKey(key)
	if k == "" {
		return fmt.Errorf("redisstore: store %q: empty key", key)
	}
	chain := parentChain(k)
	keys := make([]string, 0, 2+2*len(chain))
	keys = append(keys, s.fileKey(k), s.dirKey(k))
	args := make([]any, 0, 1+len(chain))
	args = append(args, value)
	for _, l := range chain {
		keys = append(keys, s.dirKey(l.dir), s.fileKey(l.dir))
		args = append(args, l.member)
	}
	res, err := s.scripts.store.Run(ctx, s.client, keys, args...).Slice()
	if err != nil {
		return fmt.Errorf("redisstore: store %q: %w", k, err)
	}
	switch {
	case len(res) == 1 && res[0] == "ok":
		return nil
	case len(res) == 1 && res[0] == "isdir":
		return fmt.Errorf("redisstore: store %q: key is a directory", k)
	case len(res) == 2 && res[0] == "parentfile":
		if i, ok := res[1].(int64); ok && i >= 1 && int(i) <= len(chain) {
			return fmt.Errorf("redisstore: store %q: %q is a file, not a directory", k, chain[i-1].dir)
		}
	}
	return fmt.Errorf("redisstore: store %q: unexpected script reply %v", k, res)
}

// Load returns the value last stored at key, or an error wrapping
// fs.ErrNotExist if there is none (directories have no value).
func (s *Storage) Load(ctx context.Context, key string) ([]byte, error) {
	k := cleanKey(key)
	v, err := s.client.HGet(ctx, s.fileKey(k), "v").Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("redisstore: load %q: %w", k, fs.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("redisstore: load %q: %w", k, err)
	}
	return v, nil
}

// Delete removes key, or everything under it if it is a directory, and
// prunes directories left empty. A missing key is not an error.
func (s *Storage) Delete(ctx context.Context, key string) error {
	k := cleanKey(key)
	chain := parentChain(k)
	keys := make([]string, 0, 2+len(chain))
	keys = append(keys, s.fileKey(k), s.dirKey(k))
	args := make([]any, 0, 2+len(chain))
	args = append(args, s.fileKey(""), s.dirKey(""))
	for _, l := range chain {
		keys = append(keys, s.dirKey(l.dir))
		args = append(args, l.member)
	}
	if err := s.scripts.delete.Run(ctx, s.client, keys, args...).Err(); err != nil {
		return fmt.Errorf("redisstore: delete %q: %w", k, err)
	}
	return nil
}

// Exists reports whether key is a file or a directory. The interface has no
// error result, so a Redis failure reports false and is logged: certmagic
// then tries to obtain and fails its storage check, rather than acting on a
// silent "missing".
func (s *Storage) Exists(ctx context.Context, key string) bool {
	k := cleanKey(key)
	n, err := s.client.Exists(ctx, s.fileKey(k), s.dirKey(k)).Result()
	if err != nil {
		s.log.Error().Err(err).Str("key", k).Msg("redisstore: exists check failed; reporting the key as missing")
		return false
	}
	return n > 0
}

// List returns the keys directly under dir, or all keys below it (files and
// directories) if recursive, sorted. A missing dir is an error wrapping
// fs.ErrNotExist; a file lists as empty, as with certmagic's FileStorage.
func (s *Storage) List(ctx context.Context, dir string, recursive bool) ([]string, error) {
	k := cleanKey(dir)
	rec := "0"
	if recursive {
		rec = "1"
	}
	res, err := s.scripts.list.Run(ctx, s.client, []string{s.dirKey(k), s.fileKey(k)}, s.dirKey(""), rec).Slice()
	if err != nil {
		return nil, fmt.Errorf("redisstore: list %q: %w", k, err)
	}
	if len(res) == 0 {
		return nil, fmt.Errorf("redisstore: list %q: empty script reply", k)
	}
	if found, _ := res[0].(int64); found == 0 {
		return nil, fmt.Errorf("redisstore: list %q: %w", k, fs.ErrNotExist)
	}
	out := make([]string, 0, len(res)-1)
	for _, v := range res[1:] {
		m, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("redisstore: list %q: unexpected entry %v", k, v)
		}
		out = append(out, m)
	}
	slices.Sort(out)
	return out, nil
}

// Stat describes key: for a file its size and the Redis time of its last
// Store; a directory is non-terminal with no size or time. A missing key is
// an error wrapping fs.ErrNotExist.
func (s *Storage) Stat(ctx context.Context, key string) (certmagic.KeyInfo, error) {
	k := cleanKey(key)
	res, err := s.scripts.stat.Run(ctx, s.client, []string{s.fileKey(k), s.dirKey(k)}).Slice()
	if err != nil {
		return certmagic.KeyInfo{}, fmt.Errorf("redisstore: stat %q: %w", k, err)
	}
	switch {
	case len(res) == 4 && res[0] == "f":
		sec, err1 := strconv.ParseInt(fmt.Sprint(res[1]), 10, 64)
		usec, err2 := strconv.ParseInt(fmt.Sprint(res[2]), 10, 64)
		size, ok := res[3].(int64)
		if err1 != nil || err2 != nil || !ok {
			return certmagic.KeyInfo{}, fmt.Errorf("redisstore: stat %q: malformed metadata %v", k, res)
		}
		return certmagic.KeyInfo{
			Key:        k,
			Modified:   time.Unix(sec, usec*int64(time.Microsecond)),
			Size:       size,
			IsTerminal: true,
		}, nil
	case len(res) == 1 && res[0] == "d":
		return certmagic.KeyInfo{Key: k, IsTerminal: false}, nil
	case len(res) == 1 && res[0] == "n":
		return certmagic.KeyInfo{}, fmt.Errorf("redisstore: stat %q: %w", k, fs.ErrNotExist)
	}
	return certmagic.KeyInfo{}, fmt.Errorf("redisstore: stat %q: unexpected script reply %v", k, res)
}
