/**
 * Presence against the real gateway (docs/protocol.md, "Presence"): who is
 * in a channel (`presence()`, with each client's name and version from the
 * CONNECT this client sends first), its counts (`presenceStats()`), the
 * refusals (`forbidden` when not subscribed, `no_presence`), join and leave
 * events for the subscriber that asked for them only (`joinLeave`, also
 * after it reconnected), and a page reload within the grace that sends
 * neither a leave nor a join.
 *
 * The gateway runs with a configuration file: an HS256 JWT key (authenticated
 * users are what the per-user grace applies to; anonymous connections join
 * and leave at once) and `presence.grace = "1s"` (5 s by default) to keep the
 * test short. Presence stays the default: `public:*`, `join_leave = "user"`.
 *
 * Skips (loudly) when the binary is missing (a failure under CI).
 */

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { after, before, describe, test } from "node:test";

import {
  ServerError,
  SwitchboardClient,
  type ChannelMessage,
  type ClientOptions,
  type PresenceEvent,
  type PresenceMember,
} from "../src/index.js";
import { api, BIN, CI, freePort, Gateway, hs256Token, kick, loud, recordingWebSocket, sleep, until } from "./gateway.js";

const SECRET = "a-js-presence-test-secret-of-32-bytes-or-more";
const GRACE_MS = 1_000;
const CONFIG = [
  "[security.jwt]",
  `keys = [{ algorithm = "HS256", secret = "${SECRET}" }]`,
  "",
  "[presence]",
  `grace = "${GRACE_MS / 1000}s"`,
  "",
].join("\n");

/** What a subscriber heard: join and leave events as `join:<user or connection>`, and the channel's messages. */
interface Listener {
  readonly client: SwitchboardClient;
  readonly heard: string[];
  readonly events: PresenceEvent[];
  readonly messages: ChannelMessage[];
}

