/**
 * Presence (docs/protocol.md, "Presence"): `presence()` / `presenceStats()`
 * (PRESENCE / PRESENCE_STATS → PRESENCE_RESULT or ERROR, matched by id),
 * the `joinLeave` subscribe option (sent on every SUBSCRIBE of the
 * subscription), `switchboard.join` / `switchboard.leave` as typed `join` /
 * `leave` events and `onJoin` / `onLeave` (never to the channel's handler),
 * and the `CONNECT` the client introduces itself with (presence shows it).
 */

import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { decodeMember, decodeServerMessage } from "../src/codec.js";
import {
  CLIENT_NAME,
  CLIENT_VERSION,
  ConnectionClosedError,
  JOIN_EVENT,
  LEAVE_EVENT,
  MalformedMessageError,
  ServerError,
  SubscribeError,
  TimeoutError,
  type ChannelMessage,
  type ConnectAckPayload,
  type PresenceEvent,
  type SwitchboardError,
} from "../src/index.js";
import { ack, authOk, connected, FakeSocket, flush, setup, subscribeOk, track, type Harness } from "./harness.js";

const LOBBY = "public:lobby";
const EPOCH = "6f1c2a8e0d3e4c1b";
const ALICE = { connection: "gw-1/42", user: "alice", info: { client: { name: "switchboard-js", version: "0.1.0" } } };
const ANON = { connection: "gw-2/7", user: null };

/** The server's PRESENCE_RESULT answering the client's last `type` request. */
function answer(socket: FakeSocket, type: "PRESENCE" | "PRESENCE_STATS", payload: Record<string, unknown>): void {
  socket.receive({ type: "PRESENCE_RESULT", correlation_id: socket.lastSent(type).id, payload });
}

function presenceEvent(socket: FakeSocket, event: string, data: unknown, channel = LOBBY): void {
  socket.receive({ type: "EVENT", payload: { channel, event, data } });
}

/** Drops the current socket (1012) and answers the next attempt's CONNECT_ACK. */
async function reconnect(h: Harness): Promise<FakeSocket> {
  const before = FakeSocket.last();
  before.serverClose(1012, "restarting");
  await h.clock.advance(250);
  const socket = FakeSocket.last();
  assert.notEqual(socket, before, "a new socket");
  ack(socket);
  await flush();
  return socket;
}

