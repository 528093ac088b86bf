-- Switchboard: publish once per idempotency key (wire format 1).
-- KEYS[1] the key. ARGV[1] the pub/sub channel, ARGV[2] the message,
-- ARGV[3] the window ms. Returns 1 when published, 0 for a retry.
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[3]) then
  redis.call('PUBLISH', ARGV[1], ARGV[2])
  return 1
end
return 0
