/** Shared set-up of the unit tests: a client on a fake socket and a fake clock. */

import { SwitchboardClient, type ClientEvents, type ClientOptions } from "../src/index.js";
import { FakeClock, flush } from "./fake-clock.js";
import { channelOf, FakeSocket } from "./fake-socket.js";

export { channelOf, FakeClock, FakeSocket, flush };

export interface Harness {
  readonly client: SwitchboardClient;
  readonly clock: FakeClock;
  /** Every event the client emitted, in order, as `name` or `name:detail`. */
  readonly log: string[];
}

/** A client with fake socket and clock; the random source is pinned to 0.5. */
export function setup(options: Partial<ClientOptions> = {}): Harness {
  FakeSocket.reset();
  const clock = new FakeClock();
  const client = new SwitchboardClient({
    url: "ws://gateway.test/ws",
    WebSocket: FakeSocket,
    timers: clock,
    reconnect: { random: () => 0.5 },
    ...options,
  });
  const log: string[] = [];
  const record = <K extends keyof ClientEvents>(name: K, detail: (e: ClientEvents[K]) => string = () => "") =>
    client.on(name, (e) => {
      const d = detail(e);
      log.push(d === "" ? name : `${name}:${d}`);
    });
  record("state", (e) => e.to);
  record("disconnected", (e) => `${e.code}:${e.willReconnect ? "retry" : "stop"}`);
  record("reconnecting", (e) => `${e.attempt}:${e.delay}`);
  record("authenticated", (e) => (e.refreshed ? "refreshed" : String(e.userId)));
  record("auth_failed", (e) => e.reason);
  record("error", (e) => e.name);
  return { client, clock, log };
}

export interface AckOptions {
  readonly requires_auth?: boolean;
  readonly authenticated?: boolean;
  readonly user_id?: string | null;
  readonly heartbeat_interval?: number;
  /** CONNECT_ACK's session expiry (a handshake credential); left out when undefined. */
  readonly expires_at?: number | null;
  /** The envelope's timestamp (the server's clock); left out when undefined. */
  readonly timestamp?: number;
}

/** The server side of a handshake: open, then CONNECT_ACK. */
export function ack(socket: FakeSocket, options: AckOptions = {}): void {
  socket.open();
  socket.receive({
    type: "CONNECT_ACK",
    ...(options.timestamp === undefined ? {} : { timestamp: options.timestamp }),
    payload: {
      connection_id: `conn-${FakeSocket.all.indexOf(socket) + 1}`,
      requires_auth: options.requires_auth ?? false,
      authenticated: options.authenticated ?? false,
      user_id: options.user_id ?? null,
      ...(options.expires_at === undefined ? {} : { expires_at: options.expires_at }),
      heartbeat_interval: options.heartbeat_interval ?? 25,
      server_version: "0.1.0",
      protocol_version: 1,
    },
  });
}

/** Answers the client's last AUTHENTICATE with success. */
export function authOk(
  socket: FakeSocket,
  options: { user_id?: string; expires_at?: number | null; timestamp?: number } = {},
): void {
  const request = socket.lastSent("AUTHENTICATE");
  socket.receive({
    type: "AUTHENTICATE_SUCCESS",
    correlation_id: request.id,
    ...(options.timestamp === undefined ? {} : { timestamp: options.timestamp }),
    payload: { user_id: options.user_id ?? "alice", expires_at: options.expires_at ?? null, permissions: ["chat:write"] },
  });
}

/**
 * Answers every channel of the client's last SUBSCRIBE with success; `extra`
 * adds payload fields per channel (a stream's epoch and offset, `recovered`…).
 */
export function subscribeOk(socket: FakeSocket, extra: (channel: string) => Record<string, unknown> = () => ({})): void {
  const request = socket.lastSent("SUBSCRIBE");
  for (const entry of request.payload.subscriptions ?? []) {
    const channel = channelOf(entry);
    socket.receive({ type: "SUBSCRIBE_SUCCESS", correlation_id: request.id, payload: { channel, ...extra(channel) } });
  }
}

/** A client that is connected (no authentication needed) on its first socket. */
export async function connected(options: Partial<ClientOptions> = {}): Promise<Harness & { socket: FakeSocket }> {
  const h = setup(options);
  const ready = h.client.connect();
  const socket = FakeSocket.last();
  ack(socket);
  await ready;
  return { ...h, socket };
}

/** Records how a promise settles, without unhandled rejections. */
export function track<T>(promise: Promise<T>): { settled: () => "pending" | "resolved" | "rejected"; value: () => T | undefined; error: () => unknown } {
  let state: "pending" | "resolved" | "rejected" = "pending";
  let value: T | undefined;
  let error: unknown;
  promise.then(
    (v) => {
      state = "resolved";
      value = v;
    },
    (e: unknown) => {
      state = "rejected";
      error = e;
    },
  );
  return { settled: () => state, value: () => value, error: () => error };
}
