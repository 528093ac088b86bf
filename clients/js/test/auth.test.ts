import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { AuthenticationError, TokenProviderError, type TokenContext } from "../src/index.js";
import { ack, authOk, FakeSocket, flush, setup, track } from "./harness.js";

/** A token provider that records why it was called and hands out token-1, token-2, … */
function provider(): { fn: (c: TokenContext) => Promise<string>; reasons: string[] } {
  const reasons: string[] = [];
  return {
    reasons,
    fn: async (context) => {
      reasons.push(context.reason);
      return `token-${reasons.length}`;
    },
  };
}

describe("authentication", () => {
  test("a fixed token: AUTHENTICATE after CONNECT_ACK, ready on AUTHENTICATE_SUCCESS", async () => {
    const { client, log } = setup({ token: "secret" });
    const ready = track(client.connect());
    const socket = FakeSocket.last();
    ack(socket, { requires_auth: true });
    await flush();
    assert.equal(client.state, "authenticating");
    assert.equal(ready.settled(), "pending");
    const auth = socket.lastSent("AUTHENTICATE");
    assert.deepEqual(auth.payload, { auth: { token: "secret" } });
    assert.ok(auth.id.length >= 1 && auth.id.length <= 64);
    authOk(socket, { user_id: "alice" });
    await flush();
    assert.equal(ready.settled(), "resolved");
    assert.equal(client.state, "authenticated");
    assert.deepEqual(client.session, { userId: "alice", expiresAt: null, permissions: ["chat:write"] });
    assert.deepEqual(log, [
      "state:connecting",
      "state:connected",
      "state:authenticating",
      "state:authenticated",
      "authenticated:alice",
    ]);
  });

  test("a token is sent even when the endpoint does not require one (it identifies the user)", async () => {
    const { client } = setup({ token: "secret" });
    void client.connect();
    const socket = FakeSocket.last();
    ack(socket, { requires_auth: false });
    await flush();
    assert.equal(socket.sentOf("AUTHENTICATE").length, 1);
    assert.equal(client.ready, false);
  });

  test("nothing else is sent before AUTHENTICATE_SUCCESS: work made meanwhile waits", async () => {
    const { client } = setup({ token: "secret" });
    void client.connect();
    const socket = FakeSocket.last();
    ack(socket, { requires_auth: true });
    await flush();
    void client.subscribe("public:news").catch(() => undefined);
    void client.request("echo", 1).catch(() => undefined);
    assert.deepEqual(socket.sent.map((m) => m.type), ["CONNECT", "AUTHENTICATE"]);
    authOk(socket);
    await flush();
    assert.deepEqual(socket.sent.map((m) => m.type), ["CONNECT", "AUTHENTICATE", "SUBSCRIBE", "ACTION"]);
  });

  test("a fixed token refused: AuthenticationError, closed with 1000, no retry, no reconnect", async () => {
    const { client, clock, log } = setup({ token: "bad" });
    const ready = track(client.connect());
    const socket = FakeSocket.last();
    ack(socket, { requires_auth: true });
    await flush();
    socket.receive({
      type: "AUTHENTICATE_FAILURE",
      correlation_id: socket.lastSent("AUTHENTICATE").id,
      payload: { reason: "Invalid token: bad signature", attempts_left: 2 },
    });
    await flush();
    assert.equal(ready.settled(), "rejected");
    const error = ready.error();
    assert.ok(error instanceof AuthenticationError);
    assert.equal(error.reason, "Invalid token: bad signature");
    assert.equal(error.attemptsLeft, 2);
    assert.equal(socket.sentOf("AUTHENTICATE").length, 1, "the same token is not sent again");
    assert.equal(socket.closedByClient?.code, 1000);
    assert.equal(client.state, "error");
    assert.ok(log.includes("auth_failed:Invalid token: bad signature"));
    await clock.advance(60_000);
    assert.equal(FakeSocket.all.length, 1);
  });

  test("a token provider refused: asked again (reason retry) while attempts are left", async () => {
    const p = provider();
    const { client } = setup({ token: p.fn });
    const ready = track(client.connect());
    const socket = FakeSocket.last();
    ack(socket, { requires_auth: true });
    await flush();
    socket.receive({
      type: "AUTHENTICATE_FAILURE",
      correlation_id: socket.lastSent("AUTHENTICATE").id,
      payload: { reason: "Invalid token: token expired", attempts_left: 2 },
    });
    await flush();
    assert.deepEqual(p.reasons, ["connect", "retry"]);
    assert.deepEqual(socket.lastSent("AUTHENTICATE").payload, { auth: { token: "token-2" } });
    authOk(socket);
    await flush();
    assert.equal(ready.settled(), "resolved");
  });

  test("4004 (authentication failed 3 times) is terminal", async () => {
    const p = provider();
    const { client, clock, log } = setup({ token: p.fn });
    const ready = track(client.connect());
    const socket = FakeSocket.last();
    ack(socket, { requires_auth: true });
    await flush();
    socket.serverClose(4004, "authentication failed");
    await flush();
    assert.equal(ready.settled(), "rejected");
    assert.ok(log.includes("disconnected:4004:stop"));
    assert.equal(client.state, "error");
    await clock.advance(60_000);
    assert.equal(FakeSocket.all.length, 1);
  });

  test("the token provider is called on every connection, with its reason", async () => {
    const p = provider();
    const { client, clock } = setup({ token: p.fn });
    void client.connect();
    ack(FakeSocket.last(), { requires_auth: true });
    await flush();
    authOk(FakeSocket.last());
    await flush();
    FakeSocket.last().serverClose(1006);
    await clock.advance(250); // first retry: 0.5 × 500 ms
    ack(FakeSocket.last(), { requires_auth: true });
    await flush();
    assert.deepEqual(FakeSocket.last().lastSent("AUTHENTICATE").payload, { auth: { token: "token-2" } });
    authOk(FakeSocket.last());
    await flush();
    assert.equal(client.state, "authenticated");
    FakeSocket.last().serverClose(4003, "token expired");
    await clock.advance(250);
    // A failed attempt after 4003 still asks for a fresh token ("expired" sticks).
    FakeSocket.last().serverClose(1006);
    await clock.advance(500); // second retry: 0.5 × 1000 ms
    ack(FakeSocket.last(), { requires_auth: true });
    await flush();
    authOk(FakeSocket.last());
    await flush();
    assert.equal(client.state, "authenticated");
    assert.deepEqual(p.reasons, ["connect", "reconnect", "expired", "expired"]);
    assert.equal(FakeSocket.all.length, 4);
  });

  test("4003 with a fixed token is terminal (the same token cannot work)", async () => {
    const { client, clock, log } = setup({ token: "fixed" });
    void client.connect();
    ack(FakeSocket.last(), { requires_auth: true });
    await flush();
    authOk(FakeSocket.last());
    await flush();
    FakeSocket.last().serverClose(4003, "token expired");
    await clock.advance(60_000);
    assert.equal(FakeSocket.all.length, 1);
    assert.ok(log.includes("disconnected:4003:stop"));
    assert.equal(client.state, "error");
  });

  test("a failing token provider drops the attempt and retries with backoff", async () => {
    let calls = 0;
    const { client, clock, log } = setup({
      token: async () => {
        calls += 1;
        if (calls === 1) throw new Error("token endpoint down");
        return "ok";
      },
    });
    const errors: unknown[] = [];
    client.on("error", (e) => errors.push(e));
    const ready = track(client.connect());
    ack(FakeSocket.last(), { requires_auth: true });
    await flush();
    assert.ok(errors[0] instanceof TokenProviderError);
    assert.match(String(errors[0]), /token endpoint down/);
    assert.ok(log.includes("disconnected:1006:retry"), log.join(" "));
    await clock.advance(250);
    ack(FakeSocket.last(), { requires_auth: true });
    await flush();
    authOk(FakeSocket.last());
    await flush();
    assert.equal(ready.settled(), "resolved");
  });

  test("an empty token from the provider is a provider failure", async () => {
    const { client } = setup({ token: () => "" });
    const errors: unknown[] = [];
    client.on("error", (e) => errors.push(e));
    void client.connect();
    ack(FakeSocket.last(), { requires_auth: true });
    await flush();
    assert.ok(errors[0] instanceof TokenProviderError);
    assert.deepEqual(FakeSocket.all[0]?.sentOf("AUTHENTICATE"), []);
  });

  test("refresh before expires_at (server clock), with a new token and the same session", async () => {
    const p = provider();
    const { client, clock, log } = setup({ token: p.fn, refreshMargin: 60_000, watchServerHeartbeat: false });
    void client.connect();
    const socket = FakeSocket.last();
    ack(socket, { requires_auth: true });
    await flush();
    // The server's clock is 1 h ahead of ours; the session lasts 10 min on it.
    const serverNow = clock.now() / 1000 + 3600;
    authOk(socket, { timestamp: serverNow, expires_at: serverNow + 600 });
    await flush();
    await clock.advance(539_000);
    assert.equal(socket.sentOf("AUTHENTICATE").length, 1);
    await clock.advance(1_000);
    assert.equal(socket.sentOf("AUTHENTICATE").length, 2, "refreshed 60 s before expiry");
    assert.deepEqual(p.reasons, ["connect", "refresh"]);
    assert.deepEqual(socket.lastSent("AUTHENTICATE").payload, { auth: { token: "token-2" } });
    authOk(socket, { timestamp: serverNow + 540, expires_at: serverNow + 1200 });
    await flush();
    assert.equal(client.state, "authenticated");
    assert.equal(client.session?.expiresAt, serverNow + 1200);
    assert.ok(log.includes("authenticated:refreshed"));
  });

  test("a short session is refreshed at half its lifetime", async () => {
    const { client, clock } = setup({ token: async () => "t" });
    void client.connect();
    const socket = FakeSocket.last();
    ack(socket, { requires_auth: true });
    await flush();
    const now = clock.now() / 1000;
    authOk(socket, { timestamp: now, expires_at: now + 30 });
    await flush();
    await clock.advance(14_999);
    assert.equal(socket.sentOf("AUTHENTICATE").length, 1);
    await clock.advance(1);
    assert.equal(socket.sentOf("AUTHENTICATE").length, 2);
  });

  test("switchboard.session_expiring triggers a refresh and a session_expiring event", async () => {
    const p = provider();
    const { client } = setup({ token: p.fn });
    const warnings: number[] = [];
    client.on("session_expiring", (e) => warnings.push(e.expiresAt));
    void client.connect();
    const socket = FakeSocket.last();
    ack(socket, { requires_auth: true });
    await flush();
    authOk(socket, { expires_at: null });
    await flush();
    socket.receive({
      type: "EVENT",
      payload: { event: "switchboard.session_expiring", data: { expires_at: 1763773200 } },
    });
    await flush();
    assert.deepEqual(warnings, [1763773200]);
    assert.deepEqual(p.reasons, ["connect", "refresh"]);
    assert.equal(socket.sentOf("AUTHENTICATE").length, 2);
  });

  test("a refused refresh keeps the session and reports auth_failed", async () => {
    const { client, log } = setup({ token: async () => "t" });
    void client.connect();
    const socket = FakeSocket.last();
    ack(socket, { requires_auth: true });
    await flush();
    authOk(socket);
    await flush();
    const refresh = track(client.refreshToken());
    await flush();
    socket.receive({
      type: "AUTHENTICATE_FAILURE",
      correlation_id: socket.lastSent("AUTHENTICATE").id,
      payload: { reason: "Invalid token: wrong user", attempts_left: 2 },
    });
    await flush();
    assert.equal(refresh.settled(), "rejected");
    assert.ok(refresh.error() instanceof AuthenticationError);
    assert.equal(client.state, "authenticated");
    assert.equal(socket.closedByClient, null);
    assert.ok(log.includes("auth_failed:Invalid token: wrong user"));
  });

  test("refreshToken() with a fixed token is refused", async () => {
    const { client } = setup({ token: "fixed" });
    void client.connect();
    ack(FakeSocket.last(), { requires_auth: true });
    await flush();
    authOk(FakeSocket.last());
    await flush();
    await assert.rejects(client.refreshToken(), /needs a token provider/);
  });

  test("an ERROR answering AUTHENTICATE (internal) is not a refusal: reconnect with backoff, also with a fixed token", async () => {
    const { client, clock, log } = setup({ token: "fixed" });
    const ready = track(client.connect());
    const socket = FakeSocket.last();
    ack(socket, { requires_auth: true });
    await flush();
    socket.receive({
      type: "ERROR",
      correlation_id: socket.lastSent("AUTHENTICATE").id,
      payload: { code: "internal", message: "the authenticator panicked" },
    });
    await flush();
    assert.equal(ready.settled(), "pending", "the client did not stop");
    assert.ok(log.includes("error:ServerError"), log.join(" "));
    assert.ok(log.includes("disconnected:1006:retry"), log.join(" "));
    assert.ok(!log.includes("auth_failed"), "not a refusal of the token");
    await clock.advance(250);
    const next = FakeSocket.last();
    assert.notEqual(next, socket);
    ack(next, { requires_auth: true });
    await flush();
    assert.deepEqual(next.lastSent("AUTHENTICATE").payload, { auth: { token: "fixed" } });
    authOk(next);
    await flush();
    assert.equal(ready.settled(), "resolved");
    assert.equal(client.state, "authenticated");
  });

  test("an ERROR answering a refresh's AUTHENTICATE fails the refresh and keeps the session", async () => {
    const { client, log } = setup({ token: async () => "t" });
    void client.connect();
    const socket = FakeSocket.last();
    ack(socket, { requires_auth: true });
    await flush();
    authOk(socket);
    await flush();
    const refresh = track(client.refreshToken());
    await flush();
    socket.receive({
      type: "ERROR",
      correlation_id: socket.lastSent("AUTHENTICATE").id,
      payload: { code: "internal", message: "oops" },
    });
    await flush();
    assert.equal(refresh.settled(), "rejected");
    assert.equal(client.state, "authenticated");
    assert.equal(socket.closedByClient, null);
    assert.ok(log.includes("error:ServerError"));
  });

  test("CONNECT_ACK's expires_at (a handshake credential) schedules the refresh like AUTHENTICATE_SUCCESS's", async () => {
    const p = provider();
    const { client, clock, log } = setup({ token: p.fn, refreshMargin: 60_000, watchServerHeartbeat: false });
    void client.connect();
    const socket = FakeSocket.last();
    const serverNow = clock.now() / 1000 + 3600;
    ack(socket, { authenticated: true, user_id: "alice", timestamp: serverNow, expires_at: serverNow + 600 });
    await flush();
    assert.equal(client.state, "authenticated");
    assert.equal(client.session?.expiresAt, serverNow + 600);
    assert.equal(socket.sentOf("AUTHENTICATE").length, 0, "authenticated in the handshake");
    await clock.advance(539_000);
    assert.equal(socket.sentOf("AUTHENTICATE").length, 0);
    await clock.advance(1_000);
    assert.equal(socket.sentOf("AUTHENTICATE").length, 1, "refreshed 60 s before expiry");
    assert.deepEqual(p.reasons.at(-1), "refresh");
    authOk(socket, { timestamp: serverNow + 540, expires_at: serverNow + 1200 });
    await flush();
    assert.equal(client.session?.expiresAt, serverNow + 1200);
    assert.ok(log.includes("authenticated:refreshed"), log.join(" "));
  });

  test("'Authentication unavailable' (does not count) retries on a new connection with backoff, also with a fixed token", async () => {
    const { client, clock, log } = setup({ token: "fixed" });
    const ready = track(client.connect());
    const socket = FakeSocket.last();
    ack(socket, { requires_auth: true });
    await flush();
    socket.receive({
      type: "AUTHENTICATE_FAILURE",
      correlation_id: socket.lastSent("AUTHENTICATE").id,
      payload: { code: "auth_failed", reason: "Authentication unavailable", attempts_left: 3 },
    });
    await flush();
    assert.equal(socket.sentOf("AUTHENTICATE").length, 1, "not retried at once");
    assert.ok(log.includes("disconnected:1006:retry"), log.join(" "));
    await clock.advance(250);
    const next = FakeSocket.last();
    assert.notEqual(next, socket);
    ack(next, { requires_auth: true });
    await flush();
    authOk(next);
    await flush();
    assert.equal(ready.settled(), "resolved");
  });

  test("AUTHENTICATE_FAILURE without a code gets auth_failed", async () => {
    const { client } = setup({ token: "bad" });
    const failures: string[] = [];
    client.on("AUTHENTICATE_FAILURE", (m) => failures.push(m.payload.code));
    void client.connect();
    const socket = FakeSocket.last();
    ack(socket, { requires_auth: true });
    await flush();
    socket.receive({ type: "AUTHENTICATE_FAILURE", payload: { reason: "Invalid token: bad signature", attempts_left: 2 } });
    await flush();
    assert.deepEqual(failures, ["auth_failed"]);
  });
  test("a session shorter than the server's warning window is not refreshed in a loop", async () => {
    const p = provider();
    const { client, clock } = setup({ token: p.fn, watchServerHeartbeat: false });
    void client.connect();
    const socket = FakeSocket.last();
    ack(socket, { requires_auth: true });
    await flush();
    const warn = (expiresAt: number) =>
      socket.receive({ type: "EVENT", payload: { event: "switchboard.session_expiring", data: { expires_at: expiresAt } } });
    let now = clock.now() / 1000;
    authOk(socket, { timestamp: now, expires_at: now + 20 });
    warn(now + 20); // less than 30 s left: the server warns at once
    await flush();
    assert.equal(socket.sentOf("AUTHENTICATE").length, 1, "the scheduled refresh (at 10 s) covers it");
    await clock.advance(10_000);
    assert.equal(socket.sentOf("AUTHENTICATE").length, 2);
    now = clock.now() / 1000;
    authOk(socket, { timestamp: now, expires_at: now + 20 });
    warn(now + 20);
    await flush();
    assert.equal(socket.sentOf("AUTHENTICATE").length, 2);
    assert.deepEqual(p.reasons, ["connect", "refresh"]);
    assert.equal(client.state, "authenticated");
  });

  test("a warning with the scheduled refresh overdue (a throttled background tab) refreshes at once", async () => {
    const p = provider();
    const { client, clock } = setup({ token: p.fn, watchServerHeartbeat: false });
    void client.connect();
    const socket = FakeSocket.last();
    ack(socket, { requires_auth: true });
    await flush();
    const now = clock.now() / 1000;
    authOk(socket, { timestamp: now, expires_at: now + 600 });
    await flush();
    // The timer did not fire (throttled); time moved on all the same.
    const clockNow = clock.now.bind(clock);
    clock.now = () => clockNow() + 580_000;
    socket.receive({ type: "EVENT", payload: { event: "switchboard.session_expiring", data: { expires_at: now + 600 } } });
    await flush();
    assert.equal(socket.sentOf("AUTHENTICATE").length, 2);
    assert.deepEqual(p.reasons, ["connect", "refresh"]);
  });
});
