import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  ConnectionClosedError,
  NotConnectedError,
  QueueFullError,
  ServerError,
  SwitchboardError,
  TimeoutError,
} from "../src/index.js";
import { ack, authOk, connected, FakeSocket, flush, setup, subscribeOk, track } from "./harness.js";

describe("request", () => {
  test("ACTION with an id; ACTION_RESULT with the matching correlation_id resolves with its data", async () => {
    const { client, socket } = await connected();
    const a = track(client.request("chat.send", { text: "a" }));
    const b = track(client.request<{ delivered: number }>("chat.send", { text: "b" }));
    const [sentA, sentB] = socket.sentOf("ACTION");
    assert.ok(sentA !== undefined && sentB !== undefined);
    assert.deepEqual(sentA.payload, { action: "chat.send", data: { text: "a" } });
    assert.notEqual(sentA.id, sentB.id);
    // Answered out of order.
    socket.receive({ type: "ACTION_RESULT", correlation_id: sentB.id, payload: { action: "chat.send", data: { delivered: 2 } } });
    await flush();
    assert.equal(a.settled(), "pending");
    assert.deepEqual(b.value(), { delivered: 2 });
    socket.receive({ type: "ACTION_RESULT", correlation_id: sentA.id, payload: { action: "chat.send", data: null } });
    await flush();
    assert.equal(a.settled(), "resolved");
    assert.equal(a.value(), null);
  });

  test("an action without data sends no data field", async () => {
    const { client, socket } = await connected();
    void client.request("status").catch(() => undefined);
    assert.deepEqual(socket.lastSent("ACTION").payload, { action: "status" });
  });

  test("ERROR with the matching correlation_id rejects with ServerError carrying the code", async () => {
    const { client, socket } = await connected();
    const result = track(client.request("nope"));
    const sent = socket.lastSent("ACTION");
    socket.receive({
      type: "ERROR",
      correlation_id: sent.id,
      payload: { code: "unknown_action", message: 'No handler for action "nope"' },
    });
    await flush();
    const error = result.error();
    assert.ok(error instanceof ServerError);
    assert.equal(error.code, "unknown_action");
    assert.equal(error.correlationId, sent.id);
    assert.equal(error.message, 'No handler for action "nope"');
  });

  test("an ERROR answering nothing pending is emitted as an error event", async () => {
    const { client, socket } = await connected();
    const errors: unknown[] = [];
    client.on("error", (e) => errors.push(e));
    socket.receive({ type: "ERROR", payload: { code: "invalid_json", message: "bad" } });
    socket.receive({ type: "ERROR", correlation_id: "unknown", payload: { code: "internal", message: "x" } });
    await flush();
    assert.equal(errors.length, 2);
    assert.ok(errors.every((e) => e instanceof ServerError));
  });

  test("no answer within the timeout rejects with TimeoutError; a late answer is ignored", async () => {
    const { client, clock, socket } = await connected();
    const result = track(client.request("slow", null, { timeout: 1_500 }));
    await clock.advance(1_499);
    assert.equal(result.settled(), "pending");
    await clock.advance(1);
    const error = result.error();
    assert.ok(error instanceof TimeoutError);
    assert.equal(error.timeoutMs, 1_500);
    socket.receive({ type: "ACTION_RESULT", correlation_id: socket.lastSent("ACTION").id, payload: { action: "slow", data: 1 } });
    await flush();
  });

  test("the default timeout is requestTimeout", async () => {
    const { client, clock } = await connected({ requestTimeout: 2_000 });
    const result = track(client.request("slow"));
    await clock.advance(2_000);
    assert.ok(result.error() instanceof TimeoutError);
  });

  test("a request in flight when the connection drops rejects with ConnectionClosedError and is not resent", async () => {
    const { client, clock, socket } = await connected();
    const result = track(client.request("pay", { amount: 1 }));
    socket.serverClose(1006);
    await flush();
    const error = result.error();
    assert.ok(error instanceof ConnectionClosedError);
    assert.equal(error.code, 1006);
    assert.match(error.message, /may or may not have run/);
    await clock.advance(250);
    ack(FakeSocket.last());
    await flush();
    assert.deepEqual(FakeSocket.last().sentOf("ACTION"), []);
  });

  test("a request over maxMessageSize is refused before sending (the server would close with 1009)", async () => {
    const { client, socket } = await connected({ maxMessageSize: 1_000 });
    await assert.rejects(client.request("big", "x".repeat(1_000)), SwitchboardError);
    await assert.rejects(client.request("big", "é".repeat(480)), /over the 1000-byte message limit/);
    assert.deepEqual(socket.sentOf("ACTION"), []);
  });
});

