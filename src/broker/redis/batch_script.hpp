// The Lua script that commits one batch on one Redis instance, atomically: for each channel, its
// epoch (set once, from the first node's candidate), then each event: a known Idempotency-Key answers
// with its seq (negated); a draft decided against a state version (`expect`) that is no longer the
// channel's answers 0 (conflict: nothing of it is stored); else the channel's seq is incremented, the
// event appended to its Stream (entry id <seq>-0, capped at about `maxlen`; the Stream expires `ttl`
// after its last event), the key recorded for `ttl`, the state records set or erased and, when it has
// any, the state version (`ver` of meta) incremented; finally one PUBLISH per channel carries its new
// events, each with its state records (cold ones excepted) and the version after it, to the nodes that
// watch it. Keys carry the agent id as a hash tag: aw:{agent}:meta|events|state|key:<k>.
//
// ARGV: now_ms, maxlen, ttl_ms, channel prefix (for PUBLISH), channel count, then per channel: agent
// id, candidate epoch, draft count, then per draft: type, data, key, mergeable (0/1), expected version
// (empty: none), record count, then per record: kind, id, json (empty: erase).
// Returns per channel: {epoch, then per draft: seq (or -seq_of_duplicate, or 0: conflict), version}.
// A message is, per event: "<seq> <ts> <m> <#type> <#key> <#data> <version> <records>\n" type key
// data, then per record "<#kind> <#id> <#json>\n" kind id json.
#pragma once

namespace aw::broker::redis {

inline constexpr const char* kBatchScript = R"lua(
local now, maxlen, ttl, live = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local i, out = 6, {}
for c = 1, tonumber(ARGV[5]) do
  local agent, cand, nd = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  i = i + 3
  local p = 'aw:{' .. agent .. '}:'
  redis.call('HSETNX', p .. 'meta', 'epoch', cand)
  local res = {redis.call('HGET', p .. 'meta', 'epoch')}
  local ver = tonumber(redis.call('HGET', p .. 'meta', 'ver') or '0')
  local msg = {}
  for d = 1, nd do
    local typ, data, key, merge, expect, nr =
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
      local seq = redis.call('HINCRBY', p .. 'meta', 'seq', 1)
      redis.call('XADD', p .. 'events', 'MAXLEN', '~', maxlen, seq .. '-0',
                 't', now, 'type', typ, 'data', data, 'key', key, 'm', merge)
      if key ~= '' then redis.call('SET', p .. 'key:' .. key, seq, 'PX', ttl) end
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
      if nr > 0 then ver = redis.call('HINCRBY', p .. 'meta', 'ver', 1) end
      res[#res + 1] = seq
      res[#res + 1] = ver
      msg[#msg + 1] = seq .. ' ' .. now .. ' ' .. merge .. ' ' .. #typ .. ' ' .. #key .. ' ' .. #data .. ' '
                      .. ver .. ' ' .. #recs .. '\n' .. typ .. key .. data .. table.concat(recs)
    end
  end
  if #msg > 0 then
    redis.call('PEXPIRE', p .. 'events', ttl)
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
local meta = redis.call('HMGET', p .. 'meta', 'epoch', 'seq', 'ver')
local state = false
if ARGV[2] == '' or ARGV[2] ~= (meta[3] or '0') then state = redis.call('HGETALL', p .. 'state') end
return {meta[1], meta[2], meta[3], state}
)lua";

}  // namespace aw::broker::redis