describe("presence() and presenceStats()", () => {
  test("PRESENCE {channel} with an id; the PRESENCE_RESULT with its correlation_id resolves with the members", async () => {
    const { client, socket } = await connected();
    const result = track(client.presence(LOBBY));
    const sent = socket.lastSent("PRESENCE");
    assert.deepEqual(sent.payload, { channel: LOBBY });
    assert.ok(sent.id.length > 0);
    socket.receive({
      type: "PRESENCE_RESULT",
      correlation_id: sent.id,
      payload: { channel: LOBBY, connections: 2, users: 1, members: [ALICE, ANON] },
    });
    await flush();
    assert.deepEqual(result.value(), { channel: LOBBY, connections: 2, users: 1, members: [ALICE, ANON] });
  });

  test("PRESENCE_STATS resolves with the counts only; answers are matched by id, in any order", async () => {
    const { client, socket } = await connected();
    const members = track(client.presence(LOBBY));
    const stats = track(client.presenceStats(LOBBY));
    const action = track(client.request("chat.send", { text: "hi" }));
    assert.deepEqual(socket.lastSent("PRESENCE_STATS").payload, { channel: LOBBY });
    // Answered in reverse.
    socket.receive({ type: "ACTION_RESULT", correlation_id: socket.lastSent("ACTION").id, payload: { action: "chat.send", data: 3 } });
    answer(socket, "PRESENCE_STATS", { channel: LOBBY, connections: 5, users: 2 });
    await flush();
    assert.equal(members.settled(), "pending");
    assert.equal(action.value(), 3);
    assert.deepEqual(stats.value(), { channel: LOBBY, connections: 5, users: 2 });
    answer(socket, "PRESENCE", { channel: LOBBY, connections: 0, users: 0, members: [] });
    await flush();
    assert.deepEqual(members.value(), { channel: LOBBY, connections: 0, users: 0, members: [] });
  });

  test("ERROR forbidden / no_presence / unavailable rejects with the ServerError", async () => {
    const { client, socket } = await connected();
    for (const [code, ask] of [
      ["forbidden", () => client.presence("public:other")],
      ["no_presence", () => client.presenceStats("user:alice:inbox")],
      ["unavailable", () => client.presence(LOBBY)],
    ] as const) {
      const result = track<unknown>(ask());
      const sent = socket.sent.at(-1);
      assert.ok(sent !== undefined && (sent.type === "PRESENCE" || sent.type === "PRESENCE_STATS"));
      socket.receive({ type: "ERROR", correlation_id: sent.id, payload: { code, message: `refused: ${code}` } });
      await flush();
      const error = result.error();
      assert.ok(error instanceof ServerError, `${code}: ${String(error)}`);
      assert.equal(error.code, code);
      assert.equal(error.correlationId, sent.id);
      assert.equal(error.message, `refused: ${code}`);
    }
  });

  test("no answer within the timeout rejects with TimeoutError naming the request", async () => {
    const { client, clock } = await connected({ requestTimeout: 2_000 });
    const result = track(client.presence(LOBBY, { timeout: 500 }));
    const stats = track(client.presenceStats(LOBBY));
    await clock.advance(500);
    const error = result.error();
    assert.ok(error instanceof TimeoutError);
    assert.equal(error.message, `presence ${LOBBY}: no answer within 500 ms`);
    await clock.advance(1_500);
    assert.ok(stats.error() instanceof TimeoutError);
  });

  test("a reply of the wrong kind, or a PRESENCE_RESULT without members for PRESENCE, rejects as malformed", async () => {
    const { client, socket } = await connected();
    const members = track(client.presence(LOBBY));
    answer(socket, "PRESENCE", { channel: LOBBY, connections: 1, users: 0 });
    const action = track(client.request("x"));
    socket.receive({ type: "PRESENCE_RESULT", correlation_id: socket.lastSent("ACTION").id, payload: { channel: LOBBY, connections: 1, users: 0 } });
    await flush();
    assert.ok(members.error() instanceof MalformedMessageError, String(members.error()));
    assert.ok(action.error() instanceof MalformedMessageError, String(action.error()));
  });

  test("a malformed PRESENCE_RESULT is an error event; the request waits on", async () => {
    const { client, socket } = await connected();
    const errors: SwitchboardError[] = [];
    client.on("error", (e) => errors.push(e));
    const result = track(client.presence(LOBBY));
    const bad = [
      { channel: LOBBY, connections: -1, users: 0, members: [] },
      { channel: LOBBY, connections: 1, users: 0.5, members: [] },
      { channel: LOBBY, connections: 1, users: 0, members: [{ connection: 7, user: null }] },
      { channel: LOBBY, connections: 1, users: 0, members: [{ connection: "a/1" }] },
      { channel: LOBBY, connections: 1, users: 0, members: [{ connection: "a/1", user: null, info: "x" }] },
      { connections: 1, users: 0 },
    ];
    for (const payload of bad) answer(socket, "PRESENCE", payload);
    await flush();
    assert.equal(errors.length, bad.length);
    assert.ok(errors.every((e) => e instanceof MalformedMessageError));
    assert.equal(result.settled(), "pending");
    answer(socket, "PRESENCE", { channel: LOBBY, connections: 1, users: 0, members: [{ connection: "a/1", user: null }] });
    await flush();
    assert.equal(result.settled(), "resolved");
  });

  test("queued while not connected: sent after the SUBSCRIBE that restores the channel", async () => {
    const h = setup({ watchServerHeartbeat: false });
    const sub = track(h.client.subscribe(LOBBY));
    const result = track(h.client.presence(LOBBY));
    assert.equal(h.client.queued, 2);
    void h.client.connect();
    const socket = FakeSocket.last();
    ack(socket);
    await flush();
    assert.deepEqual(socket.sent.map((m) => m.type), ["CONNECT", "SUBSCRIBE", "PRESENCE"]);
    subscribeOk(socket);
    answer(socket, "PRESENCE", { channel: LOBBY, connections: 1, users: 0, members: [ANON] });
    await flush();
    assert.equal(sub.settled(), "resolved");
    assert.equal(result.value()?.members.length, 1);
  });

  test("a presence request in flight when the connection drops is sent again after the resubscription (an action is not)", async () => {
    const h = await connected({ watchServerHeartbeat: false });
    void h.client.subscribe(LOBBY);
    subscribeOk(h.socket);
    await flush();
    const result = track(h.client.presence(LOBBY));
    const stats = track(h.client.presenceStats(LOBBY));
    const action = track(h.client.request("chat.send"));
    const socket = await reconnect(h);
    assert.ok(action.error() instanceof ConnectionClosedError);
    assert.equal(result.settled(), "pending");
    assert.deepEqual(socket.sent.map((m) => m.type), ["CONNECT", "SUBSCRIBE", "PRESENCE", "PRESENCE_STATS"]);
    subscribeOk(socket);
    answer(socket, "PRESENCE", { channel: LOBBY, connections: 1, users: 0, members: [ANON] });
    answer(socket, "PRESENCE_STATS", { channel: LOBBY, connections: 1, users: 0 });
    await flush();
    assert.equal(result.value()?.connections, 1);
    assert.deepEqual(stats.value(), { channel: LOBBY, connections: 1, users: 0 });
  });

  test("after disconnect() presence() fails fast and a queued one rejects", async () => {
    const { client } = setup();
    const queued = track(client.presence(LOBBY));
    await client.disconnect();
    await flush();
    assert.equal(queued.settled(), "rejected");
    await assert.rejects(client.presenceStats(LOBBY), /not connected/);
  });
});

