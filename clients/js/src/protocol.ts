/**
 * The Switchboard protocol, version 1, as written in `docs/protocol.md`:
 * message types, payloads, error codes, close codes and connection states.
 *
 * These lists are the TypeScript side of the contract. `test/protocol-doc.test.ts`
 * parses the tables of `docs/protocol.md` and fails when either side drifts.
 */

/** The `protocol_version` this client speaks (CONNECT_ACK carries the server's). */
export const PROTOCOL_VERSION = 1;

/** The subprotocol offered in the WebSocket handshake; the server selects it. */
export const SUBPROTOCOL = "switchboard.v1";

// ---------------------------------------------------------------------------
// Message types
// ---------------------------------------------------------------------------

/** Every message type of the protocol (the "Message types" table). */
export const MessageType = {
  Connect: "CONNECT",
  ConnectAck: "CONNECT_ACK",
  Disconnect: "DISCONNECT",
  Authenticate: "AUTHENTICATE",
  AuthenticateSuccess: "AUTHENTICATE_SUCCESS",
  AuthenticateFailure: "AUTHENTICATE_FAILURE",
  Subscribe: "SUBSCRIBE",
  SubscribeSuccess: "SUBSCRIBE_SUCCESS",
  SubscribeFailure: "SUBSCRIBE_FAILURE",
  Unsubscribe: "UNSUBSCRIBE",
  UnsubscribeAck: "UNSUBSCRIBE_ACK",
  Event: "EVENT",
  Data: "DATA",
  Notification: "NOTIFICATION",
  Action: "ACTION",
  ActionResult: "ACTION_RESULT",
  Presence: "PRESENCE",
  PresenceStats: "PRESENCE_STATS",
  PresenceResult: "PRESENCE_RESULT",
  Ping: "PING",
  Pong: "PONG",
  Error: "ERROR",
} as const;

/** One of the protocol's message types, e.g. `"SUBSCRIBE"`. */
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

/** Who sends a message type (the table's "direction" column). */
export type Direction = "client→server" | "server→client" | "both";

/** The direction of every message type, in the table's order. */
export const MESSAGE_DIRECTIONS: Readonly<Record<MessageType, Direction>> = {
  CONNECT: "client→server",
  CONNECT_ACK: "server→client",
  DISCONNECT: "both",
  AUTHENTICATE: "client→server",
  AUTHENTICATE_SUCCESS: "server→client",
  AUTHENTICATE_FAILURE: "server→client",
  SUBSCRIBE: "client→server",
  SUBSCRIBE_SUCCESS: "server→client",
  SUBSCRIBE_FAILURE: "server→client",
  UNSUBSCRIBE: "client→server",
  UNSUBSCRIBE_ACK: "server→client",
  EVENT: "server→client",
  DATA: "server→client",
  NOTIFICATION: "server→client",
  ACTION: "client→server",
  ACTION_RESULT: "server→client",
  PRESENCE: "client→server",
  PRESENCE_STATS: "client→server",
  PRESENCE_RESULT: "server→client",
  PING: "both",
  PONG: "both",
  ERROR: "server→client",
};

/** All message types, in the order of the protocol's table. */
export const MESSAGE_TYPES: readonly MessageType[] = Object.values(MessageType);

/** Message types a server may send (direction server→client or both). */
export type ServerMessageType =
  | "CONNECT_ACK"
  | "DISCONNECT"
  | "AUTHENTICATE_SUCCESS"
  | "AUTHENTICATE_FAILURE"
  | "SUBSCRIBE_SUCCESS"
  | "SUBSCRIBE_FAILURE"
  | "UNSUBSCRIBE_ACK"
  | "EVENT"
  | "DATA"
  | "NOTIFICATION"
  | "ACTION_RESULT"
  | "PRESENCE_RESULT"
  | "PING"
  | "PONG"
  | "ERROR";

/** Message types a client may send (direction client→server or both). */
export type ClientMessageType =
  | "CONNECT"
  | "DISCONNECT"
  | "AUTHENTICATE"
  | "SUBSCRIBE"
  | "UNSUBSCRIBE"
  | "ACTION"
  | "PRESENCE"
  | "PRESENCE_STATS"
  | "PING"
  | "PONG";

