import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  AuthenticationError,
  ConnectionClosedError,
  MalformedMessageError,
  SwitchboardClient,
  type ConnectAckPayload,
  type WebSocketConstructor,
} from "../src/index.js";
import { ack, FakeClock, FakeSocket, flush, setup, track } from "./harness.js";

describe("connect", () => {
  test("opens the URL offering switchboard.v1 and is ready after CONNECT_ACK", async () => {
    const { client, log } = setup();
    assert.equal(client.state, "initializing");
    const ready = track(client.connect());
    const socket = FakeSocket.last();
    assert.equal(socket.url, "ws://gateway.test/ws");
    assert.deepEqual(socket.protocols, ["switchboard.v1"]);
    assert.equal(client.state, "connecting");
    socket.open();
    await flush();
    assert.equal(ready.settled(), "pending", "not ready before CONNECT_ACK");
    let acked: ConnectAckPayload | null = null;
    client.on("connected", (payload) => {
      acked = payload;
    });
    ack(socket, { heartbeat_interval: 25 });
    await flush();
    assert.equal(ready.settled(), "resolved");
    assert.equal(client.state, "connected");
    assert.equal(client.ready, true);
    assert.equal(client.connectionId, "conn-1");
    assert.equal((acked as ConnectAckPayload | null)?.server_version, "0.1.0");
    assert.deepEqual(log, ["state:connecting", "state:connected"]);
    // The client says who it is first (presence shows it), and nothing else without a token.
    assert.deepEqual(
      socket.sent.map((m) => [m.type, m.payload]),
      [["CONNECT", { client: { name: "switchboard-js", version: "0.1.0" } }]],
    );
  });

  test("CONNECT_ACK with authenticated: true (a handshake credential) is authenticated at once", async () => {
    const { client, log } = setup();
    const ready = track(client.connect());
    ack(FakeSocket.last(), { requires_auth: false, authenticated: true, user_id: "bob" });
    await flush();
    assert.equal(ready.settled(), "resolved");
    assert.equal(client.state, "authenticated");
    assert.equal(client.session?.userId, "bob");
    assert.deepEqual(log, ["state:connecting", "state:connected", "state:authenticated", "authenticated:bob"]);
    assert.deepEqual(FakeSocket.last().sentOf("AUTHENTICATE"), []);
  });

  test("requires_auth without a token stops with AuthenticationError, no reconnect", async () => {
    const { client, log } = setup();
    const ready = track(client.connect());
    const socket = FakeSocket.last();
    ack(socket, { requires_auth: true });
    await flush();
    assert.equal(ready.settled(), "rejected");
    assert.ok(ready.error() instanceof AuthenticationError);
    assert.equal(client.state, "error");
    assert.equal(socket.closedByClient?.code, 1000);
    assert.ok(log.includes("disconnected:1000:stop"));
    assert.equal(FakeSocket.all.length, 1);
  });

  test("a second CONNECT_ACK on the same socket changes nothing", async () => {
    const { client, log } = setup();
    void client.connect();
    const socket = FakeSocket.last();
    ack(socket);
    await flush();
    const before = log.length;
    ack(socket);
    await flush();
    assert.equal(client.state, "connected");
    assert.equal(log.length, before);
  });

  test("connect() while connected resolves at once; while connecting, with the same connection", async () => {
    const { client } = setup();
    const first = track(client.connect());
    const second = track(client.connect());
    assert.equal(FakeSocket.all.length, 1);
    ack(FakeSocket.last());
    await flush();
    assert.equal(first.settled(), "resolved");
    assert.equal(second.settled(), "resolved");
    await client.connect();
    assert.equal(FakeSocket.all.length, 1);
  });

  test("no CONNECT_ACK within connectTimeout drops the socket and retries", async () => {
    const { client, clock, log } = setup({ connectTimeout: 5_000 });
    void client.connect();
    FakeSocket.last().open();
    await clock.advance(4_999);
    assert.equal(client.state, "connecting");
    await clock.advance(1);
    assert.equal(client.state, "disconnected");
    assert.equal(FakeSocket.all[0]?.closedByClient?.code, 1000);
    assert.ok(log.includes("disconnected:1006:retry"), log.join(" "));
  });

  test("an error event before open (Node 20's undici fires no close) counts as 1006", async () => {
    const { client, log } = setup();
    void client.connect();
    const socket = FakeSocket.last();
    socket.fail();
    await flush();
    assert.ok(log.includes("disconnected:1006:retry"), log.join(" "));
    // The browser's close event that may follow is ignored.
    socket.serverClose(1006);
    assert.equal(log.filter((l) => l.startsWith("disconnected")).length, 1);
    assert.equal(client.state, "disconnected");
  });

  test("closing a connecting socket that fires error synchronously (undici) is handled once", async () => {
    FakeSocket.errorOnCloseWhileConnecting = true;
    try {
      const { client, clock, log } = setup({ connectTimeout: 1_000 });
      void client.connect();
      await clock.advance(1_000); // connect timeout → close() → error, re-entrantly
      assert.deepEqual(log.filter((l) => l.startsWith("disconnected")), ["disconnected:1006:retry"]);
      await clock.advance(250);
      assert.equal(FakeSocket.all.length, 2);
      await client.disconnect(); // while connecting: done at once
      assert.equal(client.state, "disconnected");
      assert.deepEqual(log.filter((l) => l.startsWith("disconnected")), ["disconnected:1006:retry", "disconnected:1000:stop"]);
    } finally {
      FakeSocket.errorOnCloseWhileConnecting = false;
    }
  });

  test("an error event after open without a close event drops the connection after 1 s", async () => {
    const { client, clock, log } = setup();
    void client.connect();
    ack(FakeSocket.last());
    await flush();
    FakeSocket.last().fail();
    await clock.advance(999);
    assert.equal(client.state, "connected");
    await clock.advance(1);
    assert.ok(log.includes("disconnected:1006:retry"), log.join(" "));
  });

  test("malformed server messages are reported and ignored", async () => {
    const { client, log } = setup();
    const errors: MalformedMessageError[] = [];
    client.on("error", (e) => {
      if (e instanceof MalformedMessageError) errors.push(e);
    });
    void client.connect();
    const socket = FakeSocket.last();
    socket.open();
    socket.receive("not json");
    socket.receive({ type: "NOPE" });
    socket.receive({ type: "CONNECT_ACK", payload: { connection_id: 1 } });
    socket.receive({ type: "SUBSCRIBE", payload: { subscriptions: [] } });
    await flush();
    assert.equal(errors.length, 4);
    assert.match(errors[2]?.message ?? "", /connection_id/);
    assert.equal(client.state, "connecting");
    ack(socket);
    await flush();
    assert.equal(client.state, "connected");
    assert.ok(!log.includes("disconnected"));
  });

  test("message listeners: on(type) gets that type; 'message' gets all; off removes", async () => {
    const { client } = setup();
    const types: string[] = [];
    const all: string[] = [];
    const onAck = (m: { type: string }) => types.push(m.type);
    client.on("CONNECT_ACK", onAck);
    const offAll = client.on("message", (m) => all.push(m.type));
    void client.connect();
    const socket = FakeSocket.last();
    ack(socket);
    socket.receive({ type: "PING" });
    await flush();
    assert.deepEqual(types, ["CONNECT_ACK"]);
    assert.deepEqual(all, ["CONNECT_ACK", "PING"]);
    client.off("CONNECT_ACK", onAck);
    offAll();
    socket.receive({ type: "PING" });
    await flush();
    assert.deepEqual(all, ["CONNECT_ACK", "PING"]);
  });

  test("a listener that throws does not break the client (rethrown asynchronously)", async () => {
    const { client } = setup();
    const g = globalThis as { queueMicrotask: (callback: () => void) => void };
    const saved = g.queueMicrotask;
    const rethrown: unknown[] = [];
    g.queueMicrotask = (callback) => {
      try {
        callback();
      } catch (error) {
        rethrown.push(error);
      }
    };
    try {
      client.on("connected", () => {
        throw new Error("boom");
      });
      const ready = track(client.connect());
      ack(FakeSocket.last());
      await flush();
      assert.equal(ready.settled(), "resolved");
      assert.equal(client.state, "connected");
      assert.equal((rethrown[0] as Error | undefined)?.message, "boom");
    } finally {
      g.queueMicrotask = saved;
    }
  });

  test("disconnect() sends DISCONNECT, closes with 1000 and does not reconnect", async () => {
    const { client, clock, log } = setup();
    void client.connect();
    const socket = FakeSocket.last();
    ack(socket);
    await flush();
    const done = track(client.disconnect());
    assert.equal(client.state, "disconnecting");
    assert.deepEqual(socket.lastSent("DISCONNECT").payload, { code: 1000, reason: "client disconnect" });
    assert.deepEqual(socket.closedByClient, { code: 1000, reason: "client disconnect" });
    socket.serverClose(1000, "client disconnect");
    await flush();
    assert.equal(done.settled(), "resolved");
    assert.equal(client.state, "disconnected");
    assert.ok(log.includes("disconnected:1000:stop"));
    await clock.advance(60_000);
    assert.equal(FakeSocket.all.length, 1);
  });

  test("disconnect() from a `connected` listener is not undone by the rest of CONNECT_ACK", async () => {
    const { client, log } = setup();
    client.once("connected", () => void client.disconnect());
    const ready = track(client.connect());
    // Queued work must not go out on the connection being closed.
    void client.subscribe("public:a").catch(() => undefined);
    void client.request("x").catch(() => undefined);
    const socket = FakeSocket.last();
    ack(socket);
    await flush();
    assert.equal(client.state, "disconnecting");
    assert.equal(client.ready, false);
    assert.deepEqual(socket.sent.map((m) => m.type), ["CONNECT", "DISCONNECT"]);
    assert.equal(ready.settled(), "pending");
    socket.serverClose(1000, "client disconnect");
    await flush();
    assert.equal(client.state, "disconnected");
    assert.ok(ready.error() instanceof ConnectionClosedError);
    assert.ok(log.includes("disconnected:1000:stop"), log.join(" "));
  });

  test("disconnect() from an `authenticated` listener (handshake credential) is not undone", async () => {
    const { client } = setup();
    client.once("authenticated", () => void client.disconnect());
    const ready = track(client.connect());
    void client.subscribe("public:a").catch(() => undefined);
    const socket = FakeSocket.last();
    ack(socket, { authenticated: true, user_id: "alice" });
    await flush();
    assert.equal(client.state, "disconnecting");
    assert.deepEqual(socket.sent.map((m) => m.type), ["CONNECT", "DISCONNECT"]);
    socket.serverClose(1000);
    await flush();
    assert.equal(ready.settled(), "rejected");
  });

  test("disconnect() while AUTHENTICATE is checked: its success changes nothing", async () => {
    const { client } = setup({ token: "t" });
    void client.connect().catch(() => undefined);
    const socket = FakeSocket.last();
    ack(socket, { requires_auth: true });
    await flush();
    void client.disconnect();
    socket.receive({
      type: "AUTHENTICATE_SUCCESS",
      correlation_id: socket.lastSent("AUTHENTICATE").id,
      payload: { user_id: "alice", expires_at: null, permissions: [] },
    });
    await flush();
    assert.equal(client.state, "disconnecting");
    assert.equal(client.ready, false);
  });

  test("disconnect() on a dead socket (no close event) finishes after 2 s", async () => {
    const { client, clock } = setup();
    void client.connect();
    ack(FakeSocket.last());
    await flush();
    const done = track(client.disconnect());
    await clock.advance(2_000);
    assert.equal(done.settled(), "resolved");
    assert.equal(client.state, "disconnected");
  });

  test("connect() again after disconnect() opens a new socket", async () => {
    const { client } = setup();
    void client.connect();
    ack(FakeSocket.last());
    await flush();
    void client.disconnect();
    const again = track(client.connect());
    assert.equal(FakeSocket.all.length, 2);
    ack(FakeSocket.last());
    await flush();
    assert.equal(again.settled(), "resolved");
    assert.equal(client.state, "connected");
  });

  test("the server's DISCONNECT reason is reported when the close frame has none", async () => {
    const { client } = setup();
    void client.connect();
    const socket = FakeSocket.last();
    ack(socket);
    await flush();
    const events: { code: number; reason: string }[] = [];
    client.on("disconnected", (e) => events.push({ code: e.code, reason: e.reason }));
    socket.receive({ type: "DISCONNECT", payload: { code: 1000, reason: "server shutting session" } });
    socket.serverClose(1000, "");
    await flush();
    assert.deepEqual(events, [{ code: 1000, reason: "server shutting session" }]);
    assert.equal(client.state, "disconnected", "a normal close is not an error");
  });

  test("without an injected constructor, the global WebSocket is used (or a clear error)", () => {
    const g = globalThis as { WebSocket?: WebSocketConstructor };
    const saved = g.WebSocket;
    try {
      delete g.WebSocket;
      assert.throws(() => new SwitchboardClient({ url: "ws://x/ws" }), /no WebSocket constructor/);
      g.WebSocket = FakeSocket;
      FakeSocket.reset();
      const client = new SwitchboardClient({ url: "ws://x/ws", timers: new FakeClock() });
      void client.connect().catch(() => undefined);
      assert.equal(FakeSocket.all.length, 1);
      void client.disconnect();
    } finally {
      if (saved === undefined) delete g.WebSocket;
      else g.WebSocket = saved;
    }
  });

  test("a constructor that throws (bad URL) stops with an error", async () => {
    const { client } = setup({
      WebSocket: class {
        constructor() {
          throw new SyntaxError("invalid URL");
        }
      } as unknown as WebSocketConstructor,
    });
    const ready = track(client.connect());
    await flush();
    assert.equal(ready.settled(), "rejected");
    assert.match(String(ready.error()), /invalid URL/);
    assert.equal(client.state, "error");
    assert.ok(!(ready.error() instanceof ConnectionClosedError));
  });
});
