/** `ClientOptions` with every default filled in. */

import { DEFAULT_BACKOFF, type BackoffOptions } from "./backoff.js";
import { globalWebSocket, systemTimers, type Timers } from "./env.js";
import { SwitchboardError } from "./errors.js";
import type { ClientInfo, ClientOptions, TokenProvider } from "./options.js";
import { SUBPROTOCOL, type ConnectPayload } from "./protocol.js";

/** What `CONNECT` says about the client. */
type Hello = NonNullable<ConnectPayload["client"]>;
import type { WebSocketConstructor } from "./socket.js";

/** The name this client gives in `CONNECT` (presence shows it as `info.client.name`). */
export const CLIENT_NAME = "switchboard-js";

/** This client's version (package.json's; a unit test keeps them equal). */
export const CLIENT_VERSION = "0.1.0";

export interface Settings {
  readonly url: string;
  readonly WebSocket: WebSocketConstructor;
  readonly token: string | TokenProvider | null;
  readonly protocols: readonly string[];
  readonly reconnect: {
    readonly enabled: boolean;
    readonly maxAttempts: number;
    readonly random: () => number;
    readonly backoff: BackoffOptions;
  };
  readonly requestTimeout: number;
  readonly connectTimeout: number;
  readonly queueLimit: number;
  readonly pingInterval: number;
  readonly pongTimeout: number;
  readonly watchServerHeartbeat: boolean;
  readonly refreshMargin: number;
  readonly maxMessageSize: number;
  readonly subscribeRetries: number;
  /** Sent in `CONNECT` on every connection; null: no `CONNECT`. */
  readonly client: Hello | null;
  readonly timers: Timers;
}

export function settings(options: ClientOptions): Settings {
  const ctor = options.WebSocket ?? globalWebSocket();
  if (ctor === undefined) {
    throw new SwitchboardError(
      "no WebSocket constructor: pass options.WebSocket (e.g. the `ws` package's class), " +
        "or run on Node 22+ / Node 20 with --experimental-websocket",
    );
  }
  const reconnect = typeof options.reconnect === "object" ? options.reconnect : {};
  return {
    url: options.url,
    WebSocket: ctor,
    token: options.token ?? null,
    protocols: options.protocols ?? [SUBPROTOCOL],
    reconnect: {
      enabled: options.reconnect !== false && reconnect.enabled !== false,
      maxAttempts: reconnect.maxAttempts ?? Number.POSITIVE_INFINITY,
      random: reconnect.random ?? Math.random,
      backoff: {
        initialDelay: reconnect.initialDelay ?? DEFAULT_BACKOFF.initialDelay,
        maxDelay: reconnect.maxDelay ?? DEFAULT_BACKOFF.maxDelay,
        factor: reconnect.factor ?? DEFAULT_BACKOFF.factor,
      },
    },
    requestTimeout: options.requestTimeout ?? 10_000,
    connectTimeout: options.connectTimeout ?? 10_000,
    queueLimit: options.queueLimit ?? 100,
    pingInterval: options.pingInterval ?? 0,
    pongTimeout: options.pongTimeout ?? 10_000,
    watchServerHeartbeat: options.watchServerHeartbeat ?? true,
    refreshMargin: options.refreshMargin ?? 60_000,
    maxMessageSize: options.maxMessageSize ?? 65_536,
    subscribeRetries: options.subscribeRetries ?? 10,
    client: clientInfo(options.client),
    timers: options.timers ?? systemTimers,
  };
}

/** `options.client`: as given, this client's name and version by default, null for `false`. */
function clientInfo(option: ClientInfo | false | undefined): Hello | null {
  if (option === false) return null;
  if (option === undefined) return { name: CLIENT_NAME, version: CLIENT_VERSION };
  // Only the fields that are set (the server takes strings).
  return {
    ...(option.name === undefined ? {} : { name: option.name }),
    ...(option.version === undefined ? {} : { version: option.version }),
  };
}
