/**
 * `SwitchboardClient`: one logical connection to a Switchboard gateway's
 * `/ws` that survives reconnects. It authenticates, restores subscriptions
 * and flushes queued work by itself after every reconnect.
 */

// The class composes the parts and routes the server's messages to them:
// `Lifecycle` (state, sockets, reconnecting; with connection.ts and
// reconnect.ts), `Auth`, `Heartbeat`, `Requests` and `Subscriptions`. Imports
// point one way: the parts never import this module (test/layers.test.ts).

import { Auth } from "./auth.js";
import type { Connection } from "./connection.js";
import { Emitter, type Listener } from "./emitter.js";
import { ConnectionClosedError, ServerError } from "./errors.js";
import { Heartbeat } from "./heartbeat.js";
import { Lifecycle } from "./lifecycle.js";
import type {
  ChannelHandler,
  ClientEvents,
  ClientOptions,
  RequestOptions,
  Session,
  SubscribedEvent,
  SubscribeOptions,
} from "./options.js";
import {
  CloseCode,
  ConnectionState,
  SESSION_EXPIRING_EVENT,
  type Message,
  type Presence,
  type PresenceStats,
  type ServerMessage,
  type StreamPosition,
} from "./protocol.js";
import { Requests } from "./requests.js";
import { settings, type Settings } from "./settings.js";
import { Subscriptions } from "./subscriptions.js";

export class SwitchboardClient {
  readonly #s: Settings;
  readonly #events = new Emitter<ClientEvents>();
  readonly #lifecycle: Lifecycle;
  readonly #auth: Auth;
  readonly #heartbeat: Heartbeat;
  readonly #requests: Requests;
  readonly #subscriptions: Subscriptions;

