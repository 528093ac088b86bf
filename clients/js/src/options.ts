/** The client's options and events. */

import type { Timers } from "./env.js";
import type {
  AuthenticationError,
  SubscribeError,
  SwitchboardError,
} from "./errors.js";
import type {
  ChannelMessage,
  ConnectAckPayload,
  ConnectionState,
  GapData,
  Message,
  NotRecoveredReason,
  PresenceMember,
  ServerMessage,
  ServerMessageType,
  StreamPosition,
} from "./protocol.js";
import type { WebSocketConstructor } from "./socket.js";

/** Why the client asks for a token. */
export type TokenReason =
  /** The first connection after `connect()`. */
  | "connect"
  /** A new connection after one was lost. */
  | "reconnect"
  /** A new connection after the server closed with 4003 (token expired). */
  | "expired"
  /** Refreshing the session before `expires_at` (or on `switchboard.session_expiring`). */
  | "refresh"
  /** Retrying after `AUTHENTICATE_FAILURE` while the server still allows attempts. */
  | "retry";

export interface TokenContext {
  readonly reason: TokenReason;
}

/**
 * Fetches a token. Called on every connection (first and reconnects), before
 * the session expires, and after a refusal while attempts are left. Throwing
 * (or rejecting) fails the attempt: the client drops the connection and
 * retries with backoff.
 */
export type TokenProvider = (context: TokenContext) => string | Promise<string>;

export interface ReconnectOptions {
  /** Reconnect at all. Default true. */
  readonly enabled?: boolean | undefined;
  /** Cap of the first retry's delay, ms. Default 500. */
  readonly initialDelay?: number | undefined;
  /** Largest delay, ms. Default 20 000. */
  readonly maxDelay?: number | undefined;
  /** Growth of the cap per attempt. Default 2. */
  readonly factor?: number | undefined;
  /**
   * Consecutive failed attempts after which the client gives up (state
   * `error`). Counted from the last successful connection. Default: no limit.
   */
  readonly maxAttempts?: number | undefined;
  /** Random source in [0, 1) for the jitter (tests pin it). Default `Math.random`. */
  readonly random?: (() => number) | undefined;
}

export interface ClientOptions {
  /** `ws://host/ws` or `wss://host/ws`. */
  readonly url: string;
  /**
   * The WebSocket constructor. Default: the global `WebSocket` (browsers,
   * Node 22+, Node 20 with `--experimental-websocket`). Inject `ws`'s class
   * (or a fake) elsewhere.
   */
  readonly WebSocket?: WebSocketConstructor | undefined;
  /** A token, or a callback that fetches one (see `TokenProvider`). */
  readonly token?: string | TokenProvider | undefined;
  /** Subprotocols offered in the handshake. Default `["switchboard.v1"]`. */
  readonly protocols?: readonly string[] | undefined;
  /** Reconnect policy; `false` turns reconnecting off. */
  readonly reconnect?: ReconnectOptions | boolean | undefined;
  /** Default timeout of `request`, `subscribe`, `unsubscribe` and `ping`, ms. Default 10 000. */
  readonly requestTimeout?: number | undefined;
  /** Time for the socket to open and CONNECT_ACK to arrive, ms. Default 10 000. */
  readonly connectTimeout?: number | undefined;
  /**
   * Most requests and subscribes held while not connected; beyond it they
   * reject with `QueueFullError`. Default 100.
   */
  readonly queueLimit?: number | undefined;
  /**
   * Send our own PING this often while connected (ms), and drop the
   * connection when its PONG takes longer than `pongTimeout`. Default 0 (off:
   * the server's heartbeat is watched instead).
   */
  readonly pingInterval?: number | undefined;
  /** How long to wait for a PONG, ms. Default 10 000. */
  readonly pongTimeout?: number | undefined;
  /**
   * Drop the connection when nothing arrives for CONNECT_ACK's
   * `heartbeat_interval` plus `pongTimeout` (the server PINGs every interval).
   * Default true.
   */
  readonly watchServerHeartbeat?: boolean | undefined;
  /**
   * Refresh the session this long before `expires_at` (at most half the
   * session's lifetime before), ms. Default 60 000. Needs a `TokenProvider`.
   */
  readonly refreshMargin?: number | undefined;
  /**
   * Largest message this client sends, in UTF-8 bytes; bigger requests are
   * rejected before sending (the server would close with 1009, a terminal
   * code). Default 65 536, the server's default.
   */
  readonly maxMessageSize?: number | undefined;
  /**
   * How many times one subscription answered `unavailable` (the channel's
   * history could not be read) is sent again, with the reconnect backoff,
   * before it fails for good. Counted until it is confirmed. Default 10.
   */
  readonly subscribeRetries?: number | undefined;
  /**
   * What the client tells the server about itself in `CONNECT`, sent first on
   * every connection: presence shows it to others as the member's
   * `info.client`. Default `{ name: "switchboard-js", version: CLIENT_VERSION }`;
   * `false` sends no `CONNECT`.
   */
  readonly client?: ClientInfo | false | undefined;
  /** Timers and clock (tests use a fake). Default: the host's. */
  readonly timers?: Timers | undefined;
}