/** The server→client (and both-way) message types, as a list. */
export const SERVER_MESSAGE_TYPES: readonly ServerMessageType[] = MESSAGE_TYPES.filter(
  (t): t is ServerMessageType => MESSAGE_DIRECTIONS[t] !== "client→server",
);

/** The client→server (and both-way) message types, as a list. */
export const CLIENT_MESSAGE_TYPES: readonly ClientMessageType[] = MESSAGE_TYPES.filter(
  (t): t is ClientMessageType => MESSAGE_DIRECTIONS[t] !== "server→client",
);

// ---------------------------------------------------------------------------
// Payloads
// ---------------------------------------------------------------------------

/** A JSON value, as carried in `data` fields. */
export type JsonValue =
  | string
  | number
  | boolean
  | null
  | readonly JsonValue[]
  | { readonly [key: string]: JsonValue };

export interface ConnectPayload {
  readonly client?: { readonly name?: string; readonly version?: string };
}

export interface ConnectAckPayload {
  readonly connection_id: string;
  readonly requires_auth: boolean;
  readonly authenticated: boolean;
  readonly user_id: string | null;
  /**
   * When the session expires (seconds since the Unix epoch), for a connection
   * authenticated in the handshake; null when it does not expire or is not
   * authenticated. Servers before streams leave it out.
   */
  readonly expires_at?: number | null;
  /** Seconds between the server's PINGs. */
  readonly heartbeat_interval: number;
  readonly server_version: string;
  readonly protocol_version: number;
}

export interface DisconnectPayload {
  readonly code?: number;
  readonly reason?: string;
}

export interface AuthenticatePayload {
  readonly auth: { readonly token: string };
}

export interface AuthenticateSuccessPayload {
  readonly user_id: string;
  /** Seconds since the Unix epoch, or null when the session does not expire. */
  readonly expires_at: number | null;
  readonly permissions: readonly string[];
}

export interface AuthenticateFailurePayload {
  /** `auth_failed` (filled in by this client when a server leaves it out). */
  readonly code: ErrorCode | (string & {});
  readonly reason: string;
  readonly attempts_left: number;
}

/**
 * The AUTHENTICATE_FAILURE reason when the server could not check the token
 * (its authenticator is unavailable): the attempt does not count.
 */
export const AUTH_UNAVAILABLE_REASON = "Authentication unavailable";

/** A place in a channel's stream: the offset of a publication within an epoch. */
export interface StreamPosition {
  /** Names one continuous history of the channel; offsets of two epochs cannot be compared. */
  readonly epoch: string;
  /** 1, 2, 3, … within the epoch; 0 before the first publication. */
  readonly offset: number;
}

/**
 * One entry of SUBSCRIBE: a channel name, or a channel with options: `recover`
 * or `last` (not both), and `join_leave`.
 */
export type SubscriptionRequest =
  | string
  | {
      readonly channel: string;
      /** Replay what followed this position, then go live. */
      readonly recover?: StreamPosition;
      /** Replay the latest `last` publications, then go live. */
      readonly last?: number;
      /** On a channel with presence: send this subscriber the channel's join and leave events. */
      readonly join_leave?: boolean;
    };

export interface SubscribePayload {
  readonly subscriptions: readonly SubscriptionRequest[];
}

export interface SubscribeSuccessPayload {
  readonly channel: string;
  /** On a channel with history: the stream's epoch. */
  readonly epoch?: string;
  /** On a channel with history: the stream's latest offset; the subscription starts after it. */
  readonly offset?: number;
  /** When the SUBSCRIBE asked to `recover`: whether everything missed is replayed next. */
  readonly recovered?: boolean;
  /** When `recovered` is false: why (see `NOT_RECOVERED_REASONS`). */
  readonly reason?: NotRecoveredReason | (string & {});
  /**
   * When the SUBSCRIBE asked for `last` on a channel with history: how many of
   * the latest publications the replay takes (the `last` sent, lowered to the
   * server's recovery limit). At most that many follow.
   */
  readonly last?: number;
  /**
   * True when the SUBSCRIBE asked for `join_leave` and the channel's presence
   * rule sends join and leave events; absent otherwise (the option was ignored).
   */
  readonly join_leave?: boolean;
}

