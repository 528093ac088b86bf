/**
 * The WebSocket the client drives: the subset of the WHATWG `WebSocket` it
 * uses. The browser's `WebSocket`, Node 22's global (Node 20 with
 * `--experimental-websocket`) and the `ws` package's class all fit, as does a
 * fake in tests.
 */

/** The close event's fields the client reads. */
export interface CloseEventLike {
  readonly code: number;
  readonly reason: string;
  readonly wasClean: boolean;
}

/** The message event's field the client reads. */
export interface MessageEventLike {
  readonly data: unknown;
}

export interface WebSocketLike {
  /** 0 connecting, 1 open, 2 closing, 3 closed. */
  readonly readyState: number;
  /** The subprotocol the server selected ("" for none). */
  readonly protocol: string;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: "open", listener: (event: unknown) => void): void;
  addEventListener(type: "message", listener: (event: MessageEventLike) => void): void;
  addEventListener(type: "close", listener: (event: CloseEventLike) => void): void;
  addEventListener(type: "error", listener: (event: unknown) => void): void;
}

/** `new WebSocket(url, protocols)`. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

export const OPEN = 1;
