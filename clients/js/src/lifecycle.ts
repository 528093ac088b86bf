/**
 * The client's one logical connection, across sockets: its state, opening a
 * socket (its token is fetched meanwhile), what follows a close (another
 * attempt, per `Reconnect`, or the client stops), and `connect()` /
 * `disconnect()`. What the other parts do as connections come and go, the
 * client tells it through `LifecycleHooks`.
 */

import {
  closeReason,
  Connection,
  sendableCloseCode,
  type ConnectionOwner,
  type TokenResult,
  type Waiter,
} from "./connection.js";
import type { Emitter } from "./emitter.js";
import {
  ConnectionClosedError,
  NotConnectedError,
  QueueFullError,
  SwitchboardError,
  type MalformedMessageError,
} from "./errors.js";
import type { ClientEvents, DisconnectedEvent, TokenReason } from "./options.js";
import {
  CloseCode,
  PROTOCOL_VERSION,
  type ConnectAckPayload,
  type ConnectionState,
  type ServerMessage,
} from "./protocol.js";
import { Reconnect } from "./reconnect.js";
import type { Settings } from "./settings.js";
import { OPEN, type WebSocketLike } from "./socket.js";

export interface LifecycleHooks {
  /** A connection attempt starts: fetch its token (null without one). Called before the socket is made. */
  token(reason: TokenReason): Promise<TokenResult> | null;
  /** A message arrived on `conn`. */
  message(conn: Connection, message: ServerMessage): void;
  /** A frame the client cannot read arrived on `conn` (binary, or not a valid message). */
  malformed(conn: Connection, error: MalformedMessageError): void;
  /** `conn` is ready: send what waited for it. */
  ready(conn: Connection): void;
  /** `conn` closed with `code` (`why`): settle what was in flight on it. */
  lost(conn: Connection, code: number, why: string): void;
  /** The client stopped: reject what is queued. */
  stopped(error: SwitchboardError): void;
  /** Requests and subscribes waiting for a connection. */
  queued(): number;
}

export class Lifecycle {
  readonly #s: Settings;
  readonly #events: Emitter<ClientEvents>;
  readonly #hooks: LifecycleHooks;
  readonly #owner: ConnectionOwner;
  readonly #reconnect: Reconnect;

  #state: ConnectionState = "initializing";
  /** Between `connect()` and `disconnect()` or giving up. */
  #active = false;
  #conn: Connection | null = null;
  #connectionId: string | null = null;
  readonly #readyWaiters = new Set<Waiter<void>>();
  readonly #disconnectWaiters = new Set<() => void>();

