import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { NotConnectedError, TimeoutError } from "../src/index.js";
import { ack, connected, FakeSocket, flush, setup, track } from "./harness.js";

describe("heartbeats", () => {
  test("a server PING is answered with PONG whose correlation_id is the ping's id", async () => {
    const { socket } = await connected();
    socket.receive({ type: "PING", id: "s13", timestamp: 1763769625.0, payload: {} });
    await flush();
    const pong = socket.lastSent("PONG");
    assert.equal(pong.correlation_id, "s13");
    assert.deepEqual(pong.payload, {});
    assert.notEqual(pong.id, "s13");
  });

  test("PING is answered before authentication too", async () => {
    const { client } = setup({ token: async () => "t" });
    void client.connect();
    const socket = FakeSocket.last();
    ack(socket, { requires_auth: true });
    socket.receive({ type: "PING", id: "p1" });
    await flush();
    assert.equal(socket.lastSent("PONG").correlation_id, "p1");
  });

  test("ping() sends PING and resolves with the round trip on its PONG", async () => {
    const { client, clock, socket } = await connected();
    const rtt = track(client.ping());
    const ping = socket.lastSent("PING");
    await clock.advance(40);
    socket.receive({ type: "PONG", correlation_id: ping.id });
    await flush();
    assert.equal(rtt.value(), 40);
  });

  test("ping() without a PONG rejects with TimeoutError", async () => {
    const { client, clock } = await connected();
    const rtt = track(client.ping({ timeout: 1_000 }));
    await clock.advance(1_000);
    assert.ok(rtt.error() instanceof TimeoutError);
  });

  test("pingInterval: the client pings while connected and drops a connection whose PONG is late", async () => {
    const { client, clock, socket, log } = await connected({ pingInterval: 5_000, pongTimeout: 2_000, watchServerHeartbeat: false });
    await clock.advance(5_000);
    const first = socket.lastSent("PING");
    socket.receive({ type: "PONG", correlation_id: first.id });
    await clock.advance(5_000);
    assert.equal(socket.sentOf("PING").length, 2);
    await clock.advance(2_000);
    assert.equal(client.state, "disconnected");
    assert.ok(log.includes("disconnected:1006:retry"), log.join(" "));
    assert.equal(socket.closedByClient?.code, 1000);
  });

  test("watchServerHeartbeat: nothing from the server for heartbeat_interval + pongTimeout drops the connection", async () => {
    const { client, clock } = setup({ pongTimeout: 10_000 });
    void client.connect();
    const socket = FakeSocket.last();
    ack(socket, { heartbeat_interval: 25 });
    await flush();
    await clock.advance(30_000);
    socket.receive({ type: "PING", id: "p" }); // traffic restarts the watch
    await clock.advance(34_999);
    assert.equal(client.state, "connected");
    await clock.advance(1);
    assert.equal(client.state, "disconnected");
  });

  test("heartbeat_interval 0 turns the watch off", async () => {
    const { client, clock } = setup();
    void client.connect();
    ack(FakeSocket.last(), { heartbeat_interval: 0 });
    await flush();
    await clock.advance(600_000);
    assert.equal(client.state, "connected");
  });

  test("pingInterval: an ERROR answering our PING does not stop the pinging", async () => {
    const { client, clock, socket } = await connected({ pingInterval: 5_000, pongTimeout: 2_000, watchServerHeartbeat: false });
    await clock.advance(5_000);
    socket.receive({ type: "ERROR", correlation_id: socket.lastSent("PING").id, payload: { code: "internal", message: "x" } });
    await clock.advance(5_000);
    assert.equal(socket.sentOf("PING").length, 2, "pinging goes on");
    socket.receive({ type: "PONG", correlation_id: socket.lastSent("PING").id });
    await clock.advance(5_000);
    assert.equal(socket.sentOf("PING").length, 3);
    assert.equal(client.state, "connected");
  });

  test("binary and malformed frames count as heard from the server", async () => {
    const { client, clock } = setup({ pongTimeout: 10_000 });
    const errors: string[] = [];
    client.on("error", (e) => errors.push(e.name));
    void client.connect();
    const socket = FakeSocket.last();
    ack(socket, { heartbeat_interval: 25 });
    await flush();
    await clock.advance(30_000);
    socket.receive("not json");
    await clock.advance(30_000);
    socket.receiveBinary();
    await clock.advance(30_000);
    assert.equal(client.state, "connected", "each frame restarted the watch");
    assert.deepEqual(errors, ["MalformedMessageError", "MalformedMessageError"]);
    await clock.advance(5_000);
    assert.equal(client.state, "disconnected");
  });

  test("ping() is refused while disconnecting", async () => {
    const { client, socket } = await connected();
    void client.disconnect();
    assert.equal(client.state, "disconnecting");
    await assert.rejects(client.ping(), (e: unknown) => e instanceof NotConnectedError);
    assert.equal(socket.sentOf("PING").length, 0);
  });
});
