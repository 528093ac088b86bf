/**
 * `SwitchboardClient`: one logical connection to a Switchboard gateway's
 * `/ws` that survives reconnects. It authenticates, restores subscriptions
 * and flushes queued work by itself after every reconnect.
 */

import { backoffDelay } from "./backoff.js";
import { decodeServerMessage } from "./codec.js";
import {
  closeReason,
  fetchToken,
  newConnection,
  sendableCloseCode,
  utf8Length,
  type Connection,
  type TokenResult,
  type Waiter,
} from "./connection.js";
import { Emitter, type Listener } from "./emitter.js";
import { uuid, type Timers } from "./env.js";
import {
  AuthenticationError,
  ConnectionClosedError,
  MalformedMessageError,
  NotConnectedError,
  QueueFullError,
  ServerError,
  SubscribeError,
  SwitchboardError,
  TimeoutError,
} from "./errors.js";
import type {
  ChannelHandler,
  ClientEvents,
  ClientOptions,
  DisconnectedEvent,
  RequestOptions,
  Session,
  TokenReason,
} from "./options.js";
import {
  AUTH_UNAVAILABLE_REASON,
  CloseCode,
  ConnectionState,
  isValidChannel,
  PROTOCOL_VERSION,
  reconnectAdvice,
  SESSION_EXPIRING_EVENT,
  type ClientMessageType,
  type ConnectAckPayload,
  type Message,
  type PayloadMap,
  type ServerMessage,
} from "./protocol.js";
import { settings, type Settings } from "./settings.js";
import { OPEN, type WebSocketLike } from "./socket.js";
import { Subscriptions } from "./subscriptions.js";

/** An ACTION, queued (`sent` false) or awaiting its ACTION_RESULT / ERROR. */
interface RequestOp extends Waiter<unknown> {
  readonly id: string;
  readonly action: string;
  readonly frame: string;
  sent: boolean;
}

export class SwitchboardClient {
  readonly #s: Settings;
  readonly #timers: Timers;
  readonly #events = new Emitter<ClientEvents>();

  #state: ConnectionState = "initializing";
  /** Between `connect()` and `disconnect()` or giving up. */
  #active = false;
  #conn: Connection | null = null;
  /** Consecutive failed attempts since the last successful connection. */
  #attempt = 0;
  #reconnectTimer: unknown = null;
  #nextTokenReason: TokenReason = "connect";
  #connectionId: string | null = null;
  /** CONNECT_ACK's `heartbeat_interval`, seconds. */
  #heartbeatInterval = 0;
  #session: Session | null = null;

  readonly #subscriptions: Subscriptions;
  readonly #requests = new Map<string, RequestOp>();
  readonly #unsubscribes = new Map<string, Waiter<void>>();
  readonly #pings = new Map<string, Waiter<number> & { readonly sentAt: number }>();
  readonly #readyWaiters = new Set<Waiter<void>>();
  readonly #disconnectWaiters = new Set<() => void>();

