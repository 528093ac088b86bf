-- Switchboard: a channel's presence (wire format 1).
-- KEYS[1] the channel's members hash, KEYS[2] its users hash.
-- ARGV[1] the most members to return.
-- Returns {connections, users, {member, ...}}.
local max = tonumber(ARGV[1])
local conns = redis.call('HLEN', KEYS[1])
local users = redis.call('HLEN', KEYS[2])
local members
if conns <= max then
  members = redis.call('HVALS', KEYS[1])
else
  members = {}
  local cursor = '0'
  repeat
    local page = redis.call('HSCAN', KEYS[1], cursor, 'COUNT', max)
    cursor = page[1]
    for i = 2, #page[2], 2 do
      if #members < max then members[#members + 1] = page[2][i] end
    end
  until cursor == '0' or #members >= max
end
return {conns, users, members}