/** A client's name and version, as `CONNECT` carries them. */
export interface ClientInfo {
  readonly name?: string | undefined;
  readonly version?: string | undefined;
}

export interface RequestOptions {
  /** ms; default the client's `requestTimeout`. */
  readonly timeout?: number | undefined;
}

/**
 * `subscribe()`'s options. `last` and `recover` apply to the subscribe that
 * creates the subscription (a later `subscribe()` of a kept channel only adds
 * its handler and callbacks); after a reconnect the client recovers from the
 * subscription's position by itself.
 */
export interface SubscribeOptions extends RequestOptions {
  /**
   * Replay the latest `last` publications the channel's stream still has
   * (a whole number ≥ 1; the server lowers a bigger one to its recovery
   * limit, 300 by default, and `SubscribedEvent.last` says how many), then go
   * live: a dashboard shows the latest state at once. Not with `recover`.
   */
  readonly last?: number | undefined;
  /**
   * Recover from this position (e.g. one an earlier page saved from
   * `client.position(channel)`): the server replays what followed it, then
   * goes live; `SubscribedEvent.recovered` says whether it could. Not with `last`.
   */
  readonly recover?: StreamPosition | undefined;
  /** Called on every confirmation of this subscription (the first, and after each reconnect). */
  readonly onSubscribed?: ((event: SubscribedEvent) => void) | undefined;
  /** Called when the server announces publications of this channel it could not deliver. */
  readonly onGap?: ((event: GapEvent) => void) | undefined;
  /**
   * On a channel with presence: ask for its join and leave events
   * (`join_leave: true` in every SUBSCRIBE of this subscription, resubscriptions
   * and recoveries too). They come as the `join` and `leave` events and this
   * subscription's `onJoin` / `onLeave`, never to the channel's handler.
   * `SubscribedEvent.joinLeave` says whether the server sends them (the
   * channel's presence rule may send none). Like `last`, it applies to the
   * subscribe that creates the subscription.
   */
  readonly joinLeave?: boolean | undefined;
  /** Called when someone arrives in the channel (needs `joinLeave`). */
  readonly onJoin?: ((event: PresenceEvent) => void) | undefined;
  /** Called when someone leaves the channel (needs `joinLeave`). */
  readonly onLeave?: ((event: PresenceEvent) => void) | undefined;
}

/** A channel's handler: receives EVENT, DATA and NOTIFICATION published to it. */
export type ChannelHandler = (message: ChannelMessage) => void;

/** What the server granted on authentication. */
export interface Session {
  readonly userId: string | null;
  /** Seconds since the Unix epoch; null when it does not expire or is unknown. */
  readonly expiresAt: number | null;
  readonly permissions: readonly string[];
}

export interface StateChangeEvent {
  readonly from: ConnectionState;
  readonly to: ConnectionState;
}

export interface ConnectingEvent {
  /** 0 for the first connection after `connect()`, then the reconnect attempt. */
  readonly attempt: number;
  readonly url: string;
}

export interface AuthenticatedEvent extends Session {
  /** True when an authenticated session was refreshed with a new token. */
  readonly refreshed: boolean;
}

export interface DisconnectedEvent {
  /**
   * The close code. 1006 also when the client dropped a connection itself
   * (connect or heartbeat timeout, token provider failure).
   */
  readonly code: number;
  readonly reason: string;
  readonly wasClean: boolean;
  /** Whether a reconnect is scheduled (a `reconnecting` event follows). */
  readonly willReconnect: boolean;
}

export interface ReconnectingEvent {
  /** 1 for the first retry. */
  readonly attempt: number;
  /** ms until the attempt. */
  readonly delay: number;
}

export interface SessionExpiringEvent {
  /** Seconds since the Unix epoch. */
  readonly expiresAt: number;
}

