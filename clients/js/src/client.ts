/**
 * `SwitchboardClient`: one logical connection to a Switchboard gateway's
 * `/ws` that survives reconnects. It authenticates, restores subscriptions
 * and flushes queued work by itself after every reconnect.
 */

import { backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from "./backoff.js";
import { decodeServerMessage } from "./codec.js";
import { Emitter, type Listener } from "./emitter.js";
import { globalWebSocket, rethrowLater, systemTimers, uuid, type Timers } from "./env.js";
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
  TokenProviderError,
} from "./errors.js";
import type {
  ChannelHandler,
  ClientEvents,
  ClientOptions,
  RequestOptions,
  Session,
  TokenProvider,
  TokenReason,
} from "./options.js";
import {
  CloseCode,
  ConnectionState,
  isValidChannel,
  PROTOCOL_VERSION,
  reconnectAdvice,
  SESSION_EXPIRING_EVENT,
  SUBPROTOCOL,
  type ChannelMessage,
  type ClientMessageType,
  type ConnectAckPayload,
  type Message,
  type PayloadMap,
  type ServerMessage,
} from "./protocol.js";
import { OPEN, type WebSocketConstructor, type WebSocketLike } from "./socket.js";

type TokenResult = { readonly ok: true; readonly token: string } | { readonly ok: false; readonly error: TokenProviderError };

/** Settles one caller's promise; `timer` bounds the wait. */
interface Waiter<T> {
  resolve(value: T): void;
  reject(error: unknown): void;
  timer: unknown;
}

/** An ACTION, queued (`sent` false) or awaiting its ACTION_RESULT / ERROR. */
interface RequestOp extends Waiter<unknown> {
  readonly id: string;
  readonly action: string;
  readonly frame: string;
  sent: boolean;
}

/** A channel this client wants to be subscribed to. */
interface Subscription {
  readonly handlers: Set<ChannelHandler>;
  /** unsent: to be sent when ready; pending: sent, waiting; active: confirmed. */
  status: "unsent" | "pending" | "active";
  /** The id of the SUBSCRIBE it was sent in (replies are matched on it). */
  correlationId: string | null;
  /** Created while not connected: counts against `queueLimit` until confirmed. */
  queued: boolean;
  /** Confirmed once before (so the next confirmation is a resubscription). */
  wasActive: boolean;
  readonly waiters: Set<Waiter<void>>;
}

/** One WebSocket and what belongs to it. Gone when the socket closes. */
interface Connection {
  readonly socket: WebSocketLike;
  readonly token: Promise<TokenResult> | null;
  opened: boolean;
  acked: boolean;
  ready: boolean;
  closed: boolean;
  /** The id of the AUTHENTICATE in flight, and whether it refreshes a session. */
  authId: string | null;
  refreshing: Waiter<void> | null;
  /** The server's DISCONNECT, whose reason is reported if the close frame has none. */
  serverDisconnect: { code?: number; reason?: string } | null;
  /** Set when the client drops the connection itself. */
  override: { reconnect?: boolean; error?: SwitchboardError } | null;
  readonly timers: { connect?: unknown; watchdog?: unknown; ping?: unknown; refresh?: unknown; error?: unknown };
}

/** Close codes a browser lets a client send. */
function sendableCloseCode(code: number): number {
  return code === 1000 || (code >= 3000 && code <= 4999) ? code : 1000;
}

/** A close reason must fit in 123 UTF-8 bytes. */
function closeReason(reason: string): string {
  let out = reason;
  while (utf8Length(out) > 123) out = out.slice(0, -1);
  return out;
}

function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x80) bytes += 1;
    else if (c < 0x800) bytes += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

export class SwitchboardClient {
  readonly #url: string;
  readonly #WebSocket: WebSocketConstructor;
  readonly #token: string | TokenProvider | null;
  readonly #protocols: readonly string[];
  readonly #reconnect: { enabled: boolean; maxAttempts: number; random: () => number; backoff: BackoffOptions };
  readonly #requestTimeout: number;
  readonly #connectTimeout: number;
  readonly #queueLimit: number;
  readonly #pingInterval: number;
  readonly #pongTimeout: number;
  readonly #watchServerHeartbeat: boolean;
  readonly #refreshMargin: number;
  readonly #maxMessageSize: number;
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

