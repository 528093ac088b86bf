-- Switchboard: remove a connection from a channel's presence (wire format 1).
-- KEYS as presence_add.lua (KEYS[5]: the index the entry is listed in,
-- the instance's or, when reaping, the dead instance's).
-- ARGV[1] the connection address, ARGV[2] 'user', 'connection' or 'off',
-- ARGV[3] the channel, ARGV[4] the grace in ms.
-- Returns the member (JSON) when a leave is due now, else nil. Whoever
-- deletes the member decides: a member is removed, and announced, once.
redis.call('HDEL', KEYS[5], ARGV[3] .. '\n' .. ARGV[1])
local member = redis.call('HGET', KEYS[1], ARGV[1])
if not member then return false end
redis.call('HDEL', KEYS[1], ARGV[1])
local user = cjson.decode(member).user
if type(user) ~= 'string' then return member end
local n = redis.call('HINCRBY', KEYS[2], user, -1)
if n > 0 then
  if ARGV[2] == 'user' then return false end
  return member
end
redis.call('HDEL', KEYS[2], user)
if ARGV[2] ~= 'user' or ARGV[4] == '0' then return member end
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local field = ARGV[3] .. '\n' .. user
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[4]), field)
redis.call('HSET', KEYS[4], field, member)
return false