export interface SubscribeFailurePayload {
  readonly channel: string;
  readonly code: ErrorCode | (string & {});
  readonly reason: string;
}

export interface UnsubscribePayload {
  readonly subscriptions: readonly string[];
}

export interface UnsubscribeAckPayload {
  readonly subscriptions: readonly string[];
}

export interface EventPayload {
  readonly event: string;
  readonly data: unknown;
  readonly channel?: string;
}

export interface DataPayload {
  readonly resource: string;
  readonly data: unknown;
  readonly channel?: string;
}

export type NotificationLevel = "info" | "success" | "warning" | "error";

export interface NotificationPayload {
  readonly title: string;
  readonly message: string;
  readonly level: NotificationLevel;
  readonly actions: readonly { readonly label: string; readonly action: string }[];
  readonly channel?: string;
}

export interface ActionPayload {
  readonly action: string;
  readonly data?: unknown;
}

export interface ActionResultPayload {
  readonly action: string;
  readonly data: unknown;
}

/** PRESENCE and PRESENCE_STATS: a channel the connection is subscribed to. */
export interface PresencePayload {
  readonly channel: string;
}

/**
 * What a connection told about itself, as presence shows it: `client` from its
 * CONNECT, and the `meta` a connect proxy returned for it. Servers may add more.
 */
export interface PresenceInfo {
  readonly client?: { readonly name?: string; readonly version?: string };
  readonly meta?: unknown;
  readonly [key: string]: unknown;
}

/** One connection subscribed to a channel with presence. */
export interface PresenceMember {
  /** The connection's cluster address (`gw-1/42`), the form the HTTP API takes. */
  readonly connection: string;
  /** Its authenticated user; null when anonymous. */
  readonly user: string | null;
  /** What the connection told about itself; absent when it told nothing. */
  readonly info?: PresenceInfo;
}

/** The counts of a channel with presence (PRESENCE_STATS's answer). */
export interface PresenceStats {
  readonly channel: string;
  /** Subscribed connections, across every instance (exact). */
  readonly connections: number;
  /** Distinct authenticated users among them (exact). */
  readonly users: number;
}

/** Who is subscribed to a channel with presence (PRESENCE's answer). */
export interface Presence extends PresenceStats {
  /** At most the server's `presence.max_members` (1,000 by default), in no particular order. */
  readonly members: readonly PresenceMember[];
}

/** PRESENCE_RESULT: the counts, and `members` when it answers PRESENCE. */
export interface PresenceResultPayload extends PresenceStats {
  readonly members?: readonly PresenceMember[];
}

// PING and PONG carry an empty object.
export type EmptyPayload = Readonly<Record<string, never>>;

export interface ErrorPayload {
  /** A protocol code, or an application's own (e.g. from the backend behind an rpc proxy). */
  readonly code: ErrorCode | (string & {});
  readonly message: string;
  /** True when the same request may succeed later: retry it with backoff. */
  readonly temporary?: boolean;
}

/** The payload of each message type. */
export interface PayloadMap {
  CONNECT: ConnectPayload;
  CONNECT_ACK: ConnectAckPayload;
  DISCONNECT: DisconnectPayload;
  AUTHENTICATE: AuthenticatePayload;
  AUTHENTICATE_SUCCESS: AuthenticateSuccessPayload;
  AUTHENTICATE_FAILURE: AuthenticateFailurePayload;
  SUBSCRIBE: SubscribePayload;
  SUBSCRIBE_SUCCESS: SubscribeSuccessPayload;
  SUBSCRIBE_FAILURE: SubscribeFailurePayload;
  UNSUBSCRIBE: UnsubscribePayload;
  UNSUBSCRIBE_ACK: UnsubscribeAckPayload;
  EVENT: EventPayload;
  DATA: DataPayload;
  NOTIFICATION: NotificationPayload;
  ACTION: ActionPayload;
  ACTION_RESULT: ActionResultPayload;
  PRESENCE: PresencePayload;
  PRESENCE_STATS: PresencePayload;
  PRESENCE_RESULT: PresenceResultPayload;
  PING: EmptyPayload;
  PONG: EmptyPayload;
  ERROR: ErrorPayload;
}