  readonly #subscriptions = new Map<string, Subscription>();
  readonly #requests = new Map<string, RequestOp>();
  readonly #unsubscribes = new Map<string, Waiter<void>>();
  readonly #pings = new Map<string, Waiter<number> & { readonly sentAt: number }>();
  readonly #readyWaiters = new Set<Waiter<void>>();
  readonly #disconnectWaiters = new Set<() => void>();

  constructor(options: ClientOptions) {
    const ctor = options.WebSocket ?? globalWebSocket();
    if (ctor === undefined) {
      throw new SwitchboardError(
        "no WebSocket constructor: pass options.WebSocket (e.g. the `ws` package's class), " +
          "or run on Node 22+ / Node 20 with --experimental-websocket",
      );
    }
    const reconnect = typeof options.reconnect === "object" ? options.reconnect : {};
    this.#url = options.url;
    this.#WebSocket = ctor;
    this.#token = options.token ?? null;
    this.#protocols = options.protocols ?? [SUBPROTOCOL];
    this.#reconnect = {
      enabled: options.reconnect !== false && reconnect.enabled !== false,
      maxAttempts: reconnect.maxAttempts ?? Number.POSITIVE_INFINITY,
      random: reconnect.random ?? Math.random,
      backoff: {
        initialDelay: reconnect.initialDelay ?? DEFAULT_BACKOFF.initialDelay,
        maxDelay: reconnect.maxDelay ?? DEFAULT_BACKOFF.maxDelay,
        factor: reconnect.factor ?? DEFAULT_BACKOFF.factor,
      },
    };
    this.#requestTimeout = options.requestTimeout ?? 10_000;
    this.#connectTimeout = options.connectTimeout ?? 10_000;
    this.#queueLimit = options.queueLimit ?? 100;
    this.#pingInterval = options.pingInterval ?? 0;
    this.#pongTimeout = options.pongTimeout ?? 10_000;
    this.#watchServerHeartbeat = options.watchServerHeartbeat ?? true;
    this.#refreshMargin = options.refreshMargin ?? 60_000;
    this.#maxMessageSize = options.maxMessageSize ?? 65_536;
    this.#timers = options.timers ?? systemTimers;
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
    return [...this.#subscriptions.keys()];
  }

