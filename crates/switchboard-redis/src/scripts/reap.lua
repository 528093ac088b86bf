-- Switchboard: declare an instance dead if its lease ran out (wire format 1).
-- KEYS[1] the leases zset, KEYS[2] its tombstone, KEYS[3] its presence
-- index, KEYS[4] its reaping hash, KEYS[5] its counts hash, KEYS[6] the
-- instances set, KEYS[7] the set of instances being reaped.
-- ARGV[1] the instance, ARGV[2] how long the tombstone lasts, ms.
-- Returns 1 when this caller declared it dead (once per death), else 0.
local deadline = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not deadline then return 0 end
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
if tonumber(deadline) > now then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
if redis.call('EXISTS', KEYS[3]) == 1 then
  if redis.call('EXISTS', KEYS[4]) == 0 then
    redis.call('RENAME', KEYS[3], KEYS[4])
  else
    local all = redis.call('HGETALL', KEYS[3])
    for i = 1, #all, 2 do redis.call('HSET', KEYS[4], all[i], all[i + 1]) end
    redis.call('DEL', KEYS[3])
  end
end
redis.call('DEL', KEYS[5])
redis.call('SREM', KEYS[6], ARGV[1])
redis.call('SADD', KEYS[7], ARGV[1])
return 1
