/**
 * The Lua scripts that make each shared-state change one atomic step in
 * Redis (a script runs alone: no other command interleaves). Every change
 * that readers must see bumps `version` and PUBLISHes it on `events` inside
 * the same script, so an announcement never precedes its data. Writes of the
 * compiling node are fenced: they happen only while its token still holds
 * the compile lock, so a node that lost the lock (paused, partitioned) cannot
 * overwrite its successor's map or checkpoint.
 */

/** Compares two stream ids ("ms-seq"); Lua numbers are doubles, exact for ms timestamps. */
const STREAM_ID_LESS = `
local function idless(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  if am ~= bm then return am < bm end
  return as < bs
end
`

/**
 * KEYS: version, map:version, map, map:source, operator, operator:rev, health
 * ARGV: version the caller holds, map version the caller holds
 * → {version} when nothing changed, else {version, mapVersion, map or nil when
 *   the caller holds that map version, source, operator, rev, health}.
 */
export const FETCH_SCRIPT = `
local v = redis.call('GET', KEYS[1]) or '0'
if v == ARGV[1] then return {v} end
local mv = redis.call('GET', KEYS[2]) or '0'
local map = false
if mv ~= ARGV[2] then map = redis.call('GET', KEYS[3]) end
return {v, mv, map, redis.call('GET', KEYS[4]), redis.call('GET', KEYS[5]), redis.call('GET', KEYS[6]) or '0', redis.call('GET', KEYS[7])}
`

/**
 * KEYS: compile-lock, map:version, map, map:source, version, events, audit
 * ARGV: fence token ('' for an unfenced import), map version, map JSON, source, audit cap, audit entry ('' for none)
 * → {1, state version} published; {0, 0} fenced out (the lock is not ours);
 *   {-1, current map version} not newer than the published map.
 */
export const PUBLISH_MAP_SCRIPT = `
if ARGV[1] ~= '' and redis.call('GET', KEYS[1]) ~= ARGV[1] then return {0, 0} end
local cur = tonumber(redis.call('GET', KEYS[2]) or '0')
if tonumber(ARGV[2]) <= cur then return {-1, cur} end
redis.call('SET', KEYS[3], ARGV[3])
redis.call('SET', KEYS[2], ARGV[2])
redis.call('SET', KEYS[4], ARGV[4])
if ARGV[6] ~= '' then
  redis.call('RPUSH', KEYS[7], ARGV[6])
  redis.call('LTRIM', KEYS[7], -tonumber(ARGV[5]), -1)
end
local v = redis.call('INCR', KEYS[5])
redis.call('PUBLISH', KEYS[6], '{"version":' .. v .. ',"kind":"map","mapVersion":' .. ARGV[2] .. '}')
return {1, v}
`

/**
 * KEYS: operator:rev, operator, audit, version, events
 * ARGV: the rev the change was computed from, new operator JSON, audit cap, audit entries...
 * → {1, state version, new rev}, or {0, current rev} when another write came first.
 */
export const WRITE_OPERATOR_SCRIPT = `
local rev = tonumber(redis.call('GET', KEYS[1]) or '0')
if rev ~= tonumber(ARGV[1]) then return {0, rev} end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('SET', KEYS[1], rev + 1)
for i = 4, #ARGV do redis.call('RPUSH', KEYS[3], ARGV[i]) end
if #ARGV >= 4 then redis.call('LTRIM', KEYS[3], -tonumber(ARGV[3]), -1) end
local v = redis.call('INCR', KEYS[4])
redis.call('PUBLISH', KEYS[5], '{"version":' .. v .. ',"kind":"operator"}')
return {1, v, rev + 1}
`

/**
 * KEYS: compile-lock, health, health:checks, version, events
 * ARGV: fence token, health JSON, checks JSON
 * → state version, or 0 when fenced out.
 */
export const PUBLISH_HEALTH_SCRIPT = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('SET', KEYS[3], ARGV[3])
local v = redis.call('INCR', KEYS[4])
redis.call('PUBLISH', KEYS[5], '{"version":' .. v .. ',"kind":"health"}')
return v
`

/**
 * KEYS: compile-lock, aggregator checkpoint, measurements stream
 * ARGV: fence token, last stream id included, checkpoint JSON
 * → 1 written (and the stream trimmed below that id), 0 fenced out, -1 older than the stored one.
 */
export const CHECKPOINT_SCRIPT =
  STREAM_ID_LESS +
  `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
local old = redis.call('GET', KEYS[2])
if old then
  local oldId = cjson.decode(old)['lastId']
  if oldId and idless(ARGV[2], oldId) then return -1 end
end
redis.call('SET', KEYS[2], ARGV[3])
if ARGV[2] ~= '0-0' then redis.call('XTRIM', KEYS[3], 'MINID', ARGV[2]) end
return 1
`

/** KEYS: compile-lock. ARGV: token, ttl ms → 1 extended, 0 not ours. */
export const LOCK_RENEW_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`

/** KEYS: compile-lock. ARGV: token → 1 released, 0 not ours. */
export const LOCK_RELEASE_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`

/**
 * Writes a whole state into an empty store (Redis restarted without its data,
 * or a new one): only when `version` does not exist.
 * KEYS: version, map:version, map, map:source, operator, operator:rev, health, events
 * ARGV: version, map version, map JSON ('' for none), source, operator JSON, rev, health JSON
 * → 1 seeded, 0 the store holds a state already.
 */
export const SEED_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if ARGV[3] ~= '' then
  redis.call('SET', KEYS[3], ARGV[3])
  redis.call('SET', KEYS[2], ARGV[2])
  redis.call('SET', KEYS[4], ARGV[4])
end
redis.call('SET', KEYS[5], ARGV[5])
redis.call('SET', KEYS[6], ARGV[6])
redis.call('SET', KEYS[7], ARGV[7])
redis.call('SET', KEYS[1], ARGV[1])
redis.call('PUBLISH', KEYS[8], '{"version":' .. ARGV[1] .. ',"kind":"seed"}')
return 1
`
