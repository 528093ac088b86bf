import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { decodeServerMessage } from "../src/codec.js";

const decode = (value: unknown) => decodeServerMessage(typeof value === "string" ? value : JSON.stringify(value));

describe("decoding server messages", () => {
  test("payload may be omitted when empty; unknown fields are ignored", () => {
    const ping = decode({ type: "PING", id: "p", extra: true });
    assert.ok(ping.ok);
    assert.deepEqual(ping.message.payload, {});
    const ack = decode({ type: "UNSUBSCRIBE_ACK", id: "u", correlation_id: null, payload: { subscriptions: [], more: 1 } });
    assert.ok(ack.ok);
  });

  test("refuses what the client could not act on", () => {
    const cases: [unknown, RegExp][] = [
      ["{", /not JSON/],
      ["[1]", /not a JSON object/],
      [{ id: "x" }, /unknown message type/],
      [{ type: "ping", id: "x" }, /unknown message type/],
      [{ type: "ACTION", id: "x", payload: { action: "a" } }, /not sent by servers/],
      [{ type: "PING" }, /without a string id/],
      [{ type: "PING", id: "x", correlation_id: 5 }, /correlation_id/],
      [{ type: "PING", id: "x", timestamp: "now" }, /timestamp/],
      [{ type: "PING", id: "x", payload: [] }, /payload is not an object/],
      [{ type: "ERROR", id: "x", payload: { code: "internal" } }, /message/],
      [{ type: "AUTHENTICATE_SUCCESS", id: "x", payload: { user_id: "a", permissions: [] } }, /expires_at/],
      [{ type: "AUTHENTICATE_FAILURE", id: "x", payload: { reason: "r", attempts_left: "2" } }, /attempts_left/],
      [{ type: "SUBSCRIBE_FAILURE", id: "x", payload: { channel: "c", reason: "r" } }, /code/],
      [{ type: "EVENT", id: "x", payload: { event: "e", channel: 3 } }, /channel/],
      [
        { type: "NOTIFICATION", id: "x", payload: { title: "t", message: "m", level: "fatal", actions: [] } },
        /level/,
      ],
      [
        { type: "NOTIFICATION", id: "x", payload: { title: "t", message: "m", level: "info", actions: [{ label: "l" }] } },
        /actions/,
      ],
      [{ type: "CONNECT_ACK", id: "x", payload: { connection_id: "c" } }, /requires_auth/],
    ];
    for (const [input, reason] of cases) {
      const result = decode(input);
      assert.ok(!result.ok, `accepted ${JSON.stringify(input)}`);
      assert.match(result.reason, reason);
    }
  });

  test("EVENT and DATA data may be any JSON value, including absent or null", () => {
    assert.ok(decode({ type: "EVENT", id: "x", payload: { event: "e" } }).ok);
    assert.ok(decode({ type: "DATA", id: "x", payload: { resource: "r", data: null } }).ok);
    assert.ok(decode({ type: "ACTION_RESULT", id: "x", payload: { action: "a", data: [1, "2"] } }).ok);
  });
});
