/**
 * Streams and recovery (docs/protocol.md, "Streams and recovery"): the
 * position each subscription keeps, `recover` after every reconnect, what the
 * application is told (`subscribed` with `recovered`, `gap`), `last`, an
 * explicit `recover`, and `unavailable` retried with backoff.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  SubscribeError,
  type ChannelMessage,
  type GapEvent,
  type SubscribedEvent,
  type SwitchboardError,
} from "../src/index.js";
import { ack, connected, FakeSocket, flush, setup, subscribeOk, track, type Harness } from "./harness.js";

const EPOCH = "6f1c2a8e0d3e4c1b";

/** A publication on `channel` with a top-level offset (as the gateway frames it: offset first). */
function publish(socket: FakeSocket, channel: string, offset: number | undefined, n: number = offset ?? 0): void {
  const head = offset === undefined ? "" : `"offset":${offset},`;
  socket.receive(
    `{${head}"type":"EVENT","id":"s-${n}","timestamp":1763769601.0,"payload":{"channel":"${channel}","event":"e","data":{"n":${n}}}}`,
  );
}

function gap(socket: FakeSocket, channel: string, data: unknown): void {
  socket.receive({ type: "EVENT", payload: { channel, event: "switchboard.gap", data } });
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

/** Records `subscribed` and `gap` events and the channel's messages. */
function record(h: Harness): { subscribed: SubscribedEvent[]; gaps: GapEvent[]; errors: SwitchboardError[] } {
  const out = { subscribed: [] as SubscribedEvent[], gaps: [] as GapEvent[], errors: [] as SwitchboardError[] };
  h.client.on("subscribed", (e) => out.subscribed.push(e));
  h.client.on("gap", (e) => out.gaps.push(e));
  h.client.on("error", (e) => out.errors.push(e));
  return out;
}

const numbers = (messages: ChannelMessage[]): unknown[] =>
  messages.map((m) => (m.payload as { data?: { n: number } }).data?.n);

describe("streams and recovery", () => {
  test("the position: SUBSCRIBE_SUCCESS's epoch and offset, then every publication's offset", async () => {
    const h = await connected();
    const got: ChannelMessage[] = [];
    const result = track(h.client.subscribe("public:news", (m) => got.push(m)));
    assert.equal(h.client.position("public:news"), null, "nothing before the confirmation");
    subscribeOk(h.socket, () => ({ epoch: EPOCH, offset: 16 }));
    await flush();
    assert.deepEqual(result.value(), { channel: "public:news", resubscribed: false, epoch: EPOCH, offset: 16 });
    assert.deepEqual(h.client.position("public:news"), { epoch: EPOCH, offset: 16 });
    publish(h.socket, "public:news", 17);
    await flush();
    assert.deepEqual(h.client.position("public:news"), { epoch: EPOCH, offset: 17 });
    assert.equal(got[0]?.offset, 17, "the message keeps its offset");
    // A publication without an offset (at most once) leaves the position alone.
    publish(h.socket, "public:news", undefined, 99);
    await flush();
    assert.deepEqual(h.client.position("public:news"), { epoch: EPOCH, offset: 17 });
    assert.deepEqual(numbers(got), [17, 99]);
    // The position is a copy.
    const copy = h.client.position("public:news") as { offset: number };
    copy.offset = 1000;
    assert.equal(h.client.position("public:news")?.offset, 17);
    assert.equal(h.client.position("public:other"), null);
  });

  test("the handler sees the position already moved on", async () => {
    const h = await connected();
    const seen: (number | undefined)[] = [];
    void h.client.subscribe("public:news", () => seen.push(h.client.position("public:news")?.offset));
    subscribeOk(h.socket, () => ({ epoch: EPOCH, offset: 0 }));
    publish(h.socket, "public:news", 1);
    publish(h.socket, "public:news", 2);
    await flush();
    assert.deepEqual(seen, [1, 2]);
  });

  test("after a reconnect: recover from the position; recovered: true; the replay moves the position on", async () => {
    const h = await connected();
    const events = record(h);
    const got: ChannelMessage[] = [];
    void h.client.subscribe("public:news", (m) => got.push(m));
    void h.client.subscribe("public:plain");
    for (const s of h.socket.sentOf("SUBSCRIBE")) {
      const channel = s.payload.subscriptions?.[0] as string;
      const extra = channel === "public:news" ? { epoch: EPOCH, offset: 16 } : {};
      h.socket.receive({ type: "SUBSCRIBE_SUCCESS", correlation_id: s.id, payload: { channel, ...extra } });
    }
    publish(h.socket, "public:news", 17);
    await flush();

    const socket = await reconnect(h);
    const resubscribe = socket.lastSent("SUBSCRIBE");
    assert.deepEqual(resubscribe.payload.subscriptions, [
      { channel: "public:news", recover: { epoch: EPOCH, offset: 17 } },
      "public:plain",
    ]);
    socket.receive({
      type: "SUBSCRIBE_SUCCESS",
      correlation_id: resubscribe.id,
      payload: { channel: "public:news", epoch: EPOCH, offset: 20, recovered: true },
    });
    await flush();
    // Not moved to 20 before the replay arrives: a drop now recovers from 17 again.
    assert.deepEqual(h.client.position("public:news"), { epoch: EPOCH, offset: 17 });
    const news = events.subscribed.filter((e) => e.channel === "public:news");
    assert.deepEqual(news.at(-1), {
      channel: "public:news",
      resubscribed: true,
      epoch: EPOCH,
      offset: 20,
      recovered: true,
      recover: { epoch: EPOCH, offset: 17 },
    });
    // The event's position is a copy: changing it changes nothing in the client.
    (news.at(-1)?.recover as { offset: number }).offset = 0;
    assert.deepEqual(h.client.position("public:news"), { epoch: EPOCH, offset: 17 });
    for (const offset of [18, 19, 20, 21]) publish(socket, "public:news", offset);
    await flush();
    assert.deepEqual(numbers(got), [17, 18, 19, 20, 21]);
    assert.deepEqual(h.client.position("public:news"), { epoch: EPOCH, offset: 21 });
  });

  test("a drop in the middle of a replay recovers from the last publication received", async () => {
    const h = await connected();
    void h.client.subscribe("public:news");
    subscribeOk(h.socket, () => ({ epoch: EPOCH, offset: 10 }));
    await flush();
    let socket = await reconnect(h);
    subscribeOk(socket, () => ({ epoch: EPOCH, offset: 15, recovered: true }));
    publish(socket, "public:news", 11);
    publish(socket, "public:news", 12);
    await flush();
    socket = await reconnect(h);
    assert.deepEqual(socket.lastSent("SUBSCRIBE").payload.subscriptions, [
      { channel: "public:news", recover: { epoch: EPOCH, offset: 12 } },
    ]);
  });

  test("recovered: false carries the reason; the position starts from the stream's", async () => {
    const h = await connected();
    const events = record(h);
    const onSubscribed: SubscribedEvent[] = [];
    void h.client.subscribe("public:news", undefined, { onSubscribed: (e) => onSubscribed.push(e) });
    subscribeOk(h.socket, () => ({ epoch: EPOCH, offset: 16 }));
    await flush();
    const socket = await reconnect(h);
    subscribeOk(socket, () => ({ epoch: "new-epoch", offset: 3, recovered: false, reason: "epoch_changed" }));
    await flush();
    const expected: SubscribedEvent = {
      channel: "public:news",
      resubscribed: true,
      epoch: "new-epoch",
      offset: 3,
      recovered: false,
      reason: "epoch_changed",
      recover: { epoch: EPOCH, offset: 16 },
    };
    assert.deepEqual(events.subscribed.at(-1), expected);
    assert.deepEqual(onSubscribed.map((e) => e.resubscribed), [false, true], "the per-subscription callback, each time");
    assert.deepEqual(onSubscribed.at(-1), expected);
    assert.deepEqual(h.client.position("public:news"), { epoch: "new-epoch", offset: 3 });
  });

  test("a resubscribed channel without a position (no history) reports recovered: false, no_history", async () => {
    const h = await connected();
    const events = record(h);
    void h.client.subscribe("public:plain");
    subscribeOk(h.socket);
    await flush();
    assert.deepEqual(events.subscribed, [{ channel: "public:plain", resubscribed: false, epoch: null, offset: null }]);
    const socket = await reconnect(h);
    assert.deepEqual(socket.lastSent("SUBSCRIBE").payload.subscriptions, ["public:plain"]);
    subscribeOk(socket);
    await flush();
    assert.deepEqual(events.subscribed.at(-1), {
      channel: "public:plain",
      resubscribed: true,
      epoch: null,
      offset: null,
      recovered: false,
      reason: "no_history",
    });
  });

  test("switchboard.gap: the position becomes resume, a gap event and onGap; handlers do not get it", async () => {
    const h = await connected();
    const events = record(h);
    const got: ChannelMessage[] = [];
    const onGap: GapEvent[] = [];
    void h.client.subscribe("public:news", (m) => got.push(m), { onGap: (e) => onGap.push(e) });
    subscribeOk(h.socket, () => ({ epoch: EPOCH, offset: 18 }));
    await flush();
    const data = { epoch: EPOCH, from: 19, to: 24, resume: { epoch: EPOCH, offset: 24 } };
    gap(h.socket, "public:news", data);
    await flush();
    assert.deepEqual(events.gaps, [{ channel: "public:news", ...data }]);
    assert.deepEqual(onGap, [{ channel: "public:news", ...data }]);
    assert.deepEqual(got, []);
    assert.deepEqual(h.client.position("public:news"), { epoch: EPOCH, offset: 24 });
    // An epoch change: `to` is null, resume in the new epoch.
    gap(h.socket, "public:news", { epoch: EPOCH, from: 25, to: null, resume: { epoch: "e2", offset: 0 } });
    publish(h.socket, "public:news", 1);
    await flush();
    assert.equal(events.gaps.at(-1)?.to, null);
    assert.deepEqual(h.client.position("public:news"), { epoch: "e2", offset: 1 });
    const socket = await reconnect(h);
    assert.deepEqual(socket.lastSent("SUBSCRIBE").payload.subscriptions, [
      { channel: "public:news", recover: { epoch: "e2", offset: 1 } },
    ]);
  });

  test("a malformed gap event is an error and changes nothing", async () => {
    const h = await connected();
    const events = record(h);
    void h.client.subscribe("public:news");
    subscribeOk(h.socket, () => ({ epoch: EPOCH, offset: 5 }));
    gap(h.socket, "public:news", { epoch: EPOCH, from: -1, to: 2, resume: { epoch: EPOCH, offset: 2 } });
    gap(h.socket, "public:news", { epoch: EPOCH, from: 1, to: 2 });
    await flush();
    assert.deepEqual(events.gaps, []);
    assert.deepEqual(events.errors.map((e) => e.name), ["MalformedMessageError", "MalformedMessageError"]);
    assert.deepEqual(h.client.position("public:news"), { epoch: EPOCH, offset: 5 });
  });

  test("an offset that is not a whole number ≥ 0 makes the message malformed", async () => {
    const h = await connected();
    const events = record(h);
    const got: ChannelMessage[] = [];
    void h.client.subscribe("public:news", (m) => got.push(m));
    subscribeOk(h.socket, () => ({ epoch: EPOCH, offset: 5 }));
    for (const bad of ["-1", "1.5", '"7"']) {
      h.socket.receive(`{"offset":${bad},"type":"EVENT","id":"x","payload":{"channel":"public:news","event":"e","data":null}}`);
    }
    h.socket.receive({ type: "SUBSCRIBE_SUCCESS", payload: { channel: "public:x", offset: -3 } });
    await flush();
    assert.deepEqual(got, []);
    assert.equal(events.errors.length, 4);
    assert.deepEqual(h.client.position("public:news"), { epoch: EPOCH, offset: 5 });
  });

  test("last: sent in its own SUBSCRIBE until confirmed; the replay then live moves the position", async () => {
    const h = setup();
    void h.client.connect();
    const got: ChannelMessage[] = [];
    // Queued before the connection: `last` is kept until confirmed.
    void h.client.subscribe("public:scores", (m) => got.push(m), { last: 3 });
    void h.client.subscribe("public:a");
    let socket = FakeSocket.last();
    ack(socket);
    await flush();
    assert.deepEqual(
      socket.sentOf("SUBSCRIBE").map((s) => s.payload.subscriptions),
      [[{ channel: "public:scores", last: 3 }], ["public:a"]],
    );
    // Dropped before the answer: asked again.
    socket.serverClose(1006);
    await h.clock.advance(250);
    socket = FakeSocket.last();
    ack(socket);
    await flush();
    const request = socket.sentOf("SUBSCRIBE").find((s) => JSON.stringify(s.payload).includes("scores"));
    assert.deepEqual(request?.payload.subscriptions, [{ channel: "public:scores", last: 3 }]);
    socket.receive({
      type: "SUBSCRIBE_SUCCESS",
      correlation_id: request?.id,
      payload: { channel: "public:scores", epoch: EPOCH, offset: 40 },
    });
    for (const offset of [38, 39, 40, 41]) publish(socket, "public:scores", offset);
    await flush();
    assert.deepEqual(numbers(got), [38, 39, 40, 41]);
    assert.deepEqual(h.client.position("public:scores"), { epoch: EPOCH, offset: 41 });
    // Confirmed: the next reconnect recovers instead of asking for the latest again.
    socket = await reconnect(h);
    assert.deepEqual(
      socket.sentOf("SUBSCRIBE").map((s) => s.payload.subscriptions),
      [[{ channel: "public:scores", recover: { epoch: EPOCH, offset: 41 } }, "public:a"]],
    );
  });

  test("recover: an explicit position (saved earlier) is sent on the first SUBSCRIBE", async () => {
    const h = await connected();
    const result = track(h.client.subscribe("public:news", undefined, { recover: { epoch: EPOCH, offset: 7 } }));
    assert.deepEqual(h.client.position("public:news"), { epoch: EPOCH, offset: 7 });
    assert.deepEqual(h.socket.lastSent("SUBSCRIBE").payload.subscriptions, [
      { channel: "public:news", recover: { epoch: EPOCH, offset: 7 } },
    ]);
    subscribeOk(h.socket, () => ({ epoch: EPOCH, offset: 9, recovered: true }));
    await flush();
    assert.deepEqual(result.value(), {
      channel: "public:news",
      resubscribed: false,
      epoch: EPOCH,
      offset: 9,
      recovered: true,
      recover: { epoch: EPOCH, offset: 7 },
    });
    // A later subscribe() of the kept channel resolves with the same confirmation.
    assert.deepEqual(await h.client.subscribe("public:news"), result.value());
  });

  test("recover on a channel without history: recovered false, no_history, no position", async () => {
    const h = await connected();
    const result = track(h.client.subscribe("public:plain", undefined, { recover: { epoch: EPOCH, offset: 7 } }));
    subscribeOk(h.socket, () => ({ recovered: false, reason: "no_history" }));
    await flush();
    assert.equal(result.value()?.recovered, false);
    assert.equal(result.value()?.reason, "no_history");
    assert.equal(h.client.position("public:plain"), null);
  });

  test("invalid last / recover are refused without a round trip", async () => {
    const h = await connected();
    const cases = [
      { last: 2, recover: { epoch: EPOCH, offset: 1 } },
      { last: 0 },
      { last: 1.5 },
      { recover: { epoch: "", offset: 1 } },
      { recover: { epoch: "x".repeat(65), offset: 1 } },
      { recover: { epoch: EPOCH, offset: -1 } },
      { recover: { epoch: EPOCH, offset: 0.5 } },
    ];
    for (const options of cases) {
      await assert.rejects(
        h.client.subscribe("public:news", undefined, options),
        (e: unknown) => e instanceof SubscribeError && e.code === "invalid_message",
        JSON.stringify(options),
      );
    }
    assert.equal(h.socket.sentOf("SUBSCRIBE").length, 0);
    assert.deepEqual(h.client.channels, []);
  });

  test("a last past the server's limit: the confirmation's `last` says how many follow", async () => {
    const h = await connected();
    const big = track(h.client.subscribe("public:big", undefined, { last: 5000 }));
    const request = h.socket.sentOf("SUBSCRIBE").find((s) => JSON.stringify(s.payload).includes("big"));
    assert.deepEqual(request?.payload.subscriptions, [{ channel: "public:big", last: 5000 }]);
    h.socket.receive({
      type: "SUBSCRIBE_SUCCESS",
      correlation_id: request?.id,
      payload: { channel: "public:big", epoch: EPOCH, offset: 900, last: 300 },
    });
    await flush();
    assert.equal(big.settled(), "resolved");
    assert.equal(big.value()?.last, 300);
    assert.equal(big.value()?.offset, 900);
  });

  test("the ERROR answering a SUBSCRIBE with last (a server that refuses it) rejects that subscribe only", async () => {
    const h = await connected();
    const a = track(h.client.subscribe("public:a"));
    const big = track(h.client.subscribe("public:big", undefined, { last: 5000 }));
    const request = h.socket.sentOf("SUBSCRIBE").find((s) => JSON.stringify(s.payload).includes("big"));
    h.socket.receive({
      type: "ERROR",
      correlation_id: request?.id,
      payload: { code: "invalid_message", message: "public:big: last must be at least 1" },
    });
    const other = h.socket.sentOf("SUBSCRIBE").find((s) => s !== request);
    assert.deepEqual(other?.payload.subscriptions, ["public:a"]);
    h.socket.receive({ type: "SUBSCRIBE_SUCCESS", correlation_id: other?.id, payload: { channel: "public:a" } });
    await flush();
    assert.ok(big.error() instanceof SubscribeError);
    assert.equal(a.settled(), "resolved");
  });
});

describe("SUBSCRIBE_FAILURE unavailable", () => {
  function unavailable(socket: FakeSocket, channel: string): void {
    const request = socket.lastSent("SUBSCRIBE");
    socket.receive({
      type: "SUBSCRIBE_FAILURE",
      correlation_id: request.id,
      payload: { channel, code: "unavailable", reason: "The channel's history is unavailable (broker down); retry" },
    });
  }

  test("is retried with the backoff; the app hears of each through `error`; the subscribe resolves once it works", async () => {
    const h = await connected({ watchServerHeartbeat: false });
    const events = record(h);
    const result = track(h.client.subscribe("public:news", undefined, { timeout: 60_000 }));
    unavailable(h.socket, "public:news");
    await flush();
    assert.equal(result.settled(), "pending");
    const first = events.errors[0];
    assert.ok(first instanceof SubscribeError && first.code === "unavailable");
    assert.equal(first.retryDelay, 250, "retry 0: half of 500 ms (random pinned to 0.5)");
    assert.equal(h.socket.sentOf("SUBSCRIBE").length, 1);
    await h.clock.advance(250);
    assert.equal(h.socket.sentOf("SUBSCRIBE").length, 2);
    unavailable(h.socket, "public:news");
    await flush();
    assert.equal((events.errors[1] as SubscribeError).retryDelay, 500, "retry 1: half of 1 s");
    await h.clock.advance(500);
    assert.equal(h.socket.sentOf("SUBSCRIBE").length, 3);
    subscribeOk(h.socket, () => ({ epoch: EPOCH, offset: 1 }));
    await flush();
    assert.equal(result.value()?.epoch, EPOCH);
    assert.deepEqual(h.client.channels, ["public:news"]);
  });

  test("gives up after subscribeRetries: the subscribe rejects (or subscription_failed)", async () => {
    const h = await connected({ watchServerHeartbeat: false, subscribeRetries: 2 });
    const failed: SubscribeError[] = [];
    h.client.on("subscription_failed", (e) => failed.push(e));
    const result = track(h.client.subscribe("public:news", undefined, { timeout: 60_000 }));
    for (let i = 0; i < 3; i++) {
      unavailable(h.socket, "public:news");
      await h.clock.advance(1_000);
    }
    assert.equal(h.socket.sentOf("SUBSCRIBE").length, 3);
    const error = result.error();
    assert.ok(error instanceof SubscribeError && error.code === "unavailable" && error.retryDelay === null, String(error));
    assert.deepEqual(h.client.channels, []);
    assert.deepEqual(failed, [], "the caller was told");
  });

  test("a resubscription answered unavailable is retried too; a drop meanwhile sends it with the others", async () => {
    const h = await connected({ watchServerHeartbeat: false });
    void h.client.subscribe("public:news");
    void h.client.subscribe("public:b");
    for (const s of h.socket.sentOf("SUBSCRIBE")) {
      const channel = s.payload.subscriptions?.[0] as string;
      h.socket.receive({ type: "SUBSCRIBE_SUCCESS", correlation_id: s.id, payload: { channel, epoch: EPOCH, offset: 4 } });
    }
    await flush();
    let socket = await reconnect(h);
    const request = socket.lastSent("SUBSCRIBE");
    socket.receive({
      type: "SUBSCRIBE_FAILURE",
      correlation_id: request.id,
      payload: { channel: "public:news", code: "unavailable", reason: "retry" },
    });
    socket.receive({
      type: "SUBSCRIBE_SUCCESS",
      correlation_id: request.id,
      payload: { channel: "public:b", epoch: EPOCH, offset: 4, recovered: true },
    });
    await flush();
    assert.deepEqual(h.client.channels, ["public:news", "public:b"], "kept while retrying");
    // The connection drops before the retry: the retry timer is off, the next connection sends it.
    socket = await reconnect(h);
    await h.clock.advance(10_000);
    assert.deepEqual(
      socket.sentOf("SUBSCRIBE").map((s) => s.payload.subscriptions),
      [[
        { channel: "public:news", recover: { epoch: EPOCH, offset: 4 } },
        { channel: "public:b", recover: { epoch: EPOCH, offset: 4 } },
      ]],
    );
  });

  test("unsubscribe() while a retry waits: no retry, no UNSUBSCRIBE", async () => {
    const h = await connected({ watchServerHeartbeat: false });
    void h.client.subscribe("public:news").catch(() => undefined);
    unavailable(h.socket, "public:news");
    await flush();
    await h.client.unsubscribe("public:news");
    await h.clock.advance(30_000);
    assert.equal(h.socket.sentOf("SUBSCRIBE").length, 1);
    assert.equal(h.socket.sentOf("UNSUBSCRIBE").length, 0);
  });
});
