-- Switchboard: append one publication to a channel's stream (wire format 1).
-- KEYS[1] meta hash, KEYS[2] stream, KEYS[3] idempotency key or ''.
-- ARGV[1] the message (a JSON object), ARGV[2] size, ARGV[3] ttl ms,
-- ARGV[4] meta ttl ms, ARGV[5] the pub/sub channel, ARGV[6] a fresh epoch,
-- ARGV[7] idempotency window ms, ARGV[8] durable ('1' or '0'),
-- ARGV[9] the server's run_id ('' when unknown).
-- Returns {epoch, offset, duplicate (0 or 1), instances listening (PUBLISH's answer)}.
local idem = KEYS[3]
if idem ~= '' then
  local seen = redis.call('GET', idem)
  if seen then
    local space = string.find(seen, ' ', 1, true)
    return {string.sub(seen, 1, space - 1), tonumber(string.sub(seen, space + 1)), 1, 0}
  end
end
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
local offset = redis.call('HINCRBY', meta, 'o', 1)
local message = '{"offset":' .. offset .. ',"epoch":"' .. epoch .. '",' .. string.sub(ARGV[1], 2)
local now = redis.call('TIME')
local ms = now[1] * 1000 + math.floor(now[2] / 1000)
redis.call('XADD', stream, 'MAXLEN', ARGV[2], offset .. '-0', 'd', message, 't', ms)
redis.call('PEXPIRE', stream, ARGV[3])
redis.call('PEXPIRE', meta, ARGV[4])
if idem ~= '' then
  redis.call('SET', idem, epoch .. ' ' .. offset, 'PX', ARGV[7])
end
local listening = redis.call('PUBLISH', ARGV[5], message)
return {epoch, offset, 0, listening}
