-- Switchboard: add a member to a channel's presence (wire format 1).
-- KEYS[1] the channel's members hash, KEYS[2] its users hash, KEYS[3] the
-- held-leaves zset, KEYS[4] the held-leaves data hash, KEYS[5] the
-- instance's index hash.
-- ARGV[1] the connection address, ARGV[2] the member (JSON), ARGV[3] the
-- user ('' when anonymous), ARGV[4] 'user', 'connection', 'off' or
-- 'quiet' (a resync: no event), ARGV[5] the channel.
-- Returns 1 when a join is due, else 0.
redis.call('HSET', KEYS[5], ARGV[5] .. '\n' .. ARGV[1], '')
if redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  return 0
end
local user = ARGV[3]
if user == '' then
  if ARGV[4] == 'quiet' then return 0 end
  return 1
end
local n = redis.call('HINCRBY', KEYS[2], user, 1)
local back = false
if n == 1 then
  -- The user's first connection here: a leave held for them is cancelled.
  local field = ARGV[5] .. '\n' .. user
  if redis.call('ZREM', KEYS[3], field) == 1 then
    redis.call('HDEL', KEYS[4], field)
    back = true
  end
end
if ARGV[4] == 'quiet' then return 0 end
if ARGV[4] ~= 'user' then return 1 end
if n == 1 and not back then return 1 end
return 0