describe("joinLeave, join and leave events", () => {
  test("subscribe with joinLeave sends {channel, join_leave: true}; the confirmation says joinLeave", async () => {
    const { client, socket } = await connected();
    const result = track(client.subscribe(LOBBY, undefined, { joinLeave: true }));
    assert.deepEqual(socket.lastSent("SUBSCRIBE").payload.subscriptions, [{ channel: LOBBY, join_leave: true }]);
    subscribeOk(socket, () => ({ join_leave: true }));
    await flush();
    assert.deepEqual(result.value(), { channel: LOBBY, resubscribed: false, epoch: null, offset: null, joinLeave: true });
  });

  test("a server that sends no events (the option ignored) leaves joinLeave out; without the option nothing is asked", async () => {
    const { client, socket } = await connected();
    const quiet = track(client.subscribe("public:quiet", undefined, { joinLeave: true }));
    subscribeOk(socket);
    const plain = track(client.subscribe("public:plain", undefined, { joinLeave: false }));
    assert.deepEqual(socket.lastSent("SUBSCRIBE").payload.subscriptions, ["public:plain"]);
    subscribeOk(socket, () => ({ join_leave: true }));
    await flush();
    assert.equal(quiet.value()?.joinLeave, undefined);
    assert.equal(plain.value()?.joinLeave, undefined);
  });

  test("join_leave goes with last, and with recover on every resubscription", async () => {
    const h = await connected({ watchServerHeartbeat: false });
    void h.client.subscribe(LOBBY, undefined, { joinLeave: true, last: 20 });
    void h.client.subscribe("public:other", undefined, { joinLeave: true });
    const [first, second] = h.socket.sentOf("SUBSCRIBE");
    assert.deepEqual(first?.payload.subscriptions, [{ channel: LOBBY, last: 20, join_leave: true }]);
    assert.deepEqual(second?.payload.subscriptions, [{ channel: "public:other", join_leave: true }]);
    for (const s of h.socket.sentOf("SUBSCRIBE")) {
      for (const entry of s.payload.subscriptions ?? []) {
        const channel = typeof entry === "string" ? entry : entry.channel;
        h.socket.receive({
          type: "SUBSCRIBE_SUCCESS",
          correlation_id: s.id,
          payload: channel === LOBBY ? { channel, epoch: EPOCH, offset: 30, last: 20, join_leave: true } : { channel, join_leave: true },
        });
      }
    }
    await flush();
    const socket = await reconnect(h);
    assert.deepEqual(socket.lastSent("SUBSCRIBE").payload.subscriptions, [
      { channel: LOBBY, recover: { epoch: EPOCH, offset: 30 }, join_leave: true },
      { channel: "public:other", join_leave: true },
    ]);
    const again: (boolean | undefined)[] = [];
    h.client.on("subscribed", (e) => again.push(e.joinLeave));
    subscribeOk(socket, (channel) => (channel === LOBBY ? { epoch: EPOCH, offset: 30, recovered: true, join_leave: true } : { join_leave: true }));
    await flush();
    assert.deepEqual(again, [true, true]);
  });

  test("switchboard.join / switchboard.leave become join / leave events and onJoin / onLeave, never the handler", async () => {
    const { client, socket } = await connected();
    const handled: ChannelMessage[] = [];
    const log: string[] = [];
    const note = (kind: string) => (e: PresenceEvent) => log.push(`${kind}:${e.channel}:${e.member.connection}:${String(e.member.user)}`);
    void client.subscribe(LOBBY, (m) => handled.push(m), { joinLeave: true, onJoin: note("onJoin"), onLeave: note("onLeave") });
    subscribeOk(socket, () => ({ join_leave: true }));
    await flush();
    client.on("join", note("join"));
    client.on("leave", note("leave"));
    presenceEvent(socket, JOIN_EVENT, ALICE);
    presenceEvent(socket, LEAVE_EVENT, ANON);
    socket.receive({ type: "EVENT", payload: { channel: LOBBY, event: "chat.message", data: { text: "hi" } } });
    await flush();
    assert.deepEqual(log, [
      "onJoin:public:lobby:gw-1/42:alice",
      "join:public:lobby:gw-1/42:alice",
      "onLeave:public:lobby:gw-2/7:null",
      "leave:public:lobby:gw-2/7:null",
    ]);
    assert.deepEqual(handled.map((m) => m.type === "EVENT" && m.payload.event), ["chat.message"]);
  });

  test("the member is passed on as sent (info included), unknown fields dropped", async () => {
    const { client, socket } = await connected();
    const joined: PresenceEvent[] = [];
    void client.subscribe(LOBBY, undefined, { joinLeave: true, onJoin: (e) => joined.push(e) });
    subscribeOk(socket, () => ({ join_leave: true }));
    presenceEvent(socket, JOIN_EVENT, { ...ALICE, info: { client: { name: "web" }, meta: { plan: "pro" } }, extra: 1 });
    await flush();
    assert.deepEqual(joined, [
      { channel: LOBBY, member: { connection: "gw-1/42", user: "alice", info: { client: { name: "web" }, meta: { plan: "pro" } } } },
    ]);
  });

  test("a join or leave whose data is not a member is an error event and reaches nothing else", async () => {
    const { client, socket } = await connected();
    const handled: ChannelMessage[] = [];
    const joined: PresenceEvent[] = [];
    const errors: SwitchboardError[] = [];
    void client.subscribe(LOBBY, (m) => handled.push(m), { joinLeave: true, onJoin: (e) => joined.push(e) });
    subscribeOk(socket, () => ({ join_leave: true }));
    client.on("error", (e) => errors.push(e));
    presenceEvent(socket, JOIN_EVENT, { user: "alice" });
    presenceEvent(socket, LEAVE_EVENT, "gw-1/42");
    await flush();
    assert.equal(errors.length, 2);
    assert.ok(errors[0] instanceof MalformedMessageError);
    assert.match(errors[0].message, /switchboard\.join on public:lobby: data is not a member/);
    assert.deepEqual(joined, []);
    assert.deepEqual(handled, []);
  });

  test("events of channels the client does not keep are dropped", async () => {
    const { client, socket } = await connected();
    const seen: PresenceEvent[] = [];
    client.on("join", (e) => seen.push(e));
    presenceEvent(socket, JOIN_EVENT, ALICE, "public:elsewhere");
    await flush();
    assert.deepEqual(seen, []);
  });

  test("subscribing again adds onJoin; asking joinLeave of a channel kept without it is refused", async () => {
    const { client, socket } = await connected();
    const first: string[] = [];
    const second: string[] = [];
    void client.subscribe(LOBBY, undefined, { joinLeave: true, onJoin: (e) => first.push(e.member.connection) });
    subscribeOk(socket, () => ({ join_leave: true }));
    await flush();
    await client.subscribe(LOBBY, undefined, { joinLeave: true, onJoin: (e) => second.push(e.member.connection) });
    presenceEvent(socket, JOIN_EVENT, ANON);
    await flush();
    assert.deepEqual([first, second], [["gw-2/7"], ["gw-2/7"]]);

    void client.subscribe("public:plain");
    subscribeOk(socket);
    await flush();
    const sent = socket.sentOf("SUBSCRIBE").length;
    await assert.rejects(client.subscribe("public:plain", undefined, { joinLeave: true }), (e: unknown) => {
      assert.ok(e instanceof SubscribeError);
      assert.equal(e.code, "invalid_message");
      assert.match(e.reason, /unsubscribe\(\) first/);
      return true;
    });
    assert.equal(socket.sentOf("SUBSCRIBE").length, sent, "nothing sent");
  });
});