  constructor(options: ClientOptions) {
    this.#s = settings(options);
    this.#timers = this.#s.timers;
    this.#subscriptions = new Subscriptions(this.#timers, {
      subscribed: (channel, resubscribed) => this.#events.emit("subscribed", { channel, resubscribed }),
      lost: (error) => this.#events.emit("subscription_failed", error),
    });
  }

  // -------------------------------------------------------------------------
  // Public API
  // -------------------------------------------------------------------------

  /** The current state (see `ConnectionState`). */
  get state(): ConnectionState {
    return this.#state;
  }

  /** Connected, authenticated if needed: requests and subscribes go out at once. */
  get ready(): boolean {
    return this.#conn?.ready === true;
  }

  /** The server's id of the current connection (from CONNECT_ACK). */
  get connectionId(): string | null {
    return this.#connectionId;
  }

  /** The current session, once authenticated. */
  get session(): Session | null {
    return this.#session;
  }

  /** The channels this client keeps subscribed (confirmed or not yet). */
  get channels(): string[] {
    return this.#subscriptions.channels();
  }

  /** Requests and subscribes waiting for a connection. */
  get queued(): number {
    let n = this.#subscriptions.queued();
    for (const op of this.#requests.values()) if (!op.sent) n++;
    return n;
  }

  /**
   * Starts connecting (and reconnecting, per the policy). Resolves once
   * connected and authenticated; rejects if the client stops first (terminal
   * close code, authentication refused, attempts exhausted, `disconnect()`).
   * Not awaiting it is fine (a rejection is never reported as unhandled).
   */
  connect(): Promise<void> {
    // A socket still closing after disconnect(): finish with it first.
    if (!this.#active && this.#conn !== null) {
      this.#closed(this.#conn, CloseCode.Normal, "client disconnect", false);
    }
    const promise = new Promise<void>((resolve, reject) => {
      this.#readyWaiters.add({ resolve, reject, timer: null });
    });
    // `client.connect()` without await is fine: a failure is also reported by
    // the `error` event and the `error` state, so it is not left unhandled.
    promise.catch(() => undefined);
    if (this.ready) {
      this.#settleReady(null);
    } else if (!this.#active) {
      this.#active = true;
      this.#attempt = 0;
      this.#nextTokenReason = "connect";
      this.#open();
    }
    return promise;
  }

  /**
   * Closes the connection (sending DISCONNECT, then a close frame with `code`)
   * and stops reconnecting. Subscriptions are kept and restored by the next
   * `connect()`; queued and in-flight work is rejected.
   */
  disconnect(code: number = CloseCode.Normal, reason = "client disconnect"): Promise<void> {
    this.#active = false;
    this.#clearReconnectTimer();
    const conn = this.#conn;
    if (conn === null) {
      const error = new NotConnectedError("disconnect() was called");
      this.#failPending(error);
      this.#settleReady(error);
      this.#setState("disconnected");
      return Promise.resolve();
    }
    if (conn.socket.readyState !== OPEN) {
      // Still connecting: nothing to say goodbye to.
      this.#drop(conn, sendableCloseCode(code), reason, { reconnect: false });
      return Promise.resolve();
    }
    const done = new Promise<void>((resolve) => this.#disconnectWaiters.add(resolve));
    conn.ready = false;
    this.#setState("disconnecting");
    this.#send(conn, "DISCONNECT", { code, reason });
    conn.override = { reconnect: false };
    // The close event normally follows; a dead socket may never send it.
    conn.timers.error = this.#timers.setTimeout(() => {
      this.#closed(conn, sendableCloseCode(code), reason, false);
    }, 2_000);
    try {
      conn.socket.close(sendableCloseCode(code), closeReason(reason));
    } catch {
      this.#closed(conn, sendableCloseCode(code), reason, false);
    }
    return done;
  }

  /**
   * Subscribes to `channel`; `handler` receives its EVENT, DATA and
   * NOTIFICATION messages. Resolves on SUBSCRIBE_SUCCESS, rejects with
   * `SubscribeError` on SUBSCRIBE_FAILURE. While not connected the subscribe
   * is queued (see `queueLimit`). Subscribing again adds the handler.
   */
  subscribe(channel: string, handler?: ChannelHandler, options: RequestOptions = {}): Promise<void> {
    if (!isValidChannel(channel)) {
      return Promise.reject(
        new SubscribeError(channel, "invalid_channel", "1–255 characters of A–Z a–z 0–9 : _ - . @ / ="),
      );
    }
    const timeout = options.timeout ?? this.#s.requestTimeout;
    const joined = this.#subscriptions.join(channel, handler, timeout);
    if (joined !== null) return joined;
    const refusal = this.#refuseWork();
    if (refusal !== null) return Promise.reject(refusal);
    const conn = this.#conn;
    const ready = conn !== null && conn.ready;
    if (!ready && this.queued >= this.#s.queueLimit) {
      return Promise.reject(new QueueFullError(this.#s.queueLimit));
    }
    const promise = this.#subscriptions.add(channel, handler, !ready, timeout);
    if (ready) this.#sendSubscribe(conn, [channel]);
    return promise;
  }

  /**
   * Drops `channel` and its handlers. Resolves on UNSUBSCRIBE_ACK, or at once
   * when not connected (it will not be restored).
   */
  unsubscribe(channel: string, options: RequestOptions = {}): Promise<void> {
    if (!this.#subscriptions.has(channel)) return Promise.resolve();
    const held = this.#subscriptions.remove(channel);
    this.#events.emit("unsubscribed", { channel });
    const conn = this.#conn;
    if (conn === null || !conn.ready || !held) return Promise.resolve();
    const timeout = options.timeout ?? this.#s.requestTimeout;
    return new Promise<void>((resolve, reject) => {
      const id = this.#send(conn, "UNSUBSCRIBE", { subscriptions: [channel] });
      const waiter: Waiter<void> = {
        resolve,
        reject,
        timer: this.#timers.setTimeout(() => {
          this.#unsubscribes.delete(id);
          reject(new TimeoutError(`unsubscribe ${channel}`, timeout));
        }, timeout),
      };
      this.#unsubscribes.set(id, waiter);
    });
  }

  /**
   * Sends ACTION `action` with `data`; resolves with ACTION_RESULT's `data`,
   * rejects with `ServerError` (its `code`: `unknown_action`,
   * `action_failed`, …) or `TimeoutError`. While not connected the request is
   * queued (see `queueLimit`); the timeout runs from this call. A request in
   * flight when the connection drops rejects with `ConnectionClosedError` and
   * is not resent (it may have run).
   */
  request<T = unknown>(action: string, data?: unknown, options: RequestOptions = {}): Promise<T> {
    const refusal = this.#refuseWork();
    if (refusal !== null) return Promise.reject(refusal);
    const id = uuid();
    const payload: PayloadMap["ACTION"] = data === undefined ? { action } : { action, data };
    const frame = JSON.stringify({ type: "ACTION", id, payload });
    if (utf8Length(frame) > this.#s.maxMessageSize) {
      return Promise.reject(
        new SwitchboardError(
          `request ${action}: ${utf8Length(frame)} bytes is over the ${this.#s.maxMessageSize}-byte message limit`,
        ),
      );
    }
    const conn = this.#conn;
    const ready = conn !== null && conn.ready;
    if (!ready && this.queued >= this.#s.queueLimit) {
      return Promise.reject(new QueueFullError(this.#s.queueLimit));
    }
    const timeout = options.timeout ?? this.#s.requestTimeout;
    return new Promise<T>((resolve, reject) => {
      const op: RequestOp = {
        id,
        action,
        frame,
        sent: false,
        resolve: resolve as (value: unknown) => void,
        reject,
        timer: this.#timers.setTimeout(() => {
          this.#requests.delete(id);
          reject(new TimeoutError(`request ${action}`, timeout));
        }, timeout),
      };
      this.#requests.set(id, op);
      if (ready) this.#sendFrame(conn, op);
    });
  }

  /** Sends PING; resolves with the round trip in ms when PONG arrives. */
  ping(options: RequestOptions = {}): Promise<number> {
    const conn = this.#conn;
    if (conn === null || !conn.acked) return Promise.reject(new NotConnectedError());
    const timeout = options.timeout ?? this.#s.pongTimeout;
    return new Promise<number>((resolve, reject) => {
      const id = this.#send(conn, "PING", {});
      this.#pings.set(id, {
        sentAt: this.#timers.now(),
        resolve,
        reject,
        timer: this.#timers.setTimeout(() => {
          this.#pings.delete(id);
          reject(new TimeoutError("ping", timeout));
        }, timeout),
      });
    });
  }

  /**
   * Refreshes the session now with a fresh token from the provider (the
   * client also does this by itself before `expires_at`).
   */
  refreshToken(): Promise<void> {
    const conn = this.#conn;
    if (conn === null || this.#state !== "authenticated") return Promise.reject(new NotConnectedError());
    if (typeof this.#s.token !== "function") {
      return Promise.reject(new SwitchboardError("refreshToken() needs a token provider, not a fixed token"));
    }
    return this.#refresh(conn);
  }

  /** Listens to a lifecycle event or a server message type; returns a function that removes the listener. */
  on<K extends keyof ClientEvents>(event: K, listener: Listener<ClientEvents[K]>): () => void {
    return this.#events.on(event, listener);
  }

  /** Like `on`, for one call. */
  once<K extends keyof ClientEvents>(event: K, listener: Listener<ClientEvents[K]>): () => void {
    return this.#events.once(event, listener);
  }

  off<K extends keyof ClientEvents>(event: K, listener: Listener<ClientEvents[K]>): void {
    this.#events.off(event, listener);
  }

  // -------------------------------------------------------------------------
  // Connecting
  // -------------------------------------------------------------------------

  #open(): void {
    this.#reconnectTimer = null;
    this.#setState("connecting");
    this.#events.emit("connecting", { attempt: this.#attempt, url: this.#s.url });
    // The token is fetched while the socket opens: the server allows 10 s
    // between the open and AUTHENTICATE.
    const token = this.#s.token === null ? null : fetchToken(this.#s.token, this.#nextTokenReason);
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
    const conn = newConnection(socket, token);
    this.#conn = conn;
    socket.addEventListener("open", () => {
      conn.opened = true;
    });
    socket.addEventListener("message", (event) => this.#onFrame(conn, event.data));
    socket.addEventListener("close", (event) => this.#closed(conn, event.code, event.reason, event.wasClean));
    socket.addEventListener("error", () => {
      if (conn.closed) return;
      // Before the open no close event may follow (Node 20's undici fires only
      // `error` for a refused handshake); after it, the close event should.
      if (!conn.opened) this.#drop(conn, CloseCode.Abnormal, "connection failed", {});
      else if (conn.timers.error === undefined) {
        conn.timers.error = this.#timers.setTimeout(
          () => this.#drop(conn, CloseCode.Abnormal, "connection error", {}),
          1_000,
        );
      }
    });
    conn.timers.connect = this.#timers.setTimeout(() => {
      this.#drop(conn, CloseCode.Abnormal, `no CONNECT_ACK within ${this.#s.connectTimeout} ms`, {});
    }, this.#s.connectTimeout);
  }

  #onConnectAck(conn: Connection, ack: ConnectAckPayload): void {
    if (conn.acked) return; // a repeated CONNECT_ACK answers a CONNECT: nothing changes
    conn.acked = true;
    this.#timers.clearTimeout(conn.timers.connect);
    this.#connectionId = ack.connection_id;
    if (ack.protocol_version !== PROTOCOL_VERSION) {
      this.#events.emit(
        "error",
        new SwitchboardError(
          `the server speaks protocol version ${ack.protocol_version}; this client speaks ${PROTOCOL_VERSION}`,
        ),
      );
    }
    this.#setState("connected");
    this.#events.emit("connected", ack);
    this.#heartbeatInterval = ack.heartbeat_interval;
    this.#resetWatchdog(conn);
    if (ack.authenticated) {
      // The handshake carried a valid credential.
      this.#session = { userId: ack.user_id, expiresAt: null, permissions: [] };
      this.#setState("authenticated");
      this.#events.emit("authenticated", { ...this.#session, refreshed: false });
      this.#onReady(conn);
    } else if (conn.token !== null) {
      this.#setState("authenticating");
      void this.#authenticate(conn, conn.token);
    } else if (ack.requires_auth) {
      const error = new AuthenticationError("the server requires authentication and no token is configured");
      this.#drop(conn, CloseCode.Normal, error.reason, { reconnect: false, error });
    } else {
      this.#onReady(conn);
    }
  }

  async #authenticate(conn: Connection, token: Promise<TokenResult>): Promise<void> {
    const result = await token;
    if (conn.closed) return;
    if (!result.ok) {
      this.#events.emit("error", result.error);
      if (conn.refreshing !== null) {
        conn.refreshing.reject(result.error);
        conn.refreshing = null;
      } else {
        this.#drop(conn, CloseCode.Abnormal, result.error.message, { reconnect: true });
      }
      return;
    }
    conn.authId = this.#send(conn, "AUTHENTICATE", { auth: { token: result.token } });
  }

  #onAuthenticateSuccess(conn: Connection, message: Message<"AUTHENTICATE_SUCCESS">): void {
    conn.authId = null;
    const { user_id: userId, expires_at: expiresAt, permissions } = message.payload;
    this.#session = { userId, expiresAt, permissions };
    this.#scheduleRefresh(conn, expiresAt, message.timestamp);
    const refreshed = conn.ready;
    if (!refreshed) this.#setState("authenticated");
    this.#events.emit("authenticated", { ...this.#session, refreshed });
    if (conn.refreshing !== null) {
      conn.refreshing.resolve();
      conn.refreshing = null;
    }
    if (!refreshed) this.#onReady(conn);
  }

  #onAuthenticateFailure(conn: Connection, reason: string, attemptsLeft: number): void {
    conn.authId = null;
    const error = new AuthenticationError(reason, attemptsLeft);
    this.#events.emit("auth_failed", error);
    if (conn.refreshing !== null) {
      // The session keeps its old expiry; the server closes with 4003 at that
      // time and the reconnect fetches a new token.
      conn.refreshing.reject(error);
      conn.refreshing = null;
      return;
    }
    if (reason === AUTH_UNAVAILABLE_REASON) {
      // The server could not check the token (the attempt does not count):
      // retrying at once would spin, so try again on a new connection, with backoff.
      this.#drop(conn, CloseCode.Abnormal, reason, { reconnect: true });
      return;
    }
    if (typeof this.#s.token === "function" && attemptsLeft > 0) {
      void this.#authenticate(conn, fetchToken(this.#s.token, "retry"));
      return;
    }
    // A fixed token will be refused again; do not burn the remaining attempts.
    this.#drop(conn, CloseCode.Normal, "authentication failed", { reconnect: false, error });
  }

  #scheduleRefresh(conn: Connection, expiresAt: number | null, serverTime: number | undefined): void {
    this.#timers.clearTimeout(conn.timers.refresh);
    conn.refreshAt = null;
    if (expiresAt === null || typeof this.#s.token !== "function") return;
    // Measured against the server's clock (the message's timestamp), so a
    // skewed client clock does not matter.
    const lifetime = expiresAt * 1000 - (serverTime === undefined ? this.#timers.now() : serverTime * 1000);
    const delay = Math.max(0, lifetime - Math.min(this.#s.refreshMargin, lifetime / 2));
    conn.refreshAt = this.#timers.now() + delay;
    conn.timers.refresh = this.#timers.setTimeout(() => {
      conn.refreshAt = null;
      this.#refresh(conn).catch(() => {
        // Reported through `auth_failed` / `error`; the server's
        // session_expiring warning or 4003 brings another chance.
      });
    }, delay);
  }

  #refresh(conn: Connection): Promise<void> {
    const source = this.#s.token;
    if (conn.closed || !conn.ready) return Promise.reject(new NotConnectedError());
    if (source === null) return Promise.reject(new SwitchboardError("no token to refresh the session with"));
    if (conn.refreshing !== null) {
      const pending = conn.refreshing;
      return new Promise<void>((resolve, reject) => {
        conn.refreshing = {
          resolve: () => {
            pending.resolve();
            resolve();
          },
          reject: (error) => {
            pending.reject(error);
            reject(error);
          },
          timer: null,
        };
      });
    }
    return new Promise<void>((resolve, reject) => {
      conn.refreshing = { resolve, reject, timer: null };
      void this.#authenticate(conn, fetchToken(source, "refresh"));
    });
  }

  #onReady(conn: Connection): void {
    conn.ready = true;
    this.#attempt = 0;
    this.#nextTokenReason = "reconnect";
    // Subscriptions first (restored and queued, in one SUBSCRIBE), then the
    // queued requests in the order they were made.
    const channels = this.#subscriptions.unsent();
    if (channels.length > 0) this.#sendSubscribe(conn, channels);
    for (const op of this.#requests.values()) if (!op.sent) this.#sendFrame(conn, op);
    this.#schedulePing(conn);
    this.#settleReady(null);
  }

  // -------------------------------------------------------------------------
  // Receiving
  // -------------------------------------------------------------------------

  #onFrame(conn: Connection, data: unknown): void {
    if (conn.closed) return;
    if (typeof data !== "string") {
      this.#events.emit("error", new MalformedMessageError("a binary frame", ""));
      return;
    }
    const decoded = decodeServerMessage(data);
    if (!decoded.ok) {
      this.#events.emit("error", new MalformedMessageError(decoded.reason, data));
      return;
    }
    this.#resetWatchdog(conn);
    const message = decoded.message;
    this.#handle(conn, message);
    this.#events.emit("message", message);
    this.#emitTyped(message);
  }

  #emitTyped(message: ServerMessage): void {
    // Each member of the union goes to the listeners of its own type.
    (this.#events.emit as (event: ServerMessage["type"], value: ServerMessage) => void).call(
      this.#events,
      message.type,
      message,
    );
  }

  #handle(conn: Connection, message: ServerMessage): void {
    const correlation = message.correlation_id ?? null;
    switch (message.type) {
      case "CONNECT_ACK":
        this.#onConnectAck(conn, message.payload);
        break;
      case "AUTHENTICATE_SUCCESS":
        this.#onAuthenticateSuccess(conn, message);
        break;
      case "AUTHENTICATE_FAILURE":
        this.#onAuthenticateFailure(conn, message.payload.reason, message.payload.attempts_left);
        break;
      case "SUBSCRIBE_SUCCESS":
      case "SUBSCRIBE_FAILURE":
        this.#subscriptions.reply(message);
        break;
      case "UNSUBSCRIBE_ACK":
        if (correlation !== null) this.#settle(this.#unsubscribes, correlation)?.resolve();
        break;
      case "EVENT":
      case "DATA":
      case "NOTIFICATION":
        this.#subscriptions.dispatch(message);
        if (message.type === "EVENT" && message.payload.event === SESSION_EXPIRING_EVENT) {
          this.#onSessionExpiring(conn, message.payload.data);
        }
        break;
      case "ACTION_RESULT":
        if (correlation !== null) this.#settle(this.#requests, correlation)?.resolve(message.payload.data);
        break;
      case "ERROR":
        this.#onError(conn, message, correlation);
        break;
      case "PING":
        this.#send(conn, "PONG", {}, message.id);
        break;
      case "PONG":
        if (correlation !== null) {
          const ping = this.#settle(this.#pings, correlation);
          ping?.resolve(this.#timers.now() - ping.sentAt);
        }
        break;
      case "DISCONNECT":
        conn.serverDisconnect = message.payload;
        break;
    }
  }

  /** Takes the waiter for `id` out of `map` and stops its timer. */
  #settle<W extends Waiter<never>>(map: Map<string, W>, id: string): W | undefined {
    const waiter = map.get(id);
    if (waiter === undefined) return undefined;
    map.delete(id);
    this.#timers.clearTimeout(waiter.timer);
    return waiter;
  }

  #onError(conn: Connection, message: Message<"ERROR">, correlation: string | null): void {
    const { code, message: text } = message.payload;
    const error = new ServerError(code, text, correlation);
    if (correlation !== null) {
      const op = this.#settle(this.#requests, correlation);
      if (op !== undefined) return op.reject(error);
      const unsubscribe = this.#settle(this.#unsubscribes, correlation);
      if (unsubscribe !== undefined) return unsubscribe.reject(error);
      const ping = this.#settle(this.#pings, correlation);
      if (ping !== undefined) return ping.reject(error);
      if (correlation === conn.authId) return this.#onAuthenticateFailure(conn, `${code}: ${text}`, 0);
      if (this.#subscriptions.errorReply(correlation, code, text)) return;
    }
    this.#events.emit("error", error);
  }

  #onSessionExpiring(conn: Connection, data: unknown): void {
    const expiresAt =
      typeof data === "object" && data !== null && "expires_at" in data && typeof data.expires_at === "number"
        ? data.expires_at
        : (this.#session?.expiresAt ?? 0);
    this.#events.emit("session_expiring", { expiresAt });
    // A refresh still to come handles it: the server warns at once after every
    // refresh of a session shorter than its warning window, and answering each
    // warning with a refresh would loop.
    const scheduled = conn.refreshAt !== null && conn.refreshAt > this.#timers.now();
    if (typeof this.#s.token === "function" && conn.ready && conn.refreshing === null && !scheduled) {
      this.#refresh(conn).catch(() => {
        // Reported through `auth_failed` / `error`.
      });
    }
  }

  // -------------------------------------------------------------------------
  // Subscriptions
  // -------------------------------------------------------------------------

  #sendSubscribe(conn: Connection, channels: readonly string[]): void {
    this.#subscriptions.sent(channels, this.#send(conn, "SUBSCRIBE", { subscriptions: channels }));
  }

  // -------------------------------------------------------------------------
  // Sending
  // -------------------------------------------------------------------------

  /** Sends one message; returns its id. */
  #send<T extends ClientMessageType>(
    conn: Connection,
    type: T,
    payload: PayloadMap[T],
    correlationId?: string,
  ): string {
    const id = uuid();
    const message = correlationId === undefined ? { type, id, payload } : { type, id, payload, correlation_id: correlationId };
    this.#write(conn, JSON.stringify(message));
    return id;
  }

  #sendFrame(conn: Connection, op: RequestOp): void {
    op.sent = true;
    this.#write(conn, op.frame);
  }

  #write(conn: Connection, frame: string): void {
    try {
      conn.socket.send(frame);
    } catch {
      // The socket is closing: its close event settles what was in flight.
    }
  }

  /** Why new work cannot be taken now, or null (queued or sent). */
  #refuseWork(): SwitchboardError | null {
    if (this.#active || this.#state === "initializing") return null;
    return new NotConnectedError();
  }

  // -------------------------------------------------------------------------
  // Heartbeats
  // -------------------------------------------------------------------------

  #resetWatchdog(conn: Connection): void {
    if (!this.#s.watchServerHeartbeat || !conn.acked || this.#heartbeatInterval <= 0) return;
    this.#timers.clearTimeout(conn.timers.watchdog);
    const limit = this.#heartbeatInterval * 1000 + this.#s.pongTimeout;
    conn.timers.watchdog = this.#timers.setTimeout(() => {
      this.#drop(conn, CloseCode.Abnormal, `nothing from the server for ${limit} ms`, { reconnect: true });
    }, limit);
  }

  #schedulePing(conn: Connection): void {
    if (this.#s.pingInterval <= 0) return;
    conn.timers.ping = this.#timers.setTimeout(() => {
      this.ping({ timeout: this.#s.pongTimeout }).then(
        () => {
          if (!conn.closed) this.#schedulePing(conn);
        },
        (error: unknown) => {
          if (error instanceof TimeoutError) {
            this.#drop(conn, CloseCode.Abnormal, `no PONG within ${this.#s.pongTimeout} ms`, { reconnect: true });
          }
        },
      );
    }, this.#s.pingInterval);
  }

  // -------------------------------------------------------------------------
  // Closing and reconnecting
  // -------------------------------------------------------------------------

  /** Closes `conn` on the client's initiative and handles it as closed now. */
  #drop(
    conn: Connection,
    code: number,
    reason: string,
    override: { reconnect?: boolean; error?: SwitchboardError },
  ): void {
    if (conn.closed) return;
    conn.override = override;
    // Handled first: closing a connecting socket can fire `error` at once
    // (undici does), which must find the connection already closed.
    this.#closed(conn, code, reason, false);
    try {
      conn.socket.close(CloseCode.Normal, closeReason(reason));
    } catch {
      // already closing
    }
  }

  #closed(conn: Connection, code: number, reason: string, wasClean: boolean): void {
    if (conn.closed) return;
    conn.closed = true;
    for (const timer of Object.values(conn.timers)) this.#timers.clearTimeout(timer);
    if (this.#conn !== conn) return;
    this.#conn = null;
    this.#connectionId = null;
    this.#session = null;
    const why = reason !== "" ? reason : (conn.serverDisconnect?.reason ?? "");

    // Work in flight on this connection.
    const lost = new ConnectionClosedError(code, why);
    for (const [id, op] of this.#requests) {
      if (!op.sent) continue;
      this.#requests.delete(id);
      this.#timers.clearTimeout(op.timer);
      op.reject(
        new ConnectionClosedError(
          code,
          why,
          `connection closed (${code}) before ${op.action} was answered; it may or may not have run`,
        ),
      );
    }
    for (const id of [...this.#unsubscribes.keys()]) this.#settle(this.#unsubscribes, id)?.resolve();
    for (const id of [...this.#pings.keys()]) this.#settle(this.#pings, id)?.reject(lost);
    conn.refreshing?.reject(lost);
    conn.refreshing = null;
    this.#subscriptions.connectionLost();

    // Reconnect?
    const advice = reconnectAdvice(code);
    let reconnect =
      conn.override?.reconnect ??
      (advice === "yes" || (advice === "after_new_token" && typeof this.#s.token === "function"));
    let stopError = conn.override?.error ?? null;
    if (!this.#active) reconnect = false;
    if (reconnect && !this.#s.reconnect.enabled) reconnect = false;
    if (reconnect && this.#attempt >= this.#s.reconnect.maxAttempts) {
      reconnect = false;
      stopError = new ConnectionClosedError(
        code,
        why,
        `gave up after ${this.#attempt} reconnect attempts (last close ${code}${why === "" ? "" : ` ${why}`})`,
      );
    }
    if (!reconnect && stopError === null && this.#active && code !== CloseCode.Normal) {
      stopError = new ConnectionClosedError(code, why, `closed with ${code}${why === "" ? "" : ` (${why})`}; not reconnecting`);
    }

    const event: DisconnectedEvent = { code, reason: why, wasClean, willReconnect: reconnect };
    if (!reconnect) {
      this.#stop(stopError, event);
      return;
    }
    this.#setState("disconnected");
    this.#events.emit("disconnected", event);
    if (!this.#active || this.#conn !== null) return; // a listener called disconnect() or connect()
    const delay = backoffDelay(this.#attempt, this.#s.reconnect.backoff, this.#s.reconnect.random);
    this.#attempt += 1;
    // "expired" sticks until a connection succeeds: a provider that caches
    // tokens must not hand back the expired one after a failed attempt.
    if (code === CloseCode.TokenExpired) this.#nextTokenReason = "expired";
    this.#reconnectTimer = this.#timers.setTimeout(() => this.#open(), delay);
    this.#events.emit("reconnecting", { attempt: this.#attempt, delay });
  }

  /**
   * The client stops: what waits is rejected first, then the state becomes
   * `disconnected` (or `error` when a failure stopped it) and the events
   * fire, so a listener may call `connect()` again.
   */
  #stop(error: SwitchboardError | null, closed: DisconnectedEvent | null): void {
    this.#active = false;
    const rejection = error ?? new ConnectionClosedError(closed?.code ?? CloseCode.Normal, closed?.reason ?? "");
    this.#failPending(rejection);
    this.#settleReady(rejection);
    const disconnectWaiters = [...this.#disconnectWaiters];
    this.#disconnectWaiters.clear();
    this.#setState(error === null ? "disconnected" : "error");
    if (closed !== null) this.#events.emit("disconnected", closed);
    if (error !== null) this.#events.emit("error", error);
    for (const resolve of disconnectWaiters) resolve();
  }

  /** Rejects queued requests and subscribes that never got an answer. */
  #failPending(error: SwitchboardError): void {
    for (const [id, op] of this.#requests) {
      this.#requests.delete(id);
      this.#timers.clearTimeout(op.timer);
      op.reject(error);
    }
    this.#subscriptions.stop(error);
  }

  #settleReady(error: SwitchboardError | null): void {
    for (const waiter of this.#readyWaiters) {
      if (error === null) waiter.resolve();
      else waiter.reject(error);
    }
    this.#readyWaiters.clear();
  }

  #clearReconnectTimer(): void {
    if (this.#reconnectTimer !== null) {
      this.#timers.clearTimeout(this.#reconnectTimer);
      this.#reconnectTimer = null;
    }
  }

  #setState(to: ConnectionState): void {
    const from = this.#state;
    if (from === to) return;
    this.#state = to;
    this.#events.emit("state", { from, to });
  }
}