  constructor(options: ClientOptions) {
    this.#s = settings(options);
    this.#lifecycle = new Lifecycle(this.#s, this.#events, {
      token: (reason) => this.#auth.token(reason),
      message: (conn, message) => this.#onMessage(conn, message),
      malformed: (conn, error) => {
        // Not readable, but it came from the server: it is alive.
        this.#heartbeat.heard(conn);
        this.#events.emit("error", error);
      },
      ready: (conn) => {
        // Subscriptions first (restored and queued, in one SUBSCRIBE), then the
        // queued requests in the order they were made.
        this.#subscriptions.flush(conn);
        this.#requests.flush(conn);
        this.#heartbeat.start(conn);
      },
      lost: (conn, code, why) => {
        // Work in flight on this connection.
        const lost = new ConnectionClosedError(code, why);
        this.#requests.lost(code, why);
        this.#subscriptions.lost();
        this.#heartbeat.lost(lost);
        this.#auth.lost(conn, lost);
      },
      stopped: (error) => {
        // Queued requests and subscribes that never got an answer.
        this.#requests.stop(error);
        this.#subscriptions.stop(error);
      },
      queued: () => this.queued,
    });
    this.#auth = new Auth(this.#s, this.#lifecycle, this.#events);
    this.#heartbeat = new Heartbeat(this.#s, this.#lifecycle);
    this.#requests = new Requests(this.#s, this.#lifecycle);
    this.#subscriptions = new Subscriptions(this.#s, this.#lifecycle, this.#events);
  }

  // -------------------------------------------------------------------------
  // Public API
  // -------------------------------------------------------------------------

  /** The current state (see `ConnectionState`). */
  get state(): ConnectionState {
    return this.#lifecycle.state;
  }

  /** Connected, authenticated if needed: requests and subscribes go out at once. */
  get ready(): boolean {
    return this.#lifecycle.readyConnection !== null;
  }

  /** The server's id of the current connection (from CONNECT_ACK). */
  get connectionId(): string | null {
    return this.#lifecycle.connectionId;
  }

  /** The current session, once authenticated. */
  get session(): Session | null {
    return this.#auth.session;
  }

  /** The channels this client keeps subscribed (confirmed or not yet). */
  get channels(): string[] {
    return this.#subscriptions.channels();
  }

  /** Requests and subscribes waiting for a connection. */
  get queued(): number {
    return this.#subscriptions.queued() + this.#requests.queued();
  }

  /**
   * Starts connecting (and reconnecting, per the policy). Resolves once
   * connected and authenticated; rejects if the client stops first (terminal
   * close code, authentication refused, attempts exhausted, `disconnect()`).
   * Not awaiting it is fine (a rejection is never reported as unhandled).
   */
  connect(): Promise<void> {
    return this.#lifecycle.connect();
  }

  /**
   * Closes the connection (sending DISCONNECT, then a close frame with `code`)
   * and stops reconnecting. Subscriptions are kept and restored by the next
   * `connect()`; queued and in-flight work is rejected.
   */
  disconnect(code: number = CloseCode.Normal, reason = "client disconnect"): Promise<void> {
    return this.#lifecycle.disconnect(code, reason);
  }

  /**
   * Subscribes to `channel`; `handler` receives its EVENT, DATA and
   * NOTIFICATION messages. Resolves on SUBSCRIBE_SUCCESS with the
   * `subscribed` event (the stream's `epoch` and `offset`, and `recovered`
   * when it recovered), rejects with `SubscribeError` on SUBSCRIBE_FAILURE
   * (`unavailable` is retried with backoff first). While not connected the
   * subscribe is queued (see `queueLimit`). Subscribing again adds the
   * handler and callbacks. With `joinLeave`, the channel's join and leave
   * events come as the `join` / `leave` events and `onJoin` / `onLeave`
   * (never to `handler`). After every reconnect the client subscribes again,
   * recovering from the subscription's position (see `position()`).
   */
  subscribe(channel: string, handler?: ChannelHandler, options: SubscribeOptions = {}): Promise<SubscribedEvent> {
    return this.#subscriptions.subscribe(channel, handler, options, options.timeout ?? this.#s.requestTimeout);
  }

  /**
   * Where the subscription to `channel` is in the channel's stream: the
   * epoch, and the offset of the last publication received (or of the stream
   * when it subscribed). Null for a channel without history or not
   * subscribed. Save it to recover later with `subscribe(channel, handler,
   * { recover: position })` (e.g. after a page reload).
   */
  position(channel: string): StreamPosition | null {
    return this.#subscriptions.position(channel);
  }

  /**
   * Drops `channel` and its handlers. Resolves on UNSUBSCRIBE_ACK, or at once
   * when not connected (it will not be restored).
   */
  unsubscribe(channel: string, options: RequestOptions = {}): Promise<void> {
    return this.#subscriptions.unsubscribe(channel, options.timeout ?? this.#s.requestTimeout);
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
    return this.#requests.request<T>(action, data, options.timeout ?? this.#s.requestTimeout);
  }

  /**
   * Who is subscribed to `channel` (a channel with presence this client is
   * subscribed to), across every instance: PRESENCE → PRESENCE_RESULT. Resolves
   * with `{ channel, connections, users, members }`, each member
   * `{ connection, user, info? }` (`info.client`: what that client sent in
   * CONNECT). Rejects with `ServerError`: `forbidden` (not subscribed),
   * `no_presence` (the channel keeps none), `unavailable` (retry with
   * backoff); or `TimeoutError`. Queued while not connected (after the
   * resubscriptions); one in flight when the connection drops is sent again
   * on the next.
   */
  presence(channel: string, options: RequestOptions = {}): Promise<Presence> {
    return this.#requests.presence(channel, true, options.timeout ?? this.#s.requestTimeout);
  }

  /**
   * The counts of `channel` only, `{ channel, connections, users }`
   * (PRESENCE_STATS, O(1) on the server at any size); like `presence()`.
   */
  presenceStats(channel: string, options: RequestOptions = {}): Promise<PresenceStats> {
    return this.#requests.presence(channel, false, options.timeout ?? this.#s.requestTimeout);
  }

  /** Sends PING; resolves with the round trip in ms when PONG arrives. */
  ping(options: RequestOptions = {}): Promise<number> {
    return this.#heartbeat.ping(options.timeout ?? this.#s.pongTimeout);
  }

  /**
   * Refreshes the session now with a fresh token from the provider (the
   * client also does this by itself before `expires_at`).
   */
  refreshToken(): Promise<void> {
    return this.#auth.refreshToken();
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
  // Receiving: each message goes to the part it concerns, then to listeners
  // -------------------------------------------------------------------------

  #onMessage(conn: Connection, message: ServerMessage): void {
    this.#heartbeat.heard(conn);
    this.#route(conn, message);
    this.#events.emit("message", message);
    // Each member of the union goes to the listeners of its own type.
    (this.#events.emit as (event: ServerMessage["type"], value: ServerMessage) => void).call(
      this.#events,
      message.type,
      message,
    );
  }

  #route(conn: Connection, message: ServerMessage): void {
    const correlation = message.correlation_id ?? null;
    switch (message.type) {
      case "CONNECT_ACK":
        if (this.#lifecycle.acked(conn, message.payload)) {
          this.#heartbeat.acked(conn, message.payload.heartbeat_interval);
          this.#auth.acked(conn, message);
        }
        break;
      case "AUTHENTICATE_SUCCESS":
        this.#auth.succeeded(conn, message);
        break;
      case "AUTHENTICATE_FAILURE":
        this.#auth.failed(conn, message.payload.reason, message.payload.attempts_left);
        break;
      case "SUBSCRIBE_SUCCESS":
      case "SUBSCRIBE_FAILURE":
        this.#subscriptions.reply(message);
        break;
      case "UNSUBSCRIBE_ACK":
        if (correlation !== null) this.#subscriptions.unsubscribed(correlation);
        break;
      case "EVENT":
      case "DATA":
      case "NOTIFICATION":
        this.#subscriptions.dispatch(message);
        if (message.type === "EVENT" && message.payload.event === SESSION_EXPIRING_EVENT) {
          this.#auth.expiring(conn, message.payload.data);
        }
        break;
      case "ACTION_RESULT":
      case "PRESENCE_RESULT":
        if (correlation !== null) this.#requests.reply(correlation, message.type, message.payload);
        break;
      case "ERROR":
        this.#onError(conn, message, correlation);
        break;
      case "PING":
        this.#heartbeat.pinged(conn, message.id);
        break;
      case "PONG":
        if (correlation !== null) this.#heartbeat.ponged(correlation);
        break;
      case "DISCONNECT":
        conn.serverDisconnect = message.payload;
        break;
    }
  }

  /** An ERROR fails what it answers; one answering nothing pending is an `error` event. */
  #onError(conn: Connection, message: Message<"ERROR">, correlation: string | null): void {
    const { code, message: text } = message.payload;
    const error = new ServerError(code, text, correlation);
    const answered =
      correlation !== null &&
      (this.#requests.error(correlation, error) ||
        this.#subscriptions.unsubscribeError(correlation, error) ||
        this.#heartbeat.error(correlation, error) ||
        this.#auth.error(conn, correlation, error) ||
        this.#subscriptions.subscribeError(correlation, code, text));
    if (!answered) this.#events.emit("error", error);
  }
}