describe("integration: presence on the switchboard binary", { timeout: 120_000 }, () => {
  let gateway: Gateway | null = null;
  let port = 0;
  let skip: string | null = null;
  const clients: SwitchboardClient[] = [];

  function client(options: Partial<ClientOptions> & { user?: string } = {}): SwitchboardClient {
    const { user, ...rest } = options;
    const c = new SwitchboardClient({
      url: `ws://127.0.0.1:${port}/ws`,
      WebSocket: recordingWebSocket().ctor,
      reconnect: { initialDelay: 100, maxDelay: 500 },
      ...(user === undefined ? {} : { token: hs256Token(SECRET, user) }),
      ...rest,
    });
    clients.push(c);
    return c;
  }

  /** A client subscribed to `channel` with join and leave events; `heard` lists them. */
  async function listener(channel: string, options: Partial<ClientOptions> & { user?: string } = {}): Promise<Listener> {
    const c = client(options);
    const out: Listener = { client: c, heard: [], events: [], messages: [] };
    const who = (m: PresenceMember): string => m.user ?? m.connection;
    c.on("join", (e) => out.heard.push(`join:${who(e.member)}`));
    c.on("leave", (e) => out.heard.push(`leave:${who(e.member)}`));
    await c.connect();
    const subscribed = await c.subscribe(channel, (m) => out.messages.push(m), {
      joinLeave: true,
      onJoin: (e) => out.events.push(e),
      onLeave: (e) => out.events.push(e),
    });
    assert.equal(subscribed.joinLeave, true, "the gateway sends join and leave events on public:*");
    return out;
  }

  before(async () => {
    if (!existsSync(BIN)) {
      const message =
        `switchboard binary not found at ${BIN}\n` +
        "build it: cargo build --release -p switchboard-gateway (or set SWITCHBOARD_BIN)";
      if (CI) throw new Error(`${message}\n(CI is set: a missing binary fails the run)`);
      skip = message;
      loud(`SKIPPED presence integration tests: ${message}`);
      return;
    }
    port = await freePort();
    gateway = await Gateway.start(port, { config: CONFIG });
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.disconnect().catch(() => undefined)));
    await gateway?.kill();
  });

  test("presence() lists both clients with their CONNECT info; presenceStats() counts them; the HTTP API agrees", { timeout: 30_000 }, async (t) => {
    if (skip !== null) return t.skip(skip);
    const channel = "public:js-presence-list";
    const alice = client({ user: "alice" });
    const guest = client({ client: { name: "js-integration", version: "9.9.9" } });
    await Promise.all([alice.connect(), guest.connect()]);
    await alice.subscribe(channel);
    await guest.subscribe(channel);

    const presence = await alice.presence(channel);
    assert.equal(presence.channel, channel);
    assert.equal(presence.connections, 2);
    assert.equal(presence.users, 1, "guest is anonymous");
    const byConnection = new Map(presence.members.map((m) => [m.connection, m]));
    assert.deepEqual(byConnection.get(alice.connectionId ?? ""), {
      connection: alice.connectionId,
      user: "alice",
      info: { client: { name: "switchboard-js", version: "0.1.0" } },
    });
    assert.deepEqual(byConnection.get(guest.connectionId ?? ""), {
      connection: guest.connectionId,
      user: null,
      info: { client: { name: "js-integration", version: "9.9.9" } },
    });
    // The other client sees the same.
    const seen = await guest.presence(channel);
    assert.deepEqual(new Set(seen.members.map((m) => m.connection)), new Set(byConnection.keys()));

    assert.deepEqual(await guest.presenceStats(channel), { channel, connections: 2, users: 1 });
    const http = await api(port, "GET", `/api/v1/channels/${encodeURIComponent(channel)}/presence/stats`);
    assert.deepEqual(http.body, { channel, connections: 2, users: 1 });

    // Gone at once (the server applies it in the background: ask until it has).
    await guest.unsubscribe(channel);
    let stats = await alice.presenceStats(channel);
    for (let i = 0; i < 50 && stats.connections !== 1; i++) {
      await sleep(20);
      stats = await alice.presenceStats(channel);
    }
    assert.deepEqual(stats, { channel, connections: 1, users: 1 });
  });

  test("refusals: forbidden when not subscribed (even to a channel it could join), no_presence for a channel without presence", { timeout: 30_000 }, async (t) => {
    if (skip !== null) return t.skip(skip);
    const bob = client({ user: "bob" });
    await bob.connect();
    const refused = (code: string) => (error: unknown) => {
      assert.ok(error instanceof ServerError, String(error));
      assert.equal(error.code, code);
      assert.ok(error.correlationId !== null);
      return true;
    };
    await assert.rejects(bob.presence("public:js-not-subscribed"), refused("forbidden"));
    await assert.rejects(bob.presenceStats("public:js-not-subscribed"), refused("forbidden"));
    // user:{user_id}:* is open to its user and keeps no presence.
    await bob.subscribe("user:bob:inbox");
    await assert.rejects(bob.presence("user:bob:inbox"), refused("no_presence"));
    await assert.rejects(bob.presenceStats("user:bob:inbox"), refused("no_presence"));
    // The connection goes on.
    assert.equal(bob.state, "authenticated");
    await bob.ping();
  });

  test("join and leave events reach the subscriber that asked, only it, never the channel's handler", { timeout: 30_000 }, async (t) => {
    if (skip !== null) return t.skip(skip);
    const channel = "public:js-presence-events";
    const watcher = await listener(channel);
    const quiet = client();
    const quietHeard: string[] = [];
    const quietMessages: ChannelMessage[] = [];
    quiet.on("join", () => quietHeard.push("join"));
    quiet.on("leave", () => quietHeard.push("leave"));
    await quiet.connect();
    const plain = await quiet.subscribe(channel, (m) => quietMessages.push(m));
    assert.equal(plain.joinLeave, undefined);
    // The quiet client's arrival, anonymous: a join at once, by connection.
    await until(() => watcher.heard.length === 1, "the quiet client's join");
    assert.deepEqual(watcher.heard, [`join:${quiet.connectionId}`]);

    const carol = client({ user: "carol" });
    await carol.connect();
    await carol.subscribe(channel);
    await until(() => watcher.heard.length === 2, "carol's join");
    assert.equal(watcher.heard[1], "join:carol");
    const joined = watcher.events.at(-1);
    assert.deepEqual(joined, {
      channel,
      member: { connection: carol.connectionId, user: "carol", info: { client: { name: "switchboard-js", version: "0.1.0" } } },
    });

    // Carol leaves: her leave waits for the grace (she could come back).
    const left = Date.now();
    await carol.unsubscribe(channel);
    await until(() => watcher.heard.length === 3, "carol's leave", GRACE_MS + 5_000);
    assert.equal(watcher.heard[2], "leave:carol");
    assert.ok(Date.now() - left >= GRACE_MS - 100, `the leave waited for the grace (${Date.now() - left} ms)`);
    // The quiet client leaves: anonymous, at once.
    await quiet.unsubscribe(channel);
    await until(() => watcher.heard.length === 4, "the quiet client's leave");
    assert.equal(watcher.heard[3], `leave:${quiet.connectionId}`);

    await sleep(200);
    assert.deepEqual(quietHeard, [], "no events for a subscriber that did not ask");
    assert.deepEqual(watcher.messages, [], "events never reach the channel's handler");
    assert.deepEqual(quietMessages, []);
    assert.equal(watcher.events.length, 4, "onJoin / onLeave were told too");
  });

  test("after its connection is closed the subscriber asks for the events again (recovering) and still hears them", { timeout: 30_000 }, async (t) => {
    if (skip !== null) return t.skip(skip);
    const channel = "public:js-presence-resubscribe";
    const watcher = await listener(channel);
    const resubscribed: boolean[] = [];
    watcher.client.on("subscribed", (e) => {
      if (e.resubscribed) resubscribed.push(e.joinLeave === true && e.recover !== undefined);
    });
    await kick(port, watcher.client.connectionId ?? "", 1012);
    await until(() => resubscribed.length === 1, "the resubscription", 10_000);
    assert.deepEqual(resubscribed, [true], "join_leave went with recover, and the server confirmed it");
    const dave = client({ user: "dave" });
    await dave.connect();
    await dave.subscribe(channel);
    await until(() => watcher.heard.includes("join:dave"), "dave's join after the resubscription");
  });

  test("a page reload within the grace sends neither a leave nor a join", { timeout: 30_000 }, async (t) => {
    if (skip !== null) return t.skip(skip);
    const channel = "public:js-presence-reload";
    const watcher = await listener(channel);
    const first = client({ user: "erin" });
    await first.connect();
    await first.subscribe(channel);
    await until(() => watcher.heard.includes("join:erin"), "erin's join");

    // The page reloads: its client goes, a new one (a new connection, the same user) comes.
    await first.disconnect();
    const again = client({ user: "erin" });
    await again.connect();
    await again.subscribe(channel);
    assert.notEqual(again.connectionId, first.connectionId);
    const presence = await again.presence(channel);
    assert.deepEqual(
      presence.members.filter((m) => m.user === "erin").map((m) => m.connection),
      [again.connectionId],
      "the list changed at once",
    );
    await sleep(GRACE_MS * 2);
    assert.deepEqual(watcher.heard, ["join:erin"], "nothing while she was back within the grace");

    // Gone for good: the leave follows the grace.
    await again.disconnect();
    await until(() => watcher.heard.length === 2, "erin's leave", GRACE_MS + 5_000);
    assert.deepEqual(watcher.heard, ["join:erin", "leave:erin"]);
  });
});
