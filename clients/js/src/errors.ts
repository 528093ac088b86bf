/**
 * Errors the client rejects promises with or emits. Each says what happened
 * and carries what a caller needs to decide what to do next.
 */

import type { ErrorCode } from "./protocol.js";

/** Base class of every error this package produces. */
export class SwitchboardError extends Error {
  override readonly name: string = "SwitchboardError";
}

/**
 * The server answered with `ERROR` (e.g. `unknown_action`, `action_failed`,
 * `not_authenticated`). `code` is the protocol's error code.
 */
export class ServerError extends SwitchboardError {
  override readonly name = "ServerError";
  constructor(
    readonly code: ErrorCode | (string & {}),
    message: string,
    /** The `id` of the request it answers, when it answers one. */
    readonly correlationId: string | null = null,
  ) {
    super(message);
  }
}

/**
 * The server refused a subscription (`SUBSCRIBE_FAILURE`), or the name or
 * options are invalid. With code `unavailable` the client subscribes again
 * by itself: `retryDelay` says in how many ms (null: it gave up).
 */
export class SubscribeError extends SwitchboardError {
  override readonly name = "SubscribeError";
  constructor(
    readonly channel: string,
    readonly code: ErrorCode | (string & {}),
    readonly reason: string,
    /** ms until the client sends the subscription again; null when it does not. */
    readonly retryDelay: number | null = null,
  ) {
    super(
      `subscribe to ${channel} failed: ${code}: ${reason}` +
        (retryDelay === null ? "" : ` (retrying in ${retryDelay} ms)`),
    );
  }
}

/**
 * Authentication failed: the server answered `AUTHENTICATE_FAILURE`, or
 * required authentication while no token was configured.
 */
export class AuthenticationError extends SwitchboardError {
  override readonly name = "AuthenticationError";
  constructor(
    readonly reason: string,
    /** Attempts the server still allows on this connection (0 when unknown). */
    readonly attemptsLeft: number = 0,
  ) {
    super(`authentication failed: ${reason}`);
  }
}

/** The token callback threw or returned something other than a non-empty string. */
export class TokenProviderError extends SwitchboardError {
  override readonly name = "TokenProviderError";
  constructor(cause: unknown) {
    super(`the token provider failed: ${cause instanceof Error ? cause.message : String(cause)}`, {
      cause,
    });
  }
}

/** No answer within the timeout. */
export class TimeoutError extends SwitchboardError {
  override readonly name = "TimeoutError";
  constructor(
    readonly operation: string,
    readonly timeoutMs: number,
  ) {
    super(`${operation}: no answer within ${timeoutMs} ms`);
  }
}

/** The disconnected-send queue is full; retry once connected. */
export class QueueFullError extends SwitchboardError {
  override readonly name = "QueueFullError";
  constructor(readonly limit: number) {
    super(`not connected and ${limit} operations are already queued`);
  }
}

/**
 * The connection closed while the operation was in flight or queued. A
 * request that was already sent may or may not have run on the server.
 */
export class ConnectionClosedError extends SwitchboardError {
  override readonly name = "ConnectionClosedError";
  constructor(
    readonly code: number,
    readonly reason: string,
    message?: string,
  ) {
    super(message ?? `connection closed (${code}${reason === "" ? "" : ` ${reason}`})`);
  }
}

/**
 * The client is stopped (never started, `disconnect()`ed, or gave up after a
 * terminal close): call `connect()` first.
 */
export class NotConnectedError extends SwitchboardError {
  override readonly name = "NotConnectedError";
  constructor(message = "the client is not connected; call connect() first") {
    super(message);
  }
}

/** The server sent something this client cannot read (it is ignored). */
export class MalformedMessageError extends SwitchboardError {
  override readonly name = "MalformedMessageError";
  constructor(
    readonly reason: string,
    readonly raw: string,
  ) {
    super(`malformed message from the server: ${reason}`);
  }
}