  /** Requests and subscribes waiting for a connection. */
  get queued(): number {
    let n = 0;
    for (const op of this.#requests.values()) if (!op.sent) n++;
    for (const sub of this.#subscriptions.values()) if (sub.queued && sub.status === "unsent") n++;
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
    let sub = this.#subscriptions.get(channel);
    if (sub !== undefined) {
      if (handler !== undefined) sub.handlers.add(handler);
      if (sub.status === "active") return Promise.resolve();
      return this.#subscriptionWaiter(channel, sub, options.timeout);
    }
    const refusal = this.#refuseWork();
    if (refusal !== null) return Promise.reject(refusal);
    if (!this.ready && this.queued >= this.#queueLimit) {
      return Promise.reject(new QueueFullError(this.#queueLimit));
    }
    sub = {
      handlers: new Set(handler === undefined ? [] : [handler]),
      status: "unsent",
      correlationId: null,
      queued: !this.ready,
      wasActive: false,
      waiters: new Set(),
    };
    this.#subscriptions.set(channel, sub);
    const promise = this.#subscriptionWaiter(channel, sub, options.timeout);
    const conn = this.#conn;
    if (conn !== null && conn.ready) this.#sendSubscribe(conn, [channel]);
    return promise;
  }

  /**
   * Drops `channel` and its handlers. Resolves on UNSUBSCRIBE_ACK, or at once
   * when not connected (it will not be restored).
   */
  unsubscribe(channel: string, options: RequestOptions = {}): Promise<void> {
    const sub = this.#subscriptions.get(channel);
    if (sub === undefined) return Promise.resolve();
    this.#subscriptions.delete(channel);
    this.#rejectSubscription(sub, new SubscribeError(channel, "cancelled", "unsubscribe() was called first"));
    this.#events.emit("unsubscribed", { channel });
    const conn = this.#conn;
    if (conn === null || !conn.ready || sub.status === "unsent") return Promise.resolve();
    const timeout = options.timeout ?? this.#requestTimeout;
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
    if (utf8Length(frame) > this.#maxMessageSize) {
      return Promise.reject(
        new SwitchboardError(
          `request ${action}: ${utf8Length(frame)} bytes is over the ${this.#maxMessageSize}-byte message limit`,
        ),
      );
    }
    const conn = this.#conn;
    const ready = conn !== null && conn.ready;
    if (!ready && this.queued >= this.#queueLimit) {
      return Promise.reject(new QueueFullError(this.#queueLimit));
    }
    const timeout = options.timeout ?? this.#requestTimeout;
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
    const timeout = options.timeout ?? this.#pongTimeout;
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
    if (typeof this.#token !== "function") {
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
    this.#events.emit("connecting", { attempt: this.#attempt, url: this.#url });
    // The token is fetched while the socket opens: the server allows 10 s
    // between the open and AUTHENTICATE.
    const token = this.#token === null ? null : this.#fetchToken(this.#nextTokenReason);
    let socket: WebSocketLike;
    try {
      socket = new this.#WebSocket(this.#url, [...this.#protocols]);
    } catch (cause) {
      // A malformed URL: retrying cannot help.
      const error = new SwitchboardError(
        `cannot open ${this.#url}: ${cause instanceof Error ? cause.message : String(cause)}`,
      );
      this.#active = false;
      this.#setState("disconnected");
      this.#stop(error, CloseCode.Abnormal, error.message);
      return;
    }
    const conn: Connection = {
      socket,
      token,
      opened: false,
      acked: false,
      ready: false,
      closed: false,
      authId: null,
      refreshing: null,
      serverDisconnect: null,
      override: null,
      timers: {},
    };
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
      this.#drop(conn, CloseCode.Abnormal, `no CONNECT_ACK within ${this.#connectTimeout} ms`, {});
    }, this.#connectTimeout);
  }

  #fetchToken(reason: TokenReason): Promise<TokenResult> {
    const source = this.#token;
    const fail = (cause: unknown): TokenResult => ({ ok: false, error: new TokenProviderError(cause) });
    const check = (token: unknown): TokenResult =>
      typeof token === "string" && token !== ""
        ? { ok: true, token }
        : fail(new TypeError(`expected a non-empty string, got ${typeof token}`));
    if (typeof source !== "function") return Promise.resolve(check(source));
    try {
      return Promise.resolve(source({ reason })).then(check, fail);
    } catch (cause) {
      return Promise.resolve(fail(cause));
    }
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
    if (typeof this.#token === "function" && attemptsLeft > 0) {
      void this.#authenticate(conn, this.#fetchToken("retry"));
      return;
    }
    // A fixed token will be refused again; do not burn the remaining attempts.
    this.#drop(conn, CloseCode.Normal, "authentication failed", { reconnect: false, error });
  }

  #scheduleRefresh(conn: Connection, expiresAt: number | null, serverTime: number | undefined): void {
    this.#timers.clearTimeout(conn.timers.refresh);
    if (expiresAt === null || typeof this.#token !== "function") return;
    // Measured against the server's clock (the message's timestamp), so a
    // skewed client clock does not matter.
    const lifetime = expiresAt * 1000 - (serverTime === undefined ? this.#timers.now() : serverTime * 1000);
    const delay = Math.max(0, lifetime - Math.min(this.#refreshMargin, lifetime / 2));
    conn.timers.refresh = this.#timers.setTimeout(() => {
      this.#refresh(conn).catch(() => {
        // Reported through `auth_failed` / `error`; the server's
        // session_expiring warning or 4003 brings another chance.
      });
    }, delay);
  }

  #refresh(conn: Connection): Promise<void> {
    if (conn.closed || !conn.ready) return Promise.reject(new NotConnectedError());
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
      void this.#authenticate(conn, this.#fetchToken("refresh"));
    });
  }

  #onReady(conn: Connection): void {
    conn.ready = true;
    this.#attempt = 0;
    this.#nextTokenReason = "reconnect";
    // Subscriptions first (restored and queued, in one SUBSCRIBE), then the
    // queued requests in the order they were made.
    const channels: string[] = [];
    for (const [channel, sub] of this.#subscriptions) if (sub.status === "unsent") channels.push(channel);
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
        this.#onSubscribeReply(message);
        break;
      case "UNSUBSCRIBE_ACK":
        if (correlation !== null) this.#settle(this.#unsubscribes, correlation)?.resolve();
        break;
      case "EVENT":
      case "DATA":
      case "NOTIFICATION":
        this.#dispatch(message);
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
      let matched = false;
      for (const [channel, sub] of this.#subscriptions) {
        if (sub.status === "pending" && sub.correlationId === correlation) {
          matched = true;
          this.#subscriptionRefused(channel, sub, new SubscribeError(channel, code, text));
        }
      }
      if (matched) return;
    }
    this.#events.emit("error", error);
  }

