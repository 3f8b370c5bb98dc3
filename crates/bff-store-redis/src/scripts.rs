//! Lua scripts: each store operation that must be atomic runs as one script on the server.
//!
//! Sessions are hashes with the fields `v` (version), `idle`, `abs`, `last` (Unix seconds),
//! `rec` (the rest, JSON), `isid`/`isub` (the index sets of its first login it is in) and
//! `icon` (a JSON array of the index sets of its connections' logins it is in). An update leaves
//! the sets of connections it drops and a delete leaves them all, so a set names only sessions
//! that hold its connection. (A session written before `icon` existed has none: its stale
//! members stay until the set expires, and readers check each session they find.) The key
//! expires at the earlier of idle and absolute expiry; scripts also compare against the caller's
//! `now`, so a session is gone the moment it expires even if Redis has not evicted it yet.

/// KEYS: session, sid index ('' for none), subject index, then the connection index sets.
/// ARGV: version, idle, abs, last, rec, member, index expiry.
pub(crate) const CREATE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local connections = {}
for i = 4, #KEYS do connections[#connections + 1] = KEYS[i] end
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'idle', ARGV[2], 'abs', ARGV[3], 'last', ARGV[4],
  'rec', ARGV[5], 'isid', KEYS[2], 'isub', KEYS[3], 'icon', cjson.encode(connections))
redis.call('EXPIREAT', KEYS[1], math.min(tonumber(ARGV[2]), tonumber(ARGV[3])))
local function index(set)
  redis.call('SADD', set, ARGV[6])
  if redis.call('EXPIRETIME', set) < tonumber(ARGV[7]) then
    redis.call('EXPIREAT', set, ARGV[7])
  end
end
if KEYS[2] ~= '' then index(KEYS[2]) end
index(KEYS[3])
for i = 4, #KEYS do index(KEYS[i]) end
return 1
";

/// KEYS: session, then the connection index sets. ARGV: expected version, now, idle, abs,
/// last, rec, member, index expiry. Returns the new version, -1 when absent or expired, -2 on
/// a version mismatch. The member leaves the sets of the connections the update drops (those
/// in `icon` but not in KEYS) and joins the others; a set expires with its longest-lived
/// session.
pub(crate) const UPDATE: &str = r"
local h = redis.call('HMGET', KEYS[1], 'v', 'idle', 'abs', 'last', 'icon')
if not h[1] then return -1 end
if math.min(tonumber(h[2]), tonumber(h[3])) <= tonumber(ARGV[2]) then return -1 end
if h[1] ~= ARGV[1] then return -2 end
local idle = math.max(tonumber(h[2]), tonumber(ARGV[3]))
local last = math.max(tonumber(h[4]), tonumber(ARGV[5]))
local v = tonumber(h[1]) + 1
local connections, kept = {}, {}
for i = 2, #KEYS do
  connections[#connections + 1] = KEYS[i]
  kept[KEYS[i]] = true
end
if h[5] then
  for _, set in ipairs(cjson.decode(h[5])) do
    if not kept[set] then redis.call('SREM', set, ARGV[7]) end
  end
end
redis.call('HSET', KEYS[1], 'v', v, 'idle', idle, 'abs', ARGV[4], 'last', last, 'rec', ARGV[6],
  'icon', cjson.encode(connections))
redis.call('EXPIREAT', KEYS[1], math.min(idle, tonumber(ARGV[4])))
for i = 2, #KEYS do
  redis.call('SADD', KEYS[i], ARGV[7])
  if redis.call('EXPIRETIME', KEYS[i]) < tonumber(ARGV[8]) then
    redis.call('EXPIREAT', KEYS[i], ARGV[8])
  end
end
return v
";

/// KEYS: session. ARGV: last seen, proposed idle expiry, now. Returns 1, or 0 when absent or
/// expired.
pub(crate) const TOUCH: &str = r"
local h = redis.call('HMGET', KEYS[1], 'idle', 'abs', 'last')
if not h[1] then return 0 end
local cur = tonumber(h[1])
local abs = tonumber(h[2])
if math.min(cur, abs) <= tonumber(ARGV[3]) then return 0 end
local idle = math.max(cur, math.min(tonumber(ARGV[2]), abs))
local last = math.max(tonumber(h[3]), tonumber(ARGV[1]))
redis.call('HSET', KEYS[1], 'idle', idle, 'last', last)
redis.call('EXPIREAT', KEYS[1], math.min(idle, abs))
return 1
";

/// KEYS: session. ARGV: member. Deletes the session and its index entries, its connections'
/// among them; returns 1 if it existed.
pub(crate) const DELETE: &str = r"
local idx = redis.call('HMGET', KEYS[1], 'isid', 'isub', 'icon')
local n = redis.call('DEL', KEYS[1])
if idx[1] and idx[1] ~= '' then redis.call('SREM', idx[1], ARGV[1]) end
if idx[2] and idx[2] ~= '' then redis.call('SREM', idx[2], ARGV[1]) end
if idx[3] then
  for _, set in ipairs(cjson.decode(idx[3])) do redis.call('SREM', set, ARGV[1]) end
end
return n
";

/// KEYS: value. ARGV: expires at, now. 1 when new (or expired), 0 on a replay.
pub(crate) const REPLAY: &str = r"
local e = redis.call('GET', KEYS[1])
if e and tonumber(e) > tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EXAT', ARGV[1])
return 1
";

/// KEYS: lease. ARGV: owner. Deletes the lease only for its owner.
pub(crate) const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// KEYS: renewal alias. ARGV: expires at, now, new key, nonce. 1 when recorded, 0 when a live
/// alias is there (the caller's `now` decides, as for sessions). The key expires with the alias.
pub(crate) const PUT_RENEWAL: &str = r"
local e = redis.call('HGET', KEYS[1], 'exp')
if e and tonumber(e) > tonumber(ARGV[2]) then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'exp', ARGV[1], 'new', ARGV[3], 'nonce', ARGV[4])
redis.call('EXPIREAT', KEYS[1], ARGV[1])
return 1
";
