/**
 * What the client takes from its host (browser or Node), typed here so the
 * package compiles without the DOM or Node type libraries and its declarations
 * reference neither.
 */

import type { WebSocketConstructor } from "./socket.js";

/** Timers and a clock; injectable so tests can run on a fake clock. */
export interface Timers {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  /** Milliseconds since the Unix epoch. */
  now(): number;
}

interface HostGlobals {
  readonly WebSocket?: WebSocketConstructor;
  readonly crypto?: {
    randomUUID?(): string;
    getRandomValues?(array: Uint8Array): Uint8Array;
  };
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  queueMicrotask?(callback: () => void): void;
}

const host = globalThis as unknown as HostGlobals;

/** The host's timers and clock. */
export const systemTimers: Timers = {
  setTimeout: (callback, ms) => host.setTimeout(callback, ms),
  clearTimeout: (handle) => host.clearTimeout(handle),
  now: () => Date.now(),
};

/** The host's WebSocket constructor, if it has one (browsers, Node 22+). */
export function globalWebSocket(): WebSocketConstructor | undefined {
  return host.WebSocket;
}

/** A random UUID (v4) for message ids. */
export function uuid(): string {
  const crypto = host.crypto;
  if (crypto?.randomUUID !== undefined) {
    // Not available in insecure browser contexts (plain http:// off localhost).
    try {
      return crypto.randomUUID();
    } catch {
      // fall through
    }
  }
  const bytes = new Uint8Array(16);
  if (crypto?.getRandomValues !== undefined) {
    crypto.getRandomValues(bytes);
  } else {
    for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
  }
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x40;
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * Runs `callback` soon, outside the current call stack: used to rethrow an
 * exception from a user's event handler without breaking the client's own
 * bookkeeping (the host reports it as uncaught, like a DOM event handler's).
 */
export function rethrowLater(error: unknown): void {
  const raise = (): never => {
    throw error;
  };
  if (host.queueMicrotask !== undefined) host.queueMicrotask(raise);
  else host.setTimeout(raise, 0);
}
