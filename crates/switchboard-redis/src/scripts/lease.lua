-- Switchboard: renew an instance's lease (wire format 1).
-- KEYS[1] the leases zset, KEYS[2] the instance's tombstone.
-- ARGV[1] the instance, ARGV[2] the lease in ms ('0': give it up now, on
-- shutdown, so that what is left is reaped at once).
-- Returns 1, or 0 when the instance was declared dead.
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return 1
