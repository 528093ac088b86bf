/**
 * One WebSocket and what belongs to it (gone when the socket closes), and the
 * small pieces of wire handling around it: tokens, close codes and reasons,
 * message sizes.
 */

import { TokenProviderError, type SwitchboardError } from "./errors.js";
import type { TokenProvider, TokenReason } from "./options.js";
import type { WebSocketLike } from "./socket.js";

/** Settles one caller's promise; `timer` bounds the wait. */
export interface Waiter<T> {
  resolve(value: T): void;
  reject(error: unknown): void;
  timer: unknown;
}

export type TokenResult =
  | { readonly ok: true; readonly token: string }
  | { readonly ok: false; readonly error: TokenProviderError };

export interface Connection {
  readonly socket: WebSocketLike;
  /** The token fetched for this connection (while the socket opened), if any. */
  readonly token: Promise<TokenResult> | null;
  opened: boolean;
  acked: boolean;
  /** Connected and authenticated if needed: work goes out at once. */
  ready: boolean;
  closed: boolean;
  /** The id of the AUTHENTICATE in flight. */
  authId: string | null;
  /** The caller waiting for a session refresh, if one is in flight. */
  refreshing: Waiter<void> | null;
  /** When the scheduled refresh fires (client clock, ms), if one is scheduled. */
  refreshAt: number | null;
  /** The server's DISCONNECT, whose reason is reported if the close frame has none. */
  serverDisconnect: { readonly code?: number; readonly reason?: string } | null;
  /** Set when the client drops the connection itself: overrides the close-code advice. */
  override: { readonly reconnect?: boolean; readonly error?: SwitchboardError } | null;
  readonly timers: { connect?: unknown; watchdog?: unknown; ping?: unknown; refresh?: unknown; error?: unknown };
}

export function newConnection(socket: WebSocketLike, token: Promise<TokenResult> | null): Connection {
  return {
    socket,
    token,
    opened: false,
    acked: false,
    ready: false,
    closed: false,
    authId: null,
    refreshing: null,
    refreshAt: null,
    serverDisconnect: null,
    override: null,
    timers: {},
  };
}

/** Asks `source` for a token; never rejects (a failure is a `TokenResult`). */
export function fetchToken(source: string | TokenProvider, reason: TokenReason): Promise<TokenResult> {
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

/** Close codes a browser lets a client send (others throw): 1000 or 3000–4999. */
export function sendableCloseCode(code: number): number {
  return code === 1000 || (code >= 3000 && code <= 4999) ? code : 1000;
}

/** A close reason must fit in 123 UTF-8 bytes. */
export function closeReason(reason: string): string {
  let out = reason;
  while (utf8Length(out) > 123) out = out.slice(0, -1);
  return out;
}

/** The UTF-8 size of `text`, in bytes. */
export function utf8Length(text: string): number {
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
