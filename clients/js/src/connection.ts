/**
 * One WebSocket and what belongs to it (gone when the socket closes): its
 * events, its timers, sending on it, dropping it; and the small pieces of wire
 * handling around it (close codes and reasons, message sizes).
 *
 * The parts keep their per-connection state here (auth: the token, the
 * AUTHENTICATE in flight, the refresh; heartbeat: its timers), so it dies
 * with the socket: every timer in `timers` stops when it closes.
 */

import { decodeServerMessage } from "./codec.js";
import { uuid, type Timers } from "./env.js";
import { MalformedMessageError, type SwitchboardError, type TokenProviderError } from "./errors.js";
import { CloseCode, type ClientMessageType, type PayloadMap, type ServerMessage } from "./protocol.js";
import type { WebSocketLike } from "./socket.js";

/** Settles one caller's promise; `timer` bounds the wait. */
export interface Waiter<T> {
  resolve(value: T): void;
  reject(error: unknown): void;
  timer: unknown;
}

/** A token from the provider (or the fixed one), or why there is none (see `fetchToken` in auth.ts). */
export type TokenResult =
  | { readonly ok: true; readonly token: string }
  | { readonly ok: false; readonly error: TokenProviderError };

/** Set when the client drops a connection itself: overrides the close-code advice. */
export interface DropOverride {
  readonly reconnect?: boolean;
  readonly error?: SwitchboardError;
}

/** What a connection tells its owner (the lifecycle). */
export interface ConnectionOwner {
  message(conn: Connection, message: ServerMessage): void;
  /** A frame the client cannot read on `conn` (it is ignored, but the server is alive). */
  malformed(conn: Connection, error: MalformedMessageError): void;
  /** `conn` closed: it is marked closed and its timers are stopped. */
  closed(conn: Connection, code: number, reason: string, wasClean: boolean): void;
}

export class Connection {
  opened = false;
  acked = false;
  /** Connected and authenticated if needed: work goes out at once. */
  ready = false;
  closed = false;
  /** The id of the AUTHENTICATE in flight. */
  authId: string | null = null;
  /** The caller waiting for a session refresh, if one is in flight. */
  refreshing: Waiter<void> | null = null;
  /** When the scheduled refresh fires (client clock, ms), if one is scheduled. */
  refreshAt: number | null = null;
  /** The server's DISCONNECT, whose reason is reported if the close frame has none. */
  serverDisconnect: { readonly code?: number; readonly reason?: string } | null = null;
  override: DropOverride | null = null;
  /** connect, error: this class and the lifecycle; watchdog, ping: heartbeat.ts; refresh: auth.ts. */
  readonly timers: { connect?: unknown; watchdog?: unknown; ping?: unknown; refresh?: unknown; error?: unknown } = {};
  readonly #timers: Timers;
  readonly #owner: ConnectionOwner;

  /** Listens to `socket` (just made); without CONNECT_ACK within `connectTimeout` ms it is dropped. */
  constructor(
    readonly socket: WebSocketLike,
    /** The token fetched for this connection (while the socket opened), if any. */
    readonly token: Promise<TokenResult> | null,
    connectTimeout: number,
    timers: Timers,
    owner: ConnectionOwner,
  ) {
    this.#timers = timers;
    this.#owner = owner;
    socket.addEventListener("open", () => {
      this.opened = true;
    });
    socket.addEventListener("message", (event) => this.#onFrame(event.data));
    socket.addEventListener("close", (event) => this.markClosed(event.code, event.reason, event.wasClean));
    socket.addEventListener("error", () => {
      if (this.closed) return;
      // Before the open no close event may follow (Node 20's undici fires only
      // `error` for a refused handshake); after it, the close event should.
      if (!this.opened) this.drop(CloseCode.Abnormal, "connection failed", {});
      else if (this.timers.error === undefined) {
        this.timers.error = timers.setTimeout(() => this.drop(CloseCode.Abnormal, "connection error", {}), 1_000);
      }
    });
    this.timers.connect = timers.setTimeout(() => {
      this.drop(CloseCode.Abnormal, `no CONNECT_ACK within ${connectTimeout} ms`, {});
    }, connectTimeout);
  }

  /** Sends one message; returns its id. */
  send<T extends ClientMessageType>(type: T, payload: PayloadMap[T], correlationId?: string): string {
    const id = uuid();
    const message =
      correlationId === undefined ? { type, id, payload } : { type, id, payload, correlation_id: correlationId };
    this.write(JSON.stringify(message));
    return id;
  }

  /** Sends one encoded frame. */
  write(frame: string): void {
    try {
      this.socket.send(frame);
    } catch {
      // The socket is closing: its close event settles what was in flight.
    }
  }

  /** Closes the connection on the client's initiative and handles it as closed now. */
  drop(code: number, reason: string, override: DropOverride): void {
    if (this.closed) return;
    this.override = override;
    // Handled first: closing a connecting socket can fire `error` at once
    // (undici does), which must find the connection already closed.
    this.markClosed(code, reason, false);
    try {
      this.socket.close(CloseCode.Normal, closeReason(reason));
    } catch {
      // already closing
    }
  }

  /** Handles the close now (once: a close event that follows is ignored). */
  markClosed(code: number, reason: string, wasClean: boolean): void {
    if (this.closed) return;
    this.closed = true;
    for (const timer of Object.values(this.timers)) this.#timers.clearTimeout(timer);
    this.#owner.closed(this, code, reason, wasClean);
  }

  #onFrame(data: unknown): void {
    if (this.closed) return;
    if (typeof data !== "string") {
      this.#owner.malformed(this, new MalformedMessageError("a binary frame", ""));
      return;
    }
    const decoded = decodeServerMessage(data);
    if (!decoded.ok) {
      this.#owner.malformed(this, new MalformedMessageError(decoded.reason, data));
      return;
    }
    this.#owner.message(this, decoded.message);
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