describe("disconnected-send queue", () => {
  test("requests and subscribes made while disconnected are sent after reconnect + auth, in order", async () => {
    const { client, clock } = setup({ token: async () => "t", watchServerHeartbeat: false });
    void client.connect();
    ack(FakeSocket.last(), { requires_auth: true });
    await flush();
    authOk(FakeSocket.last());
    await flush();
    FakeSocket.last().serverClose(1012);
    await flush();
    const one = track(client.request("one"));
    const sub = track(client.subscribe("public:a"));
    const two = track(client.request("two"));
    assert.equal(client.queued, 3);
    await clock.advance(250);
    const socket = FakeSocket.last();
    ack(socket, { requires_auth: true });
    await flush();
    assert.deepEqual(socket.sent.map((m) => m.type), ["CONNECT", "AUTHENTICATE"]);
    authOk(socket);
    await flush();
    assert.deepEqual(socket.sent.map((m) => m.type), ["CONNECT", "AUTHENTICATE", "SUBSCRIBE", "ACTION", "ACTION"]);
    assert.deepEqual(socket.sentOf("ACTION").map((m) => m.payload.action), ["one", "two"]);
    assert.equal(client.queued, 0);
    subscribeOk(socket);
    for (const m of socket.sentOf("ACTION")) {
      socket.receive({ type: "ACTION_RESULT", correlation_id: m.id, payload: { action: m.payload.action, data: m.payload.action } });
    }
    await flush();
    assert.equal(one.value(), "one");
    assert.equal(two.value(), "two");
    assert.equal(sub.settled(), "resolved");
  });

  test("work made before connect() is queued and sent once connected", async () => {
    const { client } = setup();
    const result = track(client.request("early"));
    void client.subscribe("public:early");
    void client.connect();
    const socket = FakeSocket.last();
    ack(socket);
    await flush();
    assert.deepEqual(socket.sent.map((m) => m.type), ["CONNECT", "SUBSCRIBE", "ACTION"]);
    assert.equal(result.settled(), "pending");
  });

  test("beyond the bound (queueLimit) requests and subscribes reject with QueueFullError", async () => {
    const { client } = setup({ queueLimit: 3 });
    const queued = [track(client.request("a")), track(client.subscribe("public:b")), track(client.request("c"))];
    const overflow = [track(client.request("d")), track(client.subscribe("public:e"))];
    await flush();
    assert.ok(queued.every((q) => q.settled() === "pending"));
    for (const o of overflow) {
      const error = o.error();
      assert.ok(error instanceof QueueFullError);
      assert.equal(error.limit, 3);
    }
    assert.equal(client.queued, 3);
    assert.deepEqual(client.channels, ["public:b"]);
  });

  test("the default bound is 100", async () => {
    const { client } = setup();
    for (let i = 0; i < 100; i++) void client.request(`r${i}`).catch(() => undefined);
    await assert.rejects(client.request("r100"), QueueFullError);
  });

  test("a queued request times out from the call, and leaves the queue", async () => {
    const { client, clock } = setup({ requestTimeout: 5_000 });
    void client.connect();
    FakeSocket.last().fail();
    const result = track(client.request("late"));
    assert.equal(client.queued, 1);
    await clock.advance(250);
    // The reconnect attempt hangs (no CONNECT_ACK): the request's timer runs out.
    await clock.advance(4_750);
    assert.ok(result.error() instanceof TimeoutError);
    assert.equal(client.queued, 0);
  });

  test("after disconnect() new work fails fast with NotConnectedError; queued work is rejected", async () => {
    const { client } = setup();
    const queued = track(client.request("queued"));
    await client.disconnect();
    await flush();
    assert.ok(queued.error() instanceof NotConnectedError);
    await assert.rejects(client.request("x"), NotConnectedError);
    await assert.rejects(client.subscribe("public:x"), NotConnectedError);
    await assert.rejects(client.ping(), NotConnectedError);
  });
});
