/**
 * A fake WebSocket for unit tests, injected through `options.WebSocket`. Each
 * instance records what the client sent; the test plays the server.
 */

import type { CloseEventLike, MessageEventLike, WebSocketLike } from "../src/index.js";

type Listeners = {
  open: ((event: unknown) => void)[];
  message: ((event: MessageEventLike) => void)[];
  close: ((event: CloseEventLike) => void)[];
  error: ((event: unknown) => void)[];
};

/** A SUBSCRIBE entry with options, as the client sent it. */
export interface SentSubscription {
  readonly channel: string;
  readonly recover?: { readonly epoch: string; readonly offset: number };
  readonly last?: number;
  readonly join_leave?: boolean;
}

/** The channel of a SUBSCRIBE entry. */
export function channelOf(entry: string | SentSubscription): string {
  return typeof entry === "string" ? entry : entry.channel;
}

/** A message as the client sent it. */
export interface Sent {
  readonly type: string;
  readonly id: string;
  readonly payload: Record<string, unknown> & {
    readonly subscriptions?: (string | SentSubscription)[];
    readonly action?: string;
    readonly data?: unknown;
    readonly auth?: { readonly token: string };
    readonly channel?: string;
    readonly client?: { readonly name?: string; readonly version?: string };
  };
  readonly correlation_id?: string;
}

export class FakeSocket implements WebSocketLike {
  /** Every socket created, oldest first. */
  static readonly all: FakeSocket[] = [];

  static reset(): void {
    FakeSocket.all.length = 0;
  }

  static last(): FakeSocket {
    const socket = FakeSocket.all.at(-1);
    if (socket === undefined) throw new Error("no socket was created");
    return socket;
  }

  readyState = 0;
  protocol = "";
  readonly sent: Sent[] = [];
  /** The close the client asked for, if it did. */
  closedByClient: { code: number | undefined; reason: string | undefined } | null = null;
  readonly #listeners: Listeners = { open: [], message: [], close: [], error: [] };

  constructor(
    readonly url: string,
    readonly protocols?: string | string[],
  ) {
    FakeSocket.all.push(this);
  }

  addEventListener(type: "open", listener: (event: unknown) => void): void;
  addEventListener(type: "message", listener: (event: MessageEventLike) => void): void;
  addEventListener(type: "close", listener: (event: CloseEventLike) => void): void;
  addEventListener(type: "error", listener: (event: unknown) => void): void;
  addEventListener(type: keyof Listeners, listener: (event: never) => void): void {
    (this.#listeners[type] as ((event: never) => void)[]).push(listener);
  }

  send(data: string): void {
    if (this.readyState !== 1) throw new Error(`send on a socket in state ${this.readyState}`);
    this.sent.push(JSON.parse(data) as Sent);
  }

  /** Like undici: closing a socket that is still connecting fires `error` at once. */
  static errorOnCloseWhileConnecting = false;

  close(code?: number, reason?: string): void {
    this.closedByClient = { code, reason };
    const wasConnecting = this.readyState === 0;
    if (this.readyState < 2) this.readyState = 2;
    if (wasConnecting && FakeSocket.errorOnCloseWhileConnecting) this.fail();
  }

  // --- the test plays the server ---

  /** The handshake succeeds. */
  open(protocol = "switchboard.v1"): void {
    this.readyState = 1;
    this.protocol = protocol;
    for (const l of this.#listeners.open) l({});
  }

  /** A server message (an object is stringified; ids and timestamps default). */
  receive(message: Record<string, unknown> | string): void {
    const text =
      typeof message === "string"
        ? message
        : JSON.stringify({ id: `s-${Math.random().toString(16).slice(2)}`, payload: {}, ...message });
    for (const l of this.#listeners.message) l({ data: text });
  }

  /** A binary frame from the server. */
  receiveBinary(data: ArrayBuffer = new ArrayBuffer(4)): void {
    for (const l of this.#listeners.message) l({ data });
  }

  /** The connection closes with `code` (as seen by the client). */
  serverClose(code: number, reason = "", wasClean = code !== 1006): void {
    this.readyState = 3;
    for (const l of this.#listeners.close) l({ code, reason, wasClean });
  }

  /** An `error` event (as browsers fire before a 1006 close). */
  fail(): void {
    for (const l of this.#listeners.error) l({});
  }

  /** What the client sent, of one type. */
  sentOf(type: string): Sent[] {
    return this.sent.filter((m) => m.type === type);
  }

  lastSent(type: string): Sent {
    const message = this.sentOf(type).at(-1);
    if (message === undefined) throw new Error(`the client sent no ${type}; sent: ${this.sent.map((m) => m.type).join(", ")}`);
    return message;
  }
}
