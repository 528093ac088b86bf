import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { ServerError, SubscribeError, TimeoutError, type ChannelMessage } from "../src/index.js";
import { channelOf, connected, FakeSocket, flush, setup, subscribeOk, track } from "./harness.js";

describe("subscribe / unsubscribe", () => {
  test("SUBSCRIBE_SUCCESS matched by channel and correlation_id resolves", async () => {
    const { client, socket } = await connected();
    const result = track(client.subscribe("public:news"));
    const sent = socket.lastSent("SUBSCRIBE");
    assert.deepEqual(sent.payload, { subscriptions: ["public:news"] });
    // A reply for another channel, or to another SUBSCRIBE, does not settle it.
    socket.receive({ type: "SUBSCRIBE_SUCCESS", correlation_id: sent.id, payload: { channel: "public:other" } });
    socket.receive({ type: "SUBSCRIBE_SUCCESS", correlation_id: "someone-else", payload: { channel: "public:news" } });
    await flush();
    assert.equal(result.settled(), "pending");
    socket.receive({ type: "SUBSCRIBE_SUCCESS", correlation_id: sent.id, payload: { channel: "public:news" } });
    await flush();
    assert.equal(result.settled(), "resolved");
    assert.deepEqual(client.channels, ["public:news"]);
  });

  test("SUBSCRIBE_FAILURE rejects with SubscribeError carrying the code; the channel is dropped", async () => {
    const { client, socket } = await connected();
    const result = track(client.subscribe("private:admin"));
    const sent = socket.lastSent("SUBSCRIBE");
    socket.receive({
      type: "SUBSCRIBE_FAILURE",
      correlation_id: sent.id,
      payload: { channel: "private:admin", code: "forbidden", reason: "Not allowed to subscribe to this channel" },
    });
    await flush();
    const error = result.error();
    assert.ok(error instanceof SubscribeError);
    assert.equal(error.code, "forbidden");
    assert.equal(error.channel, "private:admin");
    assert.deepEqual(client.channels, []);
  });

  test("an ERROR answering the SUBSCRIBE (e.g. not_authenticated) rejects it", async () => {
    const { client, socket } = await connected();
    const result = track(client.subscribe("public:news"));
    socket.receive({
      type: "ERROR",
      correlation_id: socket.lastSent("SUBSCRIBE").id,
      payload: { code: "not_authenticated", message: "authenticate first" },
    });
    await flush();
    assert.ok(result.error() instanceof SubscribeError);
    assert.equal((result.error() as SubscribeError).code, "not_authenticated");
  });

  test("a reply to an older SUBSCRIBE (unsubscribed and subscribed again since) is stale", async () => {
    const { client, socket } = await connected();
    void client.subscribe("public:a").catch(() => undefined);
    const first = socket.lastSent("SUBSCRIBE");
    void client.unsubscribe("public:a").catch(() => undefined);
    const second = track(client.subscribe("public:a"));
    const latest = socket.lastSent("SUBSCRIBE");
    assert.notEqual(first.id, latest.id);
    socket.receive({
      type: "SUBSCRIBE_FAILURE",
      correlation_id: first.id,
      payload: { channel: "public:a", code: "internal", reason: "old" },
    });
    await flush();
    assert.equal(second.settled(), "pending");
    socket.receive({ type: "SUBSCRIBE_SUCCESS", correlation_id: latest.id, payload: { channel: "public:a" } });
    await flush();
    assert.equal(second.settled(), "resolved");
  });

  test("a reply without correlation_id is matched by channel", async () => {
    const { client, socket } = await connected();
    const result = track(client.subscribe("public:a"));
    socket.receive({ type: "SUBSCRIBE_SUCCESS", payload: { channel: "public:a" } });
    await flush();
    assert.equal(result.settled(), "resolved");
  });

  test("per-channel handlers get EVENT, DATA and NOTIFICATION of their channel only", async () => {
    const { client, socket } = await connected();
    const news: ChannelMessage[] = [];
    const inbox: string[] = [];
    void client.subscribe("public:news", (m) => news.push(m));
    void client.subscribe("user:alice:inbox", (m) => inbox.push(m.type));
    for (const s of socket.sentOf("SUBSCRIBE")) {
      for (const channel of (s.payload.subscriptions ?? []).map(channelOf)) {
        socket.receive({ type: "SUBSCRIBE_SUCCESS", correlation_id: s.id, payload: { channel } });
      }
    }
    socket.receive({ type: "EVENT", payload: { channel: "public:news", event: "article.published", data: { title: "Hello" } } });
    socket.receive({ type: "DATA", payload: { channel: "user:alice:inbox", resource: "messages", data: [] } });
    socket.receive({
      type: "NOTIFICATION",
      payload: { channel: "public:news", title: "Deploy", message: "v2", level: "success", actions: [] },
    });
    socket.receive({ type: "EVENT", payload: { event: "no.channel", data: null } });
    socket.receive({ type: "EVENT", payload: { channel: "public:unsubscribed", event: "x", data: null } });
    await flush();
    assert.deepEqual(news.map((m) => m.type), ["EVENT", "NOTIFICATION"]);
    const first = news[0];
    assert.ok(first?.type === "EVENT");
    assert.equal(first.payload.event, "article.published");
    assert.deepEqual(first.payload.data, { title: "Hello" });
    assert.deepEqual(inbox, ["DATA"]);
  });

  test("subscribing again to a confirmed channel resolves at once and adds the handler", async () => {
    const { client, socket } = await connected();
    const calls: string[] = [];
    void client.subscribe("public:a", () => calls.push("first"));
    subscribeOk(socket);
    await flush();
    await client.subscribe("public:a", () => calls.push("second"));
    assert.equal(socket.sentOf("SUBSCRIBE").length, 1);
    socket.receive({ type: "EVENT", payload: { channel: "public:a", event: "e", data: 1 } });
    await flush();
    assert.deepEqual(calls, ["first", "second"]);
  });

  test("two subscribe() calls while pending share the one SUBSCRIBE", async () => {
    const { client, socket } = await connected();
    const a = track(client.subscribe("public:a"));
    const b = track(client.subscribe("public:a"));
    assert.equal(socket.sentOf("SUBSCRIBE").length, 1);
    subscribeOk(socket);
    await flush();
    assert.equal(a.settled(), "resolved");
    assert.equal(b.settled(), "resolved");
  });

  test("an invalid channel name is refused without a round trip", async () => {
    const { client, socket } = await connected();
    for (const bad of ["", "has space", "x".repeat(256), "ümlaut", "a#b"]) {
      await assert.rejects(client.subscribe(bad), (e: unknown) => e instanceof SubscribeError && e.code === "invalid_channel");
    }
    void client.subscribe("A-z_0.9:@/=");
    assert.equal(socket.sentOf("SUBSCRIBE").length, 1, "every allowed character");
  });

  test("no SUBSCRIBE_SUCCESS within the timeout rejects with TimeoutError and forgets the channel", async () => {
    const { client, clock } = await connected({ watchServerHeartbeat: false });
    const result = track(client.subscribe("public:slow", undefined, { timeout: 3_000 }));
    await clock.advance(3_000);
    assert.ok(result.error() instanceof TimeoutError);
    assert.deepEqual(client.channels, []);
  });

  test("unsubscribe sends UNSUBSCRIBE and resolves on UNSUBSCRIBE_ACK; handlers stop", async () => {
    const { client, socket } = await connected();
    const got: string[] = [];
    void client.subscribe("public:a", (m) => got.push(m.type));
    subscribeOk(socket);
    await flush();
    const done = track(client.unsubscribe("public:a"));
    const sent = socket.lastSent("UNSUBSCRIBE");
    assert.deepEqual(sent.payload, { subscriptions: ["public:a"] });
    socket.receive({ type: "EVENT", payload: { channel: "public:a", event: "late", data: 1 } });
    await flush();
    assert.deepEqual(got, [], "no delivery after unsubscribe()");
    assert.equal(done.settled(), "pending");
    socket.receive({ type: "UNSUBSCRIBE_ACK", correlation_id: sent.id, payload: { subscriptions: ["public:a"] } });
    await flush();
    assert.equal(done.settled(), "resolved");
    assert.deepEqual(client.channels, []);
  });

  test("unsubscribe of an unknown channel, or while disconnected, resolves at once", async () => {
    const { client } = setup();
    await client.unsubscribe("public:never");
    void client.subscribe("public:queued").catch(() => undefined);
    await client.unsubscribe("public:queued");
    assert.deepEqual(client.channels, []);
  });

  test("unsubscribe() before the confirmation rejects the pending subscribe", async () => {
    const { client } = await connected();
    const result = track(client.subscribe("public:a"));
    void client.unsubscribe("public:a").catch(() => undefined);
    await flush();
    assert.ok(result.error() instanceof SubscribeError);
    assert.equal((result.error() as SubscribeError).code, "cancelled");
  });

  test("an ERROR answering UNSUBSCRIBE rejects it with ServerError", async () => {
    const { client, socket } = await connected();
    void client.subscribe("public:a");
    subscribeOk(socket);
    await flush();
    const done = track(client.unsubscribe("public:a"));
    socket.receive({
      type: "ERROR",
      correlation_id: socket.lastSent("UNSUBSCRIBE").id,
      payload: { code: "internal", message: "oops" },
    });
    await flush();
    assert.ok(done.error() instanceof ServerError);
  });

  test("the connection closing while UNSUBSCRIBE is in flight resolves it (the subscription is gone)", async () => {
    const { client, socket } = await connected();
    void client.subscribe("public:a");
    subscribeOk(socket);
    await flush();
    const done = track(client.unsubscribe("public:a"));
    socket.serverClose(1006);
    await flush();
    assert.equal(done.settled(), "resolved");
    assert.equal(FakeSocket.all.length, 1);
  });
});