  #onSessionExpiring(conn: Connection, data: unknown): void {
    const expiresAt =
      typeof data === "object" && data !== null && "expires_at" in data && typeof data.expires_at === "number"
        ? data.expires_at
        : (this.#session?.expiresAt ?? 0);
    this.#events.emit("session_expiring", { expiresAt });
    if (typeof this.#token === "function" && conn.ready && conn.refreshing === null) {
      this.#refresh(conn).catch(() => {
        // Reported through `auth_failed` / `error`.
      });
    }
  }

  // -------------------------------------------------------------------------
  // Subscriptions
  // -------------------------------------------------------------------------

  #sendSubscribe(conn: Connection, channels: readonly string[]): void {
    const id = this.#send(conn, "SUBSCRIBE", { subscriptions: channels });
    for (const channel of channels) {
      const sub = this.#subscriptions.get(channel);
      if (sub === undefined) continue;
      sub.status = "pending";
      sub.correlationId = id;
    }
  }

  #subscriptionWaiter(channel: string, sub: Subscription, timeout = this.#requestTimeout): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter<void> = {
        resolve,
        reject,
        timer: this.#timers.setTimeout(() => {
          sub.waiters.delete(waiter);
          reject(new TimeoutError(`subscribe ${channel}`, timeout));
          // The caller was told it failed: do not keep (or restore) it.
          if (this.#subscriptions.get(channel) === sub && sub.status !== "active") {
            this.#subscriptions.delete(channel);
            this.#rejectSubscription(sub, new TimeoutError(`subscribe ${channel}`, timeout));
          }
        }, timeout),
      };
      sub.waiters.add(waiter);
    });
  }

  #onSubscribeReply(message: Message<"SUBSCRIBE_SUCCESS"> | Message<"SUBSCRIBE_FAILURE">): void {
    const channel = message.payload.channel;
    const sub = this.#subscriptions.get(channel);
    // Replies are matched on channel and correlation_id: a reply to an older
    // SUBSCRIBE (unsubscribed and subscribed again since) is stale.
    if (sub === undefined || sub.status !== "pending") return;
    const correlation = message.correlation_id ?? null;
    if (correlation !== null && correlation !== sub.correlationId) return;
    if (message.type === "SUBSCRIBE_FAILURE") {
      const { code, reason } = message.payload;
      this.#subscriptionRefused(channel, sub, new SubscribeError(channel, code, reason));
      return;
    }
    const resubscribed = sub.wasActive;
    sub.status = "active";
    sub.queued = false;
    sub.wasActive = true;
    for (const waiter of sub.waiters) {
      this.#timers.clearTimeout(waiter.timer);
      waiter.resolve();
    }
    sub.waiters.clear();
    this.#events.emit("subscribed", { channel, resubscribed });
  }

  #subscriptionRefused(channel: string, sub: Subscription, error: SubscribeError): void {
    this.#subscriptions.delete(channel);
    const waited = sub.waiters.size > 0;
    this.#rejectSubscription(sub, error);
    if (!waited) this.#events.emit("subscription_failed", error);
  }

  #rejectSubscription(sub: Subscription, error: unknown): void {
    for (const waiter of sub.waiters) {
      this.#timers.clearTimeout(waiter.timer);
      waiter.reject(error);
    }
    sub.waiters.clear();
  }

  #dispatch(message: ChannelMessage): void {
    const channel = message.payload.channel;
    if (channel === undefined) return;
    const sub = this.#subscriptions.get(channel);
    if (sub === undefined) return;
    for (const handler of [...sub.handlers]) {
      try {
        handler(message);
      } catch (error) {
        rethrowLater(error);
      }
    }
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
    if (!this.#watchServerHeartbeat || !conn.acked || this.#heartbeatInterval <= 0) return;
    this.#timers.clearTimeout(conn.timers.watchdog);
    const limit = this.#heartbeatInterval * 1000 + this.#pongTimeout;
    conn.timers.watchdog = this.#timers.setTimeout(() => {
      this.#drop(conn, CloseCode.Abnormal, `nothing from the server for ${limit} ms`, { reconnect: true });
    }, limit);
  }

  #schedulePing(conn: Connection): void {
    if (this.#pingInterval <= 0) return;
    conn.timers.ping = this.#timers.setTimeout(() => {
      this.ping({ timeout: this.#pongTimeout }).then(
        () => {
          if (!conn.closed) this.#schedulePing(conn);
        },
        (error: unknown) => {
          if (error instanceof TimeoutError) {
            this.#drop(conn, CloseCode.Abnormal, `no PONG within ${this.#pongTimeout} ms`, { reconnect: true });
          }
        },
      );
    }, this.#pingInterval);
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
    for (const sub of this.#subscriptions.values()) {
      sub.status = "unsent";
      sub.correlationId = null;
    }

    // Reconnect?
    const advice = reconnectAdvice(code);
    let reconnect =
      conn.override?.reconnect ??
      (advice === "yes" || (advice === "after_new_token" && typeof this.#token === "function"));
    let stopError = conn.override?.error ?? null;
    if (!this.#active) reconnect = false;
    if (reconnect && !this.#reconnect.enabled) reconnect = false;
    if (reconnect && this.#attempt >= this.#reconnect.maxAttempts) {
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

    this.#setState("disconnected");
    this.#events.emit("disconnected", { code, reason: why, wasClean, willReconnect: reconnect });
    if (reconnect) {
      const delay = backoffDelay(this.#attempt, this.#reconnect.backoff, this.#reconnect.random);
      this.#attempt += 1;
      // "expired" sticks until a connection succeeds: a provider that caches
      // tokens must not hand back the expired one after a failed attempt.
      if (code === CloseCode.TokenExpired) this.#nextTokenReason = "expired";
      this.#events.emit("reconnecting", { attempt: this.#attempt, delay });
      this.#reconnectTimer = this.#timers.setTimeout(() => this.#open(), delay);
      return;
    }
    this.#active = false;
    this.#stop(stopError, code, why);
    for (const resolve of this.#disconnectWaiters) resolve();
    this.#disconnectWaiters.clear();
  }

  /** The client stops: rejects what waits, and enters `error` when stopped by a failure. */
  #stop(error: SwitchboardError | null, code: number, reason: string): void {
    const rejection = error ?? new ConnectionClosedError(code, reason);
    this.#failPending(rejection);
    this.#settleReady(rejection);
    if (error !== null) {
      this.#setState("error");
      this.#events.emit("error", error);
    }
  }

  /** Rejects queued requests and subscribes that never got an answer. */
  #failPending(error: SwitchboardError): void {
    for (const [id, op] of this.#requests) {
      this.#requests.delete(id);
      this.#timers.clearTimeout(op.timer);
      op.reject(error);
    }
    for (const [channel, sub] of this.#subscriptions) {
      if (sub.waiters.size === 0) continue;
      this.#rejectSubscription(sub, error);
      // Never confirmed: forget it rather than restore it on the next connect().
      if (!sub.wasActive) this.#subscriptions.delete(channel);
    }
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