  constructor(s: Settings, events: Emitter<ClientEvents>, hooks: LifecycleHooks) {
    this.#s = s;
    this.#events = events;
    this.#hooks = hooks;
    this.#reconnect = new Reconnect(s);
    this.#owner = {
      message: (conn, message) => hooks.message(conn, message),
      malformed: (conn, error) => hooks.malformed(conn, error),
      closed: (conn, code, reason, wasClean) => this.#closed(conn, code, reason, wasClean),
    };
  }

  get state(): ConnectionState {
    return this.#state;
  }

  /** The server's id of the current connection (from CONNECT_ACK). */
  get connectionId(): string | null {
    return this.#connectionId;
  }

  /** The current connection (opening, open or closing), if any. */
  get current(): Connection | null {
    return this.#conn;
  }

  /** The current connection if it is ready (work goes out at once), else null. */
  get readyConnection(): Connection | null {
    return this.#conn !== null && this.#conn.ready ? this.#conn : null;
  }

  /**
   * Whether `conn` is the connection the client still wants: current, not
   * closed, and neither `disconnect()` nor a stop came in between (a
   * listener may call `disconnect()` in the middle of handling a message).
   */
  live(conn: Connection): boolean {
    return this.#conn === conn && !conn.closed && this.#active && this.#state !== "disconnecting";
  }

  /** Why new work cannot be taken now, or null (queued or sent). */
  refusal(): SwitchboardError | null {
    if (this.#active || this.#state === "initializing") return null;
    return new NotConnectedError();
  }

  /** Where new work goes: the ready connection, null to queue it, or `QueueFullError`. */
  room(): Connection | null | QueueFullError {
    const conn = this.readyConnection;
    if (conn !== null) return conn;
    return this.#hooks.queued() >= this.#s.queueLimit ? new QueueFullError(this.#s.queueLimit) : null;
  }

  /** `SwitchboardClient.connect()`. */
  connect(): Promise<void> {
    // A socket still closing after disconnect(): finish with it first.
    if (!this.#active && this.#conn !== null) this.#conn.markClosed(CloseCode.Normal, "client disconnect", false);
    const promise = new Promise<void>((resolve, reject) => {
      this.#readyWaiters.add({ resolve, reject, timer: null });
    });
    // `client.connect()` without await is fine: a failure is also reported by
    // the `error` event and the `error` state, so it is not left unhandled.
    promise.catch(() => undefined);
    if (this.#conn?.ready === true) {
      this.#settleReady(null);
    } else if (!this.#active) {
      this.#active = true;
      this.#reconnect.start();
      this.#open();
    }
    return promise;
  }

  /** `SwitchboardClient.disconnect()`. */
  disconnect(code: number, reason: string): Promise<void> {
    this.#active = false;
    this.#reconnect.cancel();
    const conn = this.#conn;
    if (conn === null) {
      const error = new NotConnectedError("disconnect() was called");
      this.#hooks.stopped(error);
      this.#settleReady(error);
      this.setState("disconnected");
      return Promise.resolve();
    }
    if (conn.socket.readyState !== OPEN) {
      // Still connecting: nothing to say goodbye to.
      conn.drop(sendableCloseCode(code), reason, { reconnect: false });
      return Promise.resolve();
    }
    const done = new Promise<void>((resolve) => this.#disconnectWaiters.add(resolve));
    conn.ready = false;
    this.setState("disconnecting");
    conn.send("DISCONNECT", { code, reason });
    conn.override = { reconnect: false };
    // The close event normally follows; a dead socket may never send it.
    conn.timers.error = this.#s.timers.setTimeout(() => {
      conn.markClosed(sendableCloseCode(code), reason, false);
    }, 2_000);
    try {
      conn.socket.close(sendableCloseCode(code), closeReason(reason));
    } catch {
      conn.markClosed(sendableCloseCode(code), reason, false);
    }
    return done;
  }

  /**
   * CONNECT_ACK: the connection is up. Returns whether to go on with it: false
   * for a repeated one (it answers a CONNECT: nothing changes), and when a
   * `connected` listener called `disconnect()`.
   */
  acked(conn: Connection, ack: ConnectAckPayload): boolean {
    if (conn.acked) return false;
    conn.acked = true;
    this.#s.timers.clearTimeout(conn.timers.connect);
    this.#connectionId = ack.connection_id;
    // The client says who it is before anything else it sends (AUTHENTICATE,
    // SUBSCRIBE): presence shows it to others from its first subscription on.
    // The server answers with another CONNECT_ACK, which changes nothing.
    if (this.#s.client !== null) conn.send("CONNECT", { client: this.#s.client });
    if (ack.protocol_version !== PROTOCOL_VERSION) {
      this.#events.emit(
        "error",
        new SwitchboardError(
          `the server speaks protocol version ${ack.protocol_version}; this client speaks ${PROTOCOL_VERSION}`,
        ),
      );
    }
    this.setState("connected");
    this.#events.emit("connected", ack);
    return this.live(conn);
  }

  /** `conn` is connected and authenticated if needed: queued work goes out, `connect()` resolves. */
  markReady(conn: Connection): void {
    // A listener (`connected`, `authenticated`) may have disconnected meanwhile.
    if (!this.live(conn)) return;
    conn.ready = true;
    this.#reconnect.succeeded();
    this.#hooks.ready(conn);
    this.#settleReady(null);
  }

  setState(to: ConnectionState): void {
    const from = this.#state;
    if (from === to) return;
    this.#state = to;
    this.#events.emit("state", { from, to });
  }

  #open(): void {
    this.setState("connecting");
    this.#events.emit("connecting", { attempt: this.#reconnect.attempt, url: this.#s.url });
    // The token is fetched while the socket opens: the server allows 10 s
    // between the open and AUTHENTICATE.
    const token = this.#hooks.token(this.#reconnect.tokenReason);
    let socket: WebSocketLike;
    try {
      socket = new this.#s.WebSocket(this.#s.url, [...this.#s.protocols]);
    } catch (cause) {
      // A malformed URL: retrying cannot help.
      const error = new SwitchboardError(
        `cannot open ${this.#s.url}: ${cause instanceof Error ? cause.message : String(cause)}`,
      );
      this.#stop(error, null);
      return;
    }
    this.#conn = new Connection(socket, token, this.#s.connectTimeout, this.#s.timers, this.#owner);
  }

  /** `conn` closed (marked closed, its timers stopped). */
  #closed(conn: Connection, code: number, reason: string, wasClean: boolean): void {
    if (this.#conn !== conn) return;
    this.#conn = null;
    this.#connectionId = null;
    const why = reason !== "" ? reason : (conn.serverDisconnect?.reason ?? "");
    this.#hooks.lost(conn, code, why);

    const { reconnect, error } = this.#reconnect.verdict(code, why, conn.override, this.#active);
    const event: DisconnectedEvent = { code, reason: why, wasClean, willReconnect: reconnect };
    if (!reconnect) {
      this.#stop(error, event);
      return;
    }
    this.setState("disconnected");
    this.#events.emit("disconnected", event);
    if (!this.#active || this.#conn !== null) return; // a listener called disconnect() or connect()
    const next = this.#reconnect.schedule(code, () => this.#open());
    this.#events.emit("reconnecting", next);
  }

  /**
   * The client stops: what waits is rejected first, then the state becomes
   * `disconnected` (or `error` when a failure stopped it) and the events
   * fire, so a listener may call `connect()` again.
   */
  #stop(error: SwitchboardError | null, closed: DisconnectedEvent | null): void {
    this.#active = false;
    const rejection = error ?? new ConnectionClosedError(closed?.code ?? CloseCode.Normal, closed?.reason ?? "");
    this.#hooks.stopped(rejection);
    this.#settleReady(rejection);
    const disconnectWaiters = [...this.#disconnectWaiters];
    this.#disconnectWaiters.clear();
    this.setState(error === null ? "disconnected" : "error");
    if (closed !== null) this.#events.emit("disconnected", closed);
    if (error !== null) this.#events.emit("error", error);
    for (const resolve of disconnectWaiters) resolve();
  }

  #settleReady(error: SwitchboardError | null): void {
    for (const waiter of this.#readyWaiters) {
      if (error === null) waiter.resolve();
      else waiter.reject(error);
    }
    this.#readyWaiters.clear();
  }
}
