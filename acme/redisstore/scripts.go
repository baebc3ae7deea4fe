package redisstore

import "github.com/redis/go-redis/v9"

// scripts are the Lua scripts that make each operation atomic. They are run
// with EVALSHA and re-sent with EVAL when Redis has lost its script cache
// (after a restart), which go-redis's Script does.
type scripts struct {
	store, delete, list, stat *redis.Script
	acquire, refresh, unlock  *redis.Script
}

func newScripts() scripts {
	return scripts{
		store:   redis.NewScript(storeLua),
		delete:  redis.NewScript(deleteLua),
		list:    redis.NewScript(listLua),
		stat:    redis.NewScript(statLua),
		acquire: redis.NewScript(acquireLua),
		refresh: redis.NewScript(refreshLua),
		unlock:  redis.NewScript(unlockLua),
	}
}

// storeLua writes a file and links it into every ancestor directory index.
// A key is a file or a directory, never both, as on a file system, so that
// Stat and Delete stay unambiguous.
//
// KEYS[1] file, KEYS[2] the key as a directory, then for each ancestor from
// the parent up to the root: KEYS[1+2i] its directory index, KEYS[2+2i] the
// ancestor as a file. ARGV[1] value, ARGV[1+i] the member to add to
// ancestor i (the full key of its child on the way down).
// Modification time is Redis's clock, the same for every node.
const storeLua = `
if redis.call('EXISTS', KEYS[2]) == 1 then return {'isdir'} end
local n = (#KEYS - 2) / 2
for i = 1, n do
  if redis.call('EXISTS', KEYS[2 + 2*i]) == 1 then return {'parentfile', i} end
end
local t = redis.call('TIME')
redis.call('HSET', KEYS[1], 'v', ARGV[1], 's', t[1], 'us', t[2])
for i = 1, n do redis.call('SADD', KEYS[1 + 2*i], ARGV[1 + i]) end
return {'ok'}
`

// deleteLua deletes a file, or a directory and everything under it, then
// unlinks it from its parent and prunes ancestors left empty.
//
// KEYS[1] file, KEYS[2] the key as a directory, KEYS[2+i] the index of
// ancestor i (parent first). ARGV[1] file key prefix, ARGV[2] directory key
// prefix, ARGV[2+i] the member to remove from ancestor i.
// Returns 1 if something was deleted.
const deleteLua = `
local fp, dp = ARGV[1], ARGV[2]
local removed = redis.call('DEL', KEYS[1])
if redis.call('EXISTS', KEYS[2]) == 1 then
  local stack = {KEYS[2]}
  while #stack > 0 do
    local d = table.remove(stack)
    for _, m in ipairs(redis.call('SMEMBERS', d)) do
      redis.call('DEL', fp .. m)
      local cd = dp .. m
      if redis.call('EXISTS', cd) == 1 then table.insert(stack, cd) end
    end
    redis.call('DEL', d)
  end
  removed = 1
end
for i = 1, #KEYS - 2 do
  redis.call('SREM', KEYS[2 + i], ARGV[2 + i])
  if redis.call('EXISTS', KEYS[2 + i]) == 1 then break end
end
return removed
`

// listLua lists a directory's children, or its whole subtree, in one
// consistent snapshot.
//
// KEYS[1] the directory index, KEYS[2] the key as a file. ARGV[1] directory
// key prefix, ARGV[2] "1" for recursive.
// Returns {0} if nothing is there, {1, keys...} otherwise (a file lists as
// empty, as certmagic's FileStorage does).
const listLua = `
if redis.call('EXISTS', KEYS[1]) == 0 then
  if redis.call('EXISTS', KEYS[2]) == 1 then return {1} end
  return {0}
end
local out = {1}
local stack = {KEYS[1]}
while #stack > 0 do
  local d = table.remove(stack)
  for _, m in ipairs(redis.call('SMEMBERS', d)) do
    table.insert(out, m)
    if ARGV[2] == '1' then
      local cd = ARGV[1] .. m
      if redis.call('EXISTS', cd) == 1 then table.insert(stack, cd) end
    end
  end
end
return out
`

// statLua reports a key as file {'f', seconds, microseconds, size},
// directory {'d'} or missing {'n'}. KEYS[1] file, KEYS[2] directory index.
const statLua = `
local r = redis.call('HMGET', KEYS[1], 's', 'us')
if r[1] then return {'f', r[1], r[2], redis.call('HSTRLEN', KEYS[1], 'v')} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {'d'} end
return {'n'}
`

// acquireLua takes a lease with SET NX PX. If the key already holds this
// very token, the attempt is a client retry of a SET whose reply was lost,
// and the lease is ours.
// KEYS[1] lock, ARGV[1] token, ARGV[2] TTL in milliseconds.
// Returns {1} when acquired, else {0, milliseconds left on the current lease
// (negative if it has no expiry or vanished meanwhile)}.
const acquireLua = `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return {1} end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1}
end
return {0, redis.call('PTTL', KEYS[1])}
`

// refreshLua extends a lease only for the holder of its token.
// KEYS[1] lock, ARGV[1] token, ARGV[2] TTL in milliseconds.
const refreshLua = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`

// unlockLua deletes a lease only for the holder of its token, so that a
// holder whose lease expired cannot release its successor's lock.
// KEYS[1] lock, ARGV[1] token.
const unlockLua = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`