/** The envelope of one message of type `T`. */
export interface Message<T extends MessageType = MessageType> {
  readonly type: T;
  /** Set by the server on everything it sends; by this client on everything it sends. */
  readonly id: string;
  /** Seconds since the Unix epoch (set by the server). */
  readonly timestamp?: number;
  readonly payload: PayloadMap[T];
  /** On a reply: the `id` of the message it answers. */
  readonly correlation_id?: string | null;
  /** On a publication to a channel with history: its offset in the channel's stream. */
  readonly offset?: number;
}

/** Any message the server may send, discriminated on `type`. */
export type ServerMessage = { [T in ServerMessageType]: Message<T> }[ServerMessageType];

/** Messages a channel's handlers receive. */
export type ChannelMessage = Message<"EVENT"> | Message<"DATA"> | Message<"NOTIFICATION">;

/** The event the server sends about 30 s before a session expires. */
export const SESSION_EXPIRING_EVENT = "switchboard.session_expiring";

// ---------------------------------------------------------------------------
// Streams and recovery
// ---------------------------------------------------------------------------

/** The event (on a channel) announcing publications the server could not deliver. */
export const GAP_EVENT = "switchboard.gap";

/** The `data` of a `switchboard.gap` event. */
export interface GapData {
  /** The epoch of the missed publications. */
  readonly epoch: string;
  /** The first missed offset. */
  readonly from: number;
  /** The last missed offset; null when the epoch changed (whatever followed `from - 1` in it is lost). */
  readonly to: number | null;
  /** Delivery goes on after this position (the subscription's position from now on). */
  readonly resume: StreamPosition;
}

/** Why SUBSCRIBE_SUCCESS says `recovered: false` (the "`reason` | when" table). */
export const NotRecoveredReason = {
  /** The channel keeps no history. */
  NoHistory: "no_history",
  /** The stream's epoch is not the one given: its history was lost. */
  EpochChanged: "epoch_changed",
  /** The offset given is past the stream's latest. */
  UnknownOffset: "unknown_offset",
  /** More was missed than one recovery replays. */
  LimitExceeded: "limit_exceeded",
  /** Part of what was missed is no longer kept (trimmed or expired). */
  HistoryGone: "history_gone",
  /** The history could not be read just now. */
  Unavailable: "unavailable",
} as const;

export type NotRecoveredReason = (typeof NotRecoveredReason)[keyof typeof NotRecoveredReason];

/** All reasons, in the order of the protocol's table. */
export const NOT_RECOVERED_REASONS: readonly NotRecoveredReason[] = Object.values(NotRecoveredReason);

// ---------------------------------------------------------------------------
// Presence
// ---------------------------------------------------------------------------

/** The event (on a channel) announcing a member's arrival, to subscribers that asked (`join_leave`). */
export const JOIN_EVENT = "switchboard.join";

/** The event (on a channel) announcing a member's departure, to subscribers that asked (`join_leave`). */
export const LEAVE_EVENT = "switchboard.leave";

// ---------------------------------------------------------------------------
// Error codes
// ---------------------------------------------------------------------------