describe("CONNECT: the client introduces itself", () => {
  test("sent first on every connection, before AUTHENTICATE; its CONNECT_ACK changes nothing", async () => {
    const h = setup({ token: "t", watchServerHeartbeat: false });
    const connectedEvents: ConnectAckPayload[] = [];
    h.client.on("connected", (e) => connectedEvents.push(e));
    void h.client.connect();
    const socket = FakeSocket.last();
    ack(socket, { requires_auth: true });
    await flush();
    assert.deepEqual(socket.sent.map((m) => m.type), ["CONNECT", "AUTHENTICATE"]);
    assert.deepEqual(socket.lastSent("CONNECT").payload, { client: { name: CLIENT_NAME, version: CLIENT_VERSION } });
    // The answer to CONNECT: another CONNECT_ACK, with its correlation_id.
    socket.receive({
      type: "CONNECT_ACK",
      correlation_id: socket.lastSent("CONNECT").id,
      payload: {
        connection_id: "conn-1",
        requires_auth: true,
        authenticated: false,
        user_id: null,
        heartbeat_interval: 25,
        server_version: "0.1.0",
        protocol_version: 1,
      },
    });
    await flush();
    assert.equal(socket.sentOf("AUTHENTICATE").length, 1, "not authenticated twice");
    assert.equal(connectedEvents.length, 1);
    authOk(socket);
    await flush();
    assert.equal(h.client.state, "authenticated");
    const again = await reconnect(h);
    assert.deepEqual(again.sent.map((m) => m.type), ["CONNECT", "AUTHENTICATE"], "again on the next connection");
  });

  test("options.client names the application instead; false sends no CONNECT", async () => {
    const named = await connected({ client: { name: "demo-chat", version: "2.0" } });
    assert.deepEqual(named.socket.lastSent("CONNECT").payload, { client: { name: "demo-chat", version: "2.0" } });
    const nameOnly = await connected({ client: { name: "demo-chat" } });
    assert.deepEqual(nameOnly.socket.lastSent("CONNECT").payload, { client: { name: "demo-chat" } });
    const silent = await connected({ client: false });
    assert.deepEqual(silent.socket.sent, []);
  });

  test("CLIENT_VERSION is package.json's version", () => {
    let dir = dirname(fileURLToPath(import.meta.url));
    while (!readdirSync(dir).includes("package.json")) dir = dirname(dir);
    const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as { name: string; version: string };
    assert.equal(CLIENT_VERSION, pkg.version);
    assert.equal(CLIENT_NAME, "switchboard-js");
  });
});