export interface SubscribedEvent {
  readonly channel: string;
  /** True when restored after a reconnect. */
  readonly resubscribed: boolean;
  /** On a channel with history: the stream's epoch (null without history). */
  readonly epoch: string | null;
  /**
   * On a channel with history: the stream's latest offset when subscribed
   * (null without history). When `recovered` is true, the publications after
   * `recover.offset` up to this one follow, then live ones.
   */
  readonly offset: number | null;
  /**
   * Whether everything missed since `recover` is replayed next. Set when the
   * client asked to recover (after every reconnect, or with the `recover`
   * option), absent on a fresh subscription. **false: messages were missed;
   * reload the state you keep from this channel** (over HTTP, e.g.
   * `GET /api/v1/channels/{channel}/history`).
   */
  readonly recovered?: boolean;
  /**
   * Why it was not recovered. `no_history` also when the client resubscribed
   * a channel it had no position for (a channel without history: what was
   * published meanwhile is lost).
   */
  readonly reason?: NotRecoveredReason | (string & {});
  /** The position the client asked to recover from, if it had one. */
  readonly recover?: StreamPosition;
  /**
   * When the subscription asked for `last` on a channel with history: how many
   * of the latest publications the replay takes (`last`, lowered to the
   * server's recovery limit). At most that many follow.
   */
  readonly last?: number;
  /**
   * True when the subscription asked for `joinLeave` and the server sends the
   * channel's join and leave events; absent otherwise.
   */
  readonly joinLeave?: boolean;
}

/**
 * The server could not deliver some publications of a subscribed channel
 * (`switchboard.gap`): `from`..`to` of `epoch` are lost. The subscription's
 * position is now `resume`. **Reload the state you keep from this channel.**
 */
export interface GapEvent extends GapData {
  readonly channel: string;
}

/**
 * A member arrived in (`join`) or left (`leave`) a channel the client
 * subscribed to with `joinLeave` (`switchboard.join` / `switchboard.leave`).
 * With the server's per-user mode (the gateway's default) a user's first
 * connection joins and their last one leaves, after a grace (5 s) in which a
 * return (a page reload) sends neither; anonymous connections join and leave
 * one by one. The client's own arrival is not announced to itself.
 */
export interface PresenceEvent {
  readonly channel: string;
  readonly member: PresenceMember;
}

/** The client's lifecycle events. */
export interface LifecycleEvents {
  /** Every state change. */
  state: StateChangeEvent;
  /** A connection attempt starts. */
  connecting: ConnectingEvent;
  /** CONNECT_ACK arrived. */
  connected: ConnectAckPayload;
  /** AUTHENTICATE_SUCCESS arrived (also on a refresh), or CONNECT_ACK said authenticated. */
  authenticated: AuthenticatedEvent;
  /** AUTHENTICATE_FAILURE arrived (first connection, retry or refresh). */
  auth_failed: AuthenticationError;
  /** The connection closed. */
  disconnected: DisconnectedEvent;
  /** A reconnect is scheduled. */
  reconnecting: ReconnectingEvent;
  /** The server warned that the session expires soon (`switchboard.session_expiring`). */
  session_expiring: SessionExpiringEvent;
  /** The server confirmed a subscription (also after a reconnect). */
  subscribed: SubscribedEvent;
  /** A subscription was dropped by `unsubscribe()`. */
  unsubscribed: { readonly channel: string };
  /** The server announced publications of a subscribed channel it could not deliver. */
  gap: GapEvent;
  /** Someone arrived in a channel subscribed with `joinLeave` (`switchboard.join`). */
  join: PresenceEvent;
  /** Someone left a channel subscribed with `joinLeave` (`switchboard.leave`). */
  leave: PresenceEvent;
  /** A resubscription after a reconnect was refused (no promise is waiting for it). */
  subscription_failed: SubscribeError;
  /**
   * Something went wrong: a malformed message, an ERROR answering nothing
   * pending, a token provider failure, an ERROR answering AUTHENTICATE, a
   * subscription answered `unavailable` (a `SubscribeError` whose
   * `retryDelay` says when it is sent again), or the reason the client stopped.
   */
  error: SwitchboardError;
  /** Every message from the server. */
  message: ServerMessage;
}

/** Every event `on`/`off` accept: lifecycle events, and each server message type. */
export type ClientEvents = LifecycleEvents & { [T in ServerMessageType]: Message<T> };
