// The Lua script that commits one batch on one Redis instance, atomically: for each channel, its
// epoch (set once, from the first node's candidate), then each event: a known Idempotency-Key answers
// with its seq (negated); else the channel's seq is incremented, the event appended to its Stream
// (entry id <seq>-0, capped at about `maxlen`; the Stream expires `ttl` after its last event), the key
// recorded for `ttl`, the state records set or erased; finally one PUBLISH per channel carries its new
// events to the nodes that watch it. Keys carry the agent id as a hash tag: aw:{agent}:meta|events|
// state|key:<k>.
//
// ARGV: now_ms, maxlen, ttl_ms, channel prefix (for PUBLISH), channel count, then per channel: agent
// id, candidate epoch, draft count, then per draft: type, data, key, mergeable (0/1), record count,
// then per record: kind, id, json (empty: erase).
// Returns per channel: {epoch, seq or -seq_of_duplicate, ...}.
// A message is, per event: "<seq> <ts> <m> <#type> <#key> <#data>\n" type key data.
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
  local msg = {}
  for d = 1, nd do
    local typ, data, key, merge, nr = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], tonumber(ARGV[i + 4])
    i = i + 5
    local seen = false
    if key ~= '' then seen = redis.call('GET', p .. 'key:' .. key) end
    if seen then
      res[#res + 1] = -tonumber(seen)
      i = i + 3 * nr
    else
      local seq = redis.call('HINCRBY', p .. 'meta', 'seq', 1)
      redis.call('XADD', p .. 'events', 'MAXLEN', '~', maxlen, seq .. '-0',
                 't', now, 'type', typ, 'data', data, 'key', key, 'm', merge)
      if key ~= '' then redis.call('SET', p .. 'key:' .. key, seq, 'PX', ttl) end
      for r = 1, nr do
        local field = ARGV[i] .. '\0' .. ARGV[i + 1]
        if ARGV[i + 2] == '' then
          redis.call('HDEL', p .. 'state', field)
        else
          redis.call('HSET', p .. 'state', field, ARGV[i + 2])
        end
        i = i + 3
      end
      res[#res + 1] = seq
      msg[#msg + 1] = seq .. ' ' .. now .. ' ' .. merge .. ' ' .. #typ .. ' ' .. #key .. ' ' .. #data .. '\n'
                      .. typ .. key .. data
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

}  // namespace aw::broker::redis