describe("decoding", () => {
  test("PRESENCE_RESULT: counts are whole numbers ≥ 0, members optional, each {connection, user, info?}", () => {
    const ok = (payload: unknown) => decodeServerMessage(JSON.stringify({ type: "PRESENCE_RESULT", id: "s", payload })).ok;
    assert.ok(ok({ channel: LOBBY, connections: 0, users: 0 }));
    assert.ok(ok({ channel: LOBBY, connections: 2, users: 1, members: [ALICE, ANON] }));
    assert.ok(!ok({ channel: LOBBY, connections: "2", users: 1 }));
    assert.ok(!ok({ channel: LOBBY, connections: 2, users: 1, members: {} }));
    assert.ok(!ok({ channel: LOBBY, connections: 2, users: 1, members: [{ connection: "x", user: 5 }] }));
  });

  test("SUBSCRIBE_SUCCESS's join_leave is a boolean", () => {
    const ok = (payload: unknown) => decodeServerMessage(JSON.stringify({ type: "SUBSCRIBE_SUCCESS", id: "s", payload })).ok;
    assert.ok(ok({ channel: LOBBY, join_leave: true }));
    assert.ok(!ok({ channel: LOBBY, join_leave: "yes" }));
  });

  test("decodeMember", () => {
    assert.deepEqual(decodeMember(ANON), ANON);
    assert.deepEqual(decodeMember({ ...ALICE, more: 1 }), ALICE);
    assert.equal(decodeMember(null), null);
    assert.equal(decodeMember({ connection: "x" }), null);
    assert.equal(decodeMember({ connection: "x", user: null, info: [] }), null);
  });
});
