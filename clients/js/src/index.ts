/**
 * `@switchboard/client`: the TypeScript client of the Switchboard protocol
 * (docs/protocol.md) for browsers and Node 20+.
 *
 * ```ts
 * import { SwitchboardClient } from "@switchboard/client";
 * const client = new SwitchboardClient({ url: "wss://example.com/ws", token: () => fetchToken() });
 * await client.connect();
 * await client.subscribe("public:news", (message) => console.log(message.payload));
 * const result = await client.request("chat.send", { text: "hi" });
 * const { members } = await client.presence("public:news");
 * ```
 */

export { SwitchboardClient } from "./client.js";
export type {
  AuthenticatedEvent,
  ChannelHandler,
  ClientEvents,
  ClientInfo,
  ClientOptions,
  ConnectingEvent,
  DisconnectedEvent,
  GapEvent,
  LifecycleEvents,
  PresenceEvent,
  ReconnectingEvent,
  ReconnectOptions,
  RequestOptions,
  Session,
  SessionExpiringEvent,
  StateChangeEvent,
  SubscribedEvent,
  SubscribeOptions,
  TokenContext,
  TokenProvider,
  TokenReason,
} from "./options.js";
export {
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
export {
  AUTH_UNAVAILABLE_REASON,
  CLIENT_MESSAGE_TYPES,
  CLOSE_CODE_ADVICE,
  CLOSE_CODES,
  CloseCode,
  CONNECTION_STATES,
  ConnectionState,
  ERROR_CODES,
  ErrorCode,
  GAP_EVENT,
  isValidChannel,
  JOIN_EVENT,
  LEAVE_EVENT,
  MAX_SUBSCRIPTIONS,
  MESSAGE_DIRECTIONS,
  MESSAGE_TYPES,
  MessageType,
  NOT_RECOVERED_REASONS,
  NotRecoveredReason,
  PROTOCOL_VERSION,
  reconnectAdvice,
  SERVER_MESSAGE_TYPES,
  SESSION_EXPIRING_EVENT,
  SUBPROTOCOL,
} from "./protocol.js";
export type {
  ActionPayload,
  ActionResultPayload,
  AuthenticateFailurePayload,
  AuthenticatePayload,
  AuthenticateSuccessPayload,
  ChannelMessage,
  ClientMessageType,
  ConnectAckPayload,
  ConnectPayload,
  DataPayload,
  Direction,
  DisconnectPayload,
  EmptyPayload,
  ErrorPayload,
  EventPayload,
  GapData,
  JsonValue,
  Message,
  NotificationLevel,
  NotificationPayload,
  PayloadMap,
  Presence,
  PresenceInfo,
  PresenceMember,
  PresencePayload,
  PresenceResultPayload,
  PresenceStats,
  ReconnectAdvice,
  ServerMessage,
  ServerMessageType,
  StreamPosition,
  SubscribeFailurePayload,
  SubscribePayload,
  SubscribeSuccessPayload,
  SubscriptionRequest,
  UnsubscribeAckPayload,
  UnsubscribePayload,
} from "./protocol.js";
export { backoffCap, backoffDelay, DEFAULT_BACKOFF, type BackoffOptions } from "./backoff.js";
export { CLIENT_NAME, CLIENT_VERSION } from "./settings.js";
export type { Timers } from "./env.js";
export type { CloseEventLike, MessageEventLike, WebSocketConstructor, WebSocketLike } from "./socket.js";
