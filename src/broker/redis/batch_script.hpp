// The Lua script that commits one batch on one Redis instance, atomically: for each channel, its
// epoch (set once, from the first node's candidate), then each event: a known Idempotency-Key answers
// with its seq (negated); a draft decided against a state version (`expect`) that is no longer the
// channel's answers 0 (conflict: nothing of it is stored); else the event takes the next seq, is
// appended to the channel's Stream (entry id <seq>-0, one field `e` holding the event as the message
// below encodes it; capped at about `maxlen`), its key recorded for `ttl`, the state records set or
// erased and, when it has any, the state version bumped; finally the channel's seq and version are
// written back (`meta`) and one PUBLISH carries its new events to the nodes that watch it.
// The Stream expires between `ttl` and 9/8 `ttl` after its last event: its expiry is pushed out by
// 9/8 `ttl` only when less than `ttl` is left (meta's `exp`), which spares a PEXPIRE per publish.
// Each channel costs four commands and one PUBLISH however many events it has: this script is where a
// Redis-mode node's publish rate goes (docs/performance.md).
// Keys carry the agent id as a hash tag: aw:{agent}:meta|events|state|key:<k>.
//
// ARGV: now_ms, maxlen, ttl_ms, channel prefix (for PUBLISH), channel count, then per channel: agent
// id, candidate epoch, draft count, then per draft: type, data, key, its encoding's tail (below: the
// part the node knows), expected version (empty: none), record count, then per record: kind, id, json
// (empty: erase).
// Returns per channel: {epoch, then per draft: seq (or -seq_of_duplicate, or 0: conflict), version}.
// An event is encoded (in the Stream and in messages, which hold a channel's new events one after
// another) as "<seq> <version> <tail>\n" type key data, where tail is "<ts> <m> <#type> <#key> <#data>
// <records>" (m: 1 when mergeable; records: how many follow), then per record "<#kind> <#id> <#json>\n"
// kind id json (cold records, kind "~…", are not sent). The node sends the tail ready-made: Lua turns
// numbers into text with printf, a cost per number Redis pays for every event.
#pragma once

namespace aw::broker::redis {

inline constexpr const char* kBatchScript = R"lua(
local now, maxlen, ttl, live = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local now_ms, slack = tonumber(now), math.floor(ttl / 8)
local i, out = 6, {}
for c = 1, tonumber(ARGV[5]) do
  local agent, cand, nd = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  i = i + 3
  local p = 'aw:{' .. agent .. '}:'
  local meta = redis.call('HMGET', p .. 'meta', 'epoch', 'seq', 'ver', 'exp')
  local epoch = meta[1]
  if not epoch then
    epoch = cand
    redis.call('HSET', p .. 'meta', 'epoch', cand)
  end
  local seq, ver = tonumber(meta[2] or '0'), tonumber(meta[3] or '0')
  local res, msg, first = {epoch}, {}, seq
  local vs = tostring(ver)
  for d = 1, nd do
    local typ, data, key, tail, expect, nr =
      ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], tonumber(ARGV[i + 5])
    i = i + 6
    local seen = false
    if key ~= '' then seen = redis.call('GET', p .. 'key:' .. key) end
    if seen then
      res[#res + 1] = -tonumber(seen)
      res[#res + 1] = ver
      i = i + 3 * nr
    elseif expect ~= '' and tonumber(expect) ~= ver then
      res[#res + 1] = 0
      res[#res + 1] = ver
      i = i + 3 * nr
    else
      seq = seq + 1
      local s = tostring(seq)
      if key ~= '' then redis.call('SET', p .. 'key:' .. key, s, 'PX', ttl) end
      local recs = {}
      for r = 1, nr do
        local kind, id, json = ARGV[i], ARGV[i + 1], ARGV[i + 2]
        local field = kind .. '\0' .. id
        if json == '' then
          redis.call('HDEL', p .. 'state', field)
        else
          redis.call('HSET', p .. 'state', field, json)
        end
        if string.sub(kind, 1, 1) ~= '~' then
          recs[#recs + 1] = #kind .. ' ' .. #id .. ' ' .. #json .. '\n' .. kind .. id .. json
        end
        i = i + 3
      end
      if nr > 0 then
        ver = ver + 1
        vs = tostring(ver)
      end
      res[#res + 1] = seq
      res[#res + 1] = ver
      local e = s .. ' ' .. vs .. ' ' .. tail .. '\n' .. typ .. key .. data .. table.concat(recs)
      redis.call('XADD', p .. 'events', 'MAXLEN', '~', maxlen, s .. '-0', 'e', e)
      msg[#msg + 1] = e
    end
  end
  if seq ~= first then
    if tonumber(meta[4] or '0') - now_ms < ttl then
      redis.call('HSET', p .. 'meta', 'seq', tostring(seq), 'ver', vs, 'exp', tostring(now_ms + ttl + slack))
      redis.call('PEXPIRE', p .. 'events', ttl + slack)
    else
      redis.call('HSET', p .. 'meta', 'seq', tostring(seq), 'ver', vs)
    end
    redis.call('PUBLISH', live .. '{' .. agent .. '}:live', table.concat(msg))
  end
  out[#out + 1] = res
end
return out
)lua";

// Reads a channel's position and state version and, unless the version is still ARGV[2] (empty: read
// it anyway), its state, in one atomic step. ARGV: agent id, known version.
// Returns {epoch or false, seq or false, version or false, state as HGETALL or false}.
inline constexpr const char* kLoadStateScript = R"lua(
local p = 'aw:{' .. ARGV[1] .. '}:'
local meta = redis.call('HMGET', p .. 'meta', 'epoch', 'seq', 'ver', 'exp')
local state = false
if ARGV[2] == '' or ARGV[2] ~= (meta[3] or '0') then state = redis.call('HGETALL', p .. 'state') end
return {meta[1], meta[2], meta[3], state}
)lua";

}  // namespace aw::broker::redis
