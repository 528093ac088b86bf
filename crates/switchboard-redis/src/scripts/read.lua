-- Switchboard: read a channel's stream (wire format 1).
-- KEYS[1] meta hash, KEYS[2] stream.
-- ARGV[1] meta ttl ms, ARGV[2] epoch and ARGV[3] offset to read after,
-- ARGV[4] limit, ARGV[5] '1' for newest first, ARGV[6] a fresh epoch,
-- ARGV[7] ttl ms, ARGV[8] durable, ARGV[9] run_id.
-- Returns {epoch, latest offset, id, message, id, message, ...}.
-- The channel's epoch: made afresh (and the stream emptied) when the
-- channel has none, or when Redis restarted since it began (a new run_id)
-- and Redis is not durable.
local meta, stream = KEYS[1], KEYS[2]
local epoch = redis.call('HGET', meta, 'e')
if epoch and ARGV[8] == '0' and ARGV[9] ~= '' then
  local boot = redis.call('HGET', meta, 'r')
  if boot == '' then
    -- Begun by a writer that could not read the run_id: adopt this one.
    redis.call('HSET', meta, 'r', ARGV[9])
  elseif boot and boot ~= ARGV[9] then
    epoch = nil
  end
end
if not epoch then
  epoch = ARGV[6]
  redis.call('DEL', stream)
  redis.call('HSET', meta, 'e', epoch, 'o', 0, 'r', ARGV[9])
end
redis.call('PEXPIRE', meta, ARGV[1])
local top = redis.call('HGET', meta, 'o') or '0'
local out = {epoch, tostring(top)}
local limit = tonumber(ARGV[4])
if limit > 0 then
  local after = 0
  if ARGV[2] == epoch then after = tonumber(ARGV[3]) end
  local entries
  if ARGV[5] == '1' then
    entries = redis.call('XREVRANGE', stream, '+', '(' .. after .. '-0', 'COUNT', limit)
  else
    entries = redis.call('XRANGE', stream, '(' .. after .. '-0', '+', 'COUNT', limit)
  end
  local now = redis.call('TIME')
  local oldest = now[1] * 1000 + math.floor(now[2] / 1000) - tonumber(ARGV[7])
  for _, entry in ipairs(entries) do
    local fields = entry[2]
    local message, at
    for i = 1, #fields, 2 do
      if fields[i] == 'd' then message = fields[i + 1] end
      if fields[i] == 't' then at = tonumber(fields[i + 1]) end
    end
    if message and (not at or at >= oldest) then
      table.insert(out, entry[1])
      table.insert(out, message)
    end
  end
end
return out
