/**
 * Streams and recovery against the real gateway (docs/protocol.md, "Streams
 * and recovery"): the built-in `/ws` keeps history for `public:*`, so a client
 * that was away gets exactly what it missed, in order, then live traffic; a
 * restarted gateway on the in-memory broker has a new epoch, and the client
 * is told it could not recover.
 *
 * The server closes the client's connection with 1012 through the HTTP API
 * (`DELETE /api/v1/connections/{id}?code=1012`), and the client's next
 * sockets go to a closed port until the test has published: the client
 * cannot come back before the publications, whatever its backoff.
 *
 * Skips (loudly) when the binary is missing (a failure under CI), and when
 * the gateway keeps no history yet (its publish answer has no offset).
 */

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { after, before, describe, test } from "node:test";

import {
  SwitchboardClient,
  type ChannelMessage,
  type ClientOptions,
  type GapEvent,
  type SubscribedEvent,
  type WebSocketConstructor,
  type WebSocketLike,
} from "../src/index.js";
import {
  BIN,
  CI,
  freePort,
  Gateway,
  httpPublish,
  kick,
  loud,
  probe,
  until,
  type Published,
} from "./gateway.js";

/** A client whose new sockets fail (to a closed port) while `blocked` is set. */
interface Held {
  readonly client: SwitchboardClient;
  readonly subscribed: SubscribedEvent[];
  readonly gaps: GapEvent[];
  blocked: boolean;
}

