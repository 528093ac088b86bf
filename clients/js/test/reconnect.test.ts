import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { CLOSE_CODE_ADVICE, CLOSE_CODES, ConnectionClosedError } from "../src/index.js";
import { ack, authOk, channelOf, FakeSocket, flush, setup, subscribeOk, track } from "./harness.js";

describe("reconnect", () => {
  test("backoff timings: full jitter windows 0.5, 1, 2, 4, 8, 16, 20, 20 s (random pinned)", async () => {
    const randoms = [0.5, 0.25, 0.999, 0, 0.5, 0.5, 0.5, 0.75];
    const { client, clock, log } = setup({ reconnect: { random: () => randoms.shift() ?? 0.5 } });
    void client.connect();
    ack(FakeSocket.last());
    await flush();
    const expected = [250, 250, 1998, 0, 4000, 8000, 10000, 15000];
    for (let i = 0; i < expected.length; i++) {
      // Each attempt fails before it connects.
      FakeSocket.last().serverClose(1006);
      await flush();
      assert.equal(log.at(-1), `reconnecting:${i + 1}:${expected[i]}`);
      const sockets = FakeSocket.all.length;
      if ((expected[i] ?? 0) > 0) {
        await clock.advance((expected[i] ?? 0) - 1);
        assert.equal(FakeSocket.all.length, sockets, `attempt ${i + 1} not before its delay`);
      }
      await clock.advance(1);
      assert.equal(FakeSocket.all.length, sockets + 1, `attempt ${i + 1} at its delay`);
    }
  });

  test("custom backoff options and maxAttempts: gives up with state error", async () => {
    const { client, clock, log } = setup({
      reconnect: { initialDelay: 100, maxDelay: 300, factor: 3, maxAttempts: 3, random: () => 0.5 },
    });
    const ready = track(client.connect());
    for (let i = 0; i < 3; i++) {
      FakeSocket.last().fail();
      await clock.advance(1_000);
    }
    FakeSocket.last().fail();
    await clock.advance(10_000);
    assert.deepEqual(
      log.filter((l) => l.startsWith("reconnecting")),
      ["reconnecting:1:50", "reconnecting:2:150", "reconnecting:3:150"],
    );
    assert.equal(FakeSocket.all.length, 4, "the first try and 3 reconnects");
    assert.equal(client.state, "error");
    assert.equal(ready.settled(), "rejected");
    assert.match(String(ready.error()), /gave up after 3 reconnect attempts/);
  });

  test("the attempt count resets after a successful connection", async () => {
    const { client, clock, log } = setup();
    void client.connect();
    FakeSocket.last().fail();
    await clock.advance(250);
    FakeSocket.last().fail();
    await clock.advance(500);
    ack(FakeSocket.last());
    await flush();
    FakeSocket.last().serverClose(1001, "going away");
    await flush();
    assert.deepEqual(
      log.filter((l) => l.startsWith("reconnecting")),
      ["reconnecting:1:250", "reconnecting:2:500", "reconnecting:1:250"],
    );
  });

  test("reconnect: false closes for good on any code", async () => {
    const { client, clock } = setup({ reconnect: false });
    void client.connect().catch(() => undefined);
    ack(FakeSocket.last());
    await flush();
    FakeSocket.last().serverClose(1006);
    await clock.advance(60_000);
    assert.equal(FakeSocket.all.length, 1);
    assert.equal(client.state, "error");
  });

  for (const code of CLOSE_CODES) {
    const advice = CLOSE_CODE_ADVICE[code];
    test(`close ${code}: ${advice === "no" ? "terminal" : "reconnects"} (with a token provider)`, async () => {
      const { client, clock, log } = setup({ token: async () => "t" });
      void client.connect().catch(() => undefined);
      ack(FakeSocket.last(), { requires_auth: true });
      await flush();
      authOk(FakeSocket.last());
      await flush();
      FakeSocket.last().serverClose(code, "bye");
      await clock.advance(advice === "no" ? 60_000 : 250);
      if (advice === "no") {
        assert.equal(FakeSocket.all.length, 1);
        assert.ok(log.includes(`disconnected:${code}:stop`));
        assert.equal(client.state, code === 1000 ? "disconnected" : "error");
      } else {
        assert.equal(FakeSocket.all.length, 2);
        assert.ok(log.includes(`disconnected:${code}:retry`));
        assert.equal(client.state, "connecting");
      }
    });
  }

  test("unknown close codes (1005, 1015, 4999) reconnect", async () => {
    for (const code of [1005, 1015, 4999]) {
      const { client, clock } = setup();
      void client.connect();
      ack(FakeSocket.last());
      await flush();
      FakeSocket.last().serverClose(code);
      await clock.advance(250);
      assert.equal(FakeSocket.all.length, 2, `close ${code}`);
      void client.disconnect();
    }
  });

  test("a terminal close rejects queued work and connect() with ConnectionClosedError", async () => {
    const { client } = setup();
    const ready = track(client.connect());
    const request = track(client.request("later"));
    FakeSocket.last().serverClose(1008, "policy");
    await flush();
    assert.ok(ready.error() instanceof ConnectionClosedError);
    assert.equal((request.error() as ConnectionClosedError).code, 1008);
    assert.equal(client.state, "error");
  });

  test("after a reconnect: re-authenticates, then resubscribes every channel in one SUBSCRIBE", async () => {
    const { client, clock, log } = setup({ token: async () => "t" });
    void client.connect();
    ack(FakeSocket.last(), { requires_auth: true });
    await flush();
    authOk(FakeSocket.last());
    await flush();
    const news: string[] = [];
    const a = track(client.subscribe("public:news", (m) => news.push(m.type)));
    const b = track(client.subscribe("user:alice:inbox"));
    // Each subscribe() went in its own SUBSCRIBE; answer both.
    const first = FakeSocket.all[0] as FakeSocket;
    assert.equal(first.sentOf("SUBSCRIBE").length, 2);
    for (const s of first.sentOf("SUBSCRIBE")) {
      for (const channel of (s.payload.subscriptions ?? []).map(channelOf)) {
        first.receive({ type: "SUBSCRIBE_SUCCESS", correlation_id: s.id, payload: { channel } });
      }
    }
    await flush();
    assert.equal(a.settled(), "resolved");
    assert.equal(b.settled(), "resolved");

    first.serverClose(1012, "restarting");
    await clock.advance(250);
    const second = FakeSocket.last();
    assert.notEqual(second, first);
    ack(second, { requires_auth: true });
    await flush();
    assert.deepEqual(second.sent.map((m) => m.type), ["CONNECT", "AUTHENTICATE"], "nothing but CONNECT before authentication");
    authOk(second);
    await flush();
    const resubscribe = second.lastSent("SUBSCRIBE");
    assert.deepEqual(resubscribe.payload.subscriptions, ["public:news", "user:alice:inbox"]);
    subscribeOk(second);
    await flush();
    second.receive({ type: "EVENT", payload: { channel: "public:news", event: "x", data: 1 } });
    await flush();
    assert.deepEqual(news, ["EVENT"], "the handler survives the reconnect");
    assert.ok(log.includes("authenticated:alice"));
    assert.deepEqual(client.channels, ["public:news", "user:alice:inbox"]);
  });

  test("subscribed events say whether it was a resubscription", async () => {
    const { client, clock } = setup();
    const events: string[] = [];
    client.on("subscribed", (e) => events.push(`${e.channel}:${e.resubscribed}`));
    void client.connect();
    ack(FakeSocket.last());
    await flush();
    void client.subscribe("public:a");
    subscribeOk(FakeSocket.last());
    await flush();
    FakeSocket.last().serverClose(1006);
    await clock.advance(250);
    ack(FakeSocket.last());
    await flush();
    subscribeOk(FakeSocket.last());
    await flush();
    assert.deepEqual(events, ["public:a:false", "public:a:true"]);
  });

  test("a resubscription refused after a reconnect drops the channel and emits subscription_failed", async () => {
    const { client, clock } = setup();
    const failures: string[] = [];
    client.on("subscription_failed", (e) => failures.push(`${e.channel}:${e.code}`));
    void client.connect();
    ack(FakeSocket.last());
    await flush();
    void client.subscribe("private:admin");
    subscribeOk(FakeSocket.last());
    await flush();
    FakeSocket.last().serverClose(1006);
    await clock.advance(250);
    const socket = FakeSocket.last();
    ack(socket);
    await flush();
    const request = socket.lastSent("SUBSCRIBE");
    socket.receive({
      type: "SUBSCRIBE_FAILURE",
      correlation_id: request.id,
      payload: { channel: "private:admin", code: "forbidden", reason: "no" },
    });
    await flush();
    assert.deepEqual(failures, ["private:admin:forbidden"]);
    assert.deepEqual(client.channels, []);
  });

  test("disconnect() during the backoff wait cancels the reconnect", async () => {
    const { client, clock } = setup();
    void client.connect();
    ack(FakeSocket.last());
    await flush();
    FakeSocket.last().serverClose(1006);
    await flush();
    await client.disconnect();
    assert.equal(client.state, "disconnected");
    await clock.advance(60_000);
    assert.equal(FakeSocket.all.length, 1);
  });

  test("subscriptions survive disconnect()/connect() and are restored", async () => {
    const { client } = setup();
    void client.connect();
    ack(FakeSocket.last());
    await flush();
    void client.subscribe("public:a");
    subscribeOk(FakeSocket.last());
    await flush();
    const closing = client.disconnect();
    FakeSocket.last().serverClose(1000);
    await closing;
    void client.connect();
    ack(FakeSocket.last());
    await flush();
    assert.deepEqual(FakeSocket.last().lastSent("SUBSCRIBE").payload.subscriptions, ["public:a"]);
  });
  test("a disconnected listener may call disconnect() (no reconnect) or connect() (starts again)", async () => {
    const first = setup();
    first.client.on("disconnected", () => void first.client.disconnect());
    void first.client.connect();
    ack(FakeSocket.last());
    await flush();
    FakeSocket.last().serverClose(1006);
    await first.clock.advance(60_000);
    assert.equal(FakeSocket.all.length, 1);
    assert.equal(first.client.state, "disconnected");

    const second = setup();
    let again: Promise<void> | null = null;
    second.client.on("disconnected", (e) => {
      if (!e.willReconnect && again === null) again = second.client.connect();
    });
    void second.client.connect();
    ack(FakeSocket.last());
    await flush();
    FakeSocket.last().serverClose(1008, "policy");
    await flush();
    assert.equal(FakeSocket.all.length, 2, "connect() from the listener opened a socket");
    assert.equal(second.client.state, "connecting");
    ack(FakeSocket.last());
    await flush();
    assert.equal(second.client.state, "connected");
    await again;
  });
});
