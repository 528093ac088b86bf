-- Switchboard: take the held leaves whose grace ended (wire format 1).
-- KEYS[1] the held-leaves zset, KEYS[2] the held-leaves data hash.
-- ARGV[1] the most to take.
-- Returns {field, member, field, member, ...}; each is handed out once.
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local out = {}
for _, field in ipairs(due) do
  redis.call('ZREM', KEYS[1], field)
  local member = redis.call('HGET', KEYS[2], field)
  redis.call('HDEL', KEYS[2], field)
  if member then
    out[#out + 1] = field
    out[#out + 1] = member
  end
end
return out