describe("integration: streams and recovery on the switchboard binary", { timeout: 120_000 }, () => {
  let gateway: Gateway | null = null;
  let port = 0;
  let closedPort = 0;
  let skip: string | null = null;
  const clients: SwitchboardClient[] = [];

  function held(options: Partial<ClientOptions> = {}): Held {
    const Native = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    assert.ok(Native !== undefined, "no global WebSocket: run on Node 22+ or with --experimental-websocket");
    const h: Held = { client: null as unknown as SwitchboardClient, subscribed: [], gaps: [], blocked: false };
    const ctor = function (url: string, protocols?: string | string[]): WebSocketLike {
      return new Native(h.blocked ? `ws://127.0.0.1:${closedPort}/ws` : url, protocols);
    } as unknown as WebSocketConstructor;
    const token = process.env["SWITCHBOARD_TEST_TOKEN"];
    const client = new SwitchboardClient({
      url: `ws://127.0.0.1:${port}/ws`,
      WebSocket: ctor,
      reconnect: { initialDelay: 100, maxDelay: 500 },
      ...(token === undefined ? {} : { token }),
      ...options,
    });
    client.on("subscribed", (e) => h.subscribed.push(e));
    client.on("gap", (e) => h.gaps.push(e));
    clients.push(client);
    return Object.assign(h, { client });
  }

  /** Publishes `EVENT n` to `channel`; the answer must carry an offset. */
  async function publish(channel: string, n: number): Promise<Published & { offset: number; epoch: string }> {
    const answer = await httpPublish(port, channel, { type: "EVENT", event: "n", data: { n } });
    assert.ok(answer !== "absent", "POST /api/v1/publish");
    assert.equal(typeof answer.offset, "number", `an offset in ${JSON.stringify(answer)}`);
    assert.equal(typeof answer.epoch, "string", `an epoch in ${JSON.stringify(answer)}`);
    return answer as Published & { offset: number; epoch: string };
  }

  const numbers = (messages: ChannelMessage[]): number[] =>
    messages.map((m) => (m.payload as { data?: { n?: number } }).data?.n ?? -1);

  before(async () => {
    if (!existsSync(BIN)) {
      const message =
        `switchboard binary not found at ${BIN}\n` +
        "build it: cargo build --release -p switchboard-gateway (or set SWITCHBOARD_BIN)";
      if (CI) throw new Error(`${message}\n(CI is set: a missing binary fails the run)`);
      skip = message;
      loud(`SKIPPED recovery integration tests: ${message}`);
      return;
    }
    port = await freePort();
    closedPort = await freePort();
    gateway = await Gateway.start(port);
    const answer = await probe(port);
    if (answer.status === 404) {
      skip = "/ws answers 404: the gateway does not serve the structured protocol yet";
      loud(`SKIPPED recovery integration tests: ${skip}`);
      return;
    }
    const published = await httpPublish(port, "public:probe", { type: "EVENT", event: "probe", data: null });
    if (published === "absent" || typeof published.offset !== "number") {
      skip = `the gateway keeps no history for public:* (publish answered ${JSON.stringify(published)}); rebuild it`;
      loud(`SKIPPED recovery integration tests: ${skip}`);
    }
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.disconnect().catch(() => undefined)));
    await gateway?.kill();
  });

  test("disconnected while 50 are published: exactly those 50, in order, then live; recovered: true", { timeout: 60_000 }, async (t) => {
    if (skip !== null) return t.skip(skip);
    const channel = "public:x";
    const h = held();
    const got: ChannelMessage[] = [];
    await h.client.connect();
    const first = await h.client.subscribe(channel, (m) => got.push(m));
    assert.equal(typeof first.epoch, "string");
    const before = await publish(channel, 0);
    await until(() => got.length === 1, "the live publication before the drop");
    assert.deepEqual(h.client.position(channel), { epoch: before.epoch, offset: before.offset });

    // The server closes the connection (1012: come back); the client cannot until released.
    h.blocked = true;
    const disconnected = new Promise<number>((resolve) => h.client.once("disconnected", (e) => resolve(e.code)));
    await kick(port, h.client.connectionId ?? "", 1012);
    assert.equal(await disconnected, 1012);
    const offsets: number[] = [];
    for (let n = 1; n <= 50; n++) offsets.push((await publish(channel, n)).offset);
    assert.deepEqual(offsets, Array.from({ length: 50 }, (_, i) => before.offset + 1 + i), "consecutive offsets");
    assert.equal(got.length, 1, "nothing arrives while disconnected");

    h.blocked = false;
    await until(() => h.subscribed.some((e) => e.channel === channel && e.resubscribed), "the resubscription", 15_000);
    const resubscribed = h.subscribed.find((e) => e.resubscribed);
    assert.deepEqual(resubscribed, {
      channel,
      resubscribed: true,
      epoch: before.epoch,
      offset: before.offset + 50,
      recovered: true,
      recover: { epoch: before.epoch, offset: before.offset },
    });
    await until(() => got.length === 51, "the 50 recovered publications");
    await publish(channel, 51);
    await until(() => got.length === 52, "the live publication after the recovery");
    // A moment for anything duplicated to show up.
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(numbers(got), Array.from({ length: 52 }, (_, i) => i), "each once, in order");
    assert.deepEqual(
      got.map((m) => m.offset),
      Array.from({ length: 52 }, (_, i) => before.offset + i),
      "the offsets, with no hole",
    );
    assert.deepEqual(h.client.position(channel), { epoch: before.epoch, offset: before.offset + 51 });
    assert.deepEqual(h.gaps, []);
  });

  test("last: the latest K at subscribe time; recover: a saved position on a new client", { timeout: 60_000 }, async (t) => {
    if (skip !== null) return t.skip(skip);
    const channel = "public:scores";
    for (let n = 1; n <= 10; n++) await publish(channel, n);
    const a = held();
    const got: ChannelMessage[] = [];
    await a.client.connect();
    const confirmed = await a.client.subscribe(channel, (m) => got.push(m), { last: 3 });
    await until(() => got.length === 3, "the latest 3");
    assert.deepEqual(numbers(got), [8, 9, 10]);
    assert.equal(confirmed.offset, got.at(-1)?.offset);
    const saved = a.client.position(channel);
    assert.ok(saved !== null);
    await a.client.disconnect();

    // As a page reloaded with the position it stored: what followed, nothing more.
    for (let n = 11; n <= 13; n++) await publish(channel, n);
    const b = held();
    const later: ChannelMessage[] = [];
    await b.client.connect();
    const recovered = await b.client.subscribe(channel, (m) => later.push(m), { recover: saved });
    assert.equal(recovered.recovered, true);
    await until(() => later.length === 3, "the 3 published since the saved position");
    assert.deepEqual(numbers(later), [11, 12, 13]);
  });

  test("a gateway restarted on the in-memory broker: recovered: false, epoch_changed", { timeout: 60_000 }, async (t) => {
    if (skip !== null) return t.skip(skip);
    const channel = "public:y";
    const h = held();
    const got: ChannelMessage[] = [];
    await h.client.connect();
    await h.client.subscribe(channel, (m) => got.push(m));
    const before = await publish(channel, 1);
    await until(() => got.length === 1, "a publication before the restart");

    await gateway?.kill("SIGKILL");
    gateway = await Gateway.start(port);
    await until(() => h.subscribed.some((e) => e.resubscribed), "the resubscription after the restart", 20_000);
    const resubscribed = h.subscribed.find((e) => e.resubscribed);
    assert.equal(resubscribed?.recovered, false);
    assert.equal(resubscribed?.reason, "epoch_changed");
    assert.deepEqual(resubscribed?.recover, { epoch: before.epoch, offset: before.offset });
    assert.notEqual(resubscribed?.epoch, before.epoch, "a new epoch");
    // Live from the new stream's position.
    const after = await publish(channel, 2);
    await until(() => got.length === 2, "a live publication after the restart");
    assert.deepEqual(h.client.position(channel), { epoch: after.epoch, offset: after.offset });
  });
});