/** The `code` of ERROR and SUBSCRIBE_FAILURE messages (the "Errors" table). */
export const ErrorCode = {
  InvalidJson: "invalid_json",
  UnknownType: "unknown_type",
  InvalidMessage: "invalid_message",
  NotAuthenticated: "not_authenticated",
  AuthFailed: "auth_failed",
  Forbidden: "forbidden",
  InvalidChannel: "invalid_channel",
  TooManySubscriptions: "too_many_subscriptions",
  UnknownAction: "unknown_action",
  ActionFailed: "action_failed",
  Unavailable: "unavailable",
  RateLimited: "rate_limited",
  BackendUnavailable: "backend_unavailable",
  NoPresence: "no_presence",
  Internal: "internal",
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** All error codes, in the order of the protocol's table. */
export const ERROR_CODES: readonly ErrorCode[] = Object.values(ErrorCode);

// ---------------------------------------------------------------------------
// Close codes
// ---------------------------------------------------------------------------

/** WebSocket close codes the protocol gives a meaning to (the "Close codes" table). */
export const CloseCode = {
  Normal: 1000,
  GoingAway: 1001,
  ProtocolError: 1002,
  UnsupportedData: 1003,
  Abnormal: 1006,
  InvalidPayload: 1007,
  PolicyViolation: 1008,
  MessageTooBig: 1009,
  InternalError: 1011,
  ServiceRestart: 1012,
  TryAgainLater: 1013,
  KeepaliveTimeout: 4001,
  SlowConsumer: 4002,
  TokenExpired: 4003,
  AuthenticationFailed: 4004,
  AuthenticationTimeout: 4005,
  HeartbeatTimeout: 4006,
  TooManyErrors: 4007,
} as const;

export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/**
 * What a client should do after a close code (the table's "should the client
 * reconnect?" column): `"no"`, `"yes"`, or `"after_new_token"` (reconnect,
 * fetching a fresh token first).
 */
export type ReconnectAdvice = "no" | "yes" | "after_new_token";

export const CLOSE_CODE_ADVICE: Readonly<Record<CloseCode, ReconnectAdvice>> = {
  1000: "no",
  1001: "yes",
  1002: "no",
  1003: "no",
  1006: "yes",
  1007: "no",
  1008: "no",
  1009: "no",
  1011: "yes",
  1012: "yes",
  1013: "yes",
  4001: "yes",
  4002: "yes",
  4003: "after_new_token",
  4004: "no",
  4005: "no",
  4006: "yes",
  4007: "no",
};

/** All close codes of the table, in its order. */
export const CLOSE_CODES: readonly CloseCode[] = Object.values(CloseCode);

/**
 * The advice for any close code. Codes outside the table (1005 "no status",
 * 1015 TLS failure, application codes) are treated as transient: reconnect.
 */
export function reconnectAdvice(code: number): ReconnectAdvice {
  return (CLOSE_CODE_ADVICE as Readonly<Record<number, ReconnectAdvice>>)[code] ?? "yes";
}

// ---------------------------------------------------------------------------
// Connection states
// ---------------------------------------------------------------------------

/**
 * The connection states of the protocol ("Connection states"), mirrored by the
 * client: `initializing` → `connecting` → `connected` → (`authenticating` →
 * `authenticated`) → `disconnecting` → `disconnected`; `error` when the client
 * stopped because of a failure (a terminal close code, authentication refused,
 * or reconnect attempts exhausted).
 */
export const ConnectionState = {
  Initializing: "initializing",
  Connecting: "connecting",
  Connected: "connected",
  Authenticating: "authenticating",
  Authenticated: "authenticated",
  Disconnecting: "disconnecting",
  Disconnected: "disconnected",
  Error: "error",
} as const;

export type ConnectionState = (typeof ConnectionState)[keyof typeof ConnectionState];

/** All connection states, in the document's order. */
export const CONNECTION_STATES: readonly ConnectionState[] = Object.values(ConnectionState);

// ---------------------------------------------------------------------------
// Channels
// ---------------------------------------------------------------------------

/** Largest number of channels one connection may subscribe to. */
export const MAX_SUBSCRIPTIONS = 128;

const CHANNEL_NAME = /^[A-Za-z0-9:_\-.@/=]{1,255}$/;

/** Whether `name` is a valid channel name (1–255 of `A–Z a–z 0–9 : _ - . @ / =`). */
export function isValidChannel(name: string): boolean {
  return CHANNEL_NAME.test(name);
}
