/**
 * Correlated request/response tracking: `Replies` holds the callers waiting
 * for an answer, by the id of the message they sent (each wait bounded by a
 * timer); `Requests` is the ACTION → ACTION_RESULT / ERROR exchange on top of
 * it, with the requests queued while not connected.
 */

import { utf8Length, type Connection, type Waiter } from "./connection.js";
import { uuid, type Timers } from "./env.js";
import { ConnectionClosedError, QueueFullError, SwitchboardError, TimeoutError } from "./errors.js";
import type { Lifecycle } from "./lifecycle.js";
import type { PayloadMap } from "./protocol.js";
import type { Settings } from "./settings.js";

/** Callers waiting for replies, by the id of the message each one waits on. */
export class Replies<W extends Waiter<never>> {
  readonly #waiting = new Map<string, W>();
  readonly #timers: Timers;

  constructor(timers: Timers) {
    this.#timers = timers;
  }

  /** Waits for the reply to `id`; `waiter.timer` bounds it (its callback calls `delete(id)`). */
  add(id: string, waiter: W): void {
    this.#waiting.set(id, waiter);
  }

  /** Forgets `id` without stopping its timer (the timer fired). */
  delete(id: string): void {
    this.#waiting.delete(id);
  }

  /** Takes the waiter for `id` out and stops its timer. */
  take(id: string): W | undefined {
    const waiter = this.#waiting.get(id);
    if (waiter === undefined) return undefined;
    this.#waiting.delete(id);
    this.#timers.clearTimeout(waiter.timer);
    return waiter;
  }

  /** Takes every waiter out (timers stopped), oldest first. */
  takeAll(): W[] {
    const all: W[] = [];
    for (const id of [...this.#waiting.keys()]) {
      const waiter = this.take(id);
      if (waiter !== undefined) all.push(waiter);
    }
    return all;
  }

  /** The waiters by id, oldest first. */
  entries(): IterableIterator<[string, W]> {
    return this.#waiting.entries();
  }
}

/** An ACTION, queued (`sent` false) or awaiting its ACTION_RESULT / ERROR. */
interface RequestOp extends Waiter<unknown> {
  readonly action: string;
  readonly frame: string;
  sent: boolean;
}

export class Requests {
  readonly #s: Settings;
  readonly #timers: Timers;
  readonly #lifecycle: Lifecycle;
  readonly #ops: Replies<RequestOp>;

  constructor(s: Settings, lifecycle: Lifecycle) {
    this.#s = s;
    this.#timers = s.timers;
    this.#lifecycle = lifecycle;
    this.#ops = new Replies(s.timers);
  }

  /** Requests waiting for a connection. */
  queued(): number {
    let n = 0;
    for (const [, op] of this.#ops.entries()) if (!op.sent) n++;
    return n;
  }

  /** `SwitchboardClient.request()`, with its timeout resolved. */
  request<T>(action: string, data: unknown, timeout: number): Promise<T> {
    const refusal = this.#lifecycle.refusal();
    if (refusal !== null) return Promise.reject(refusal);
    const id = uuid();
    const payload: PayloadMap["ACTION"] = data === undefined ? { action } : { action, data };
    const frame = JSON.stringify({ type: "ACTION", id, payload });
    if (utf8Length(frame) > this.#s.maxMessageSize) {
      return Promise.reject(
        new SwitchboardError(
          `request ${action}: ${utf8Length(frame)} bytes is over the ${this.#s.maxMessageSize}-byte message limit`,
        ),
      );
    }
    const conn = this.#lifecycle.room();
    if (conn instanceof QueueFullError) return Promise.reject(conn);
    return new Promise<T>((resolve, reject) => {
      const op: RequestOp = {
        action,
        frame,
        sent: false,
        resolve: resolve as (value: unknown) => void,
        reject,
        timer: this.#timers.setTimeout(() => {
          this.#ops.delete(id);
          reject(new TimeoutError(`request ${action}`, timeout));
        }, timeout),
      };
      this.#ops.add(id, op);
      if (conn !== null) this.#send(conn, op);
    });
  }

  /** `conn` is ready: the queued requests go out, in the order they were made. */
  flush(conn: Connection): void {
    for (const [, op] of this.#ops.entries()) if (!op.sent) this.#send(conn, op);
  }

  /** ACTION_RESULT answering `correlation`. */
  result(correlation: string, data: unknown): void {
    this.#ops.take(correlation)?.resolve(data);
  }

  /** An ERROR: rejects the request it answers; returns whether there was one. */
  error(correlation: string, error: SwitchboardError): boolean {
    const op = this.#ops.take(correlation);
    if (op === undefined) return false;
    op.reject(error);
    return true;
  }

  /** The connection closed with `code` (`why`): requests in flight reject (they may have run) and are not resent. */
  lost(code: number, why: string): void {
    for (const [id, op] of this.#ops.entries()) {
      if (!op.sent) continue;
      this.#ops.take(id);
      op.reject(
        new ConnectionClosedError(
          code,
          why,
          `connection closed (${code}) before ${op.action} was answered; it may or may not have run`,
        ),
      );
    }
  }

  /** The client stopped: every request left (queued ones) rejects with `error`. */
  stop(error: SwitchboardError): void {
    for (const op of this.#ops.takeAll()) op.reject(error);
  }

  #send(conn: Connection, op: RequestOp): void {
    op.sent = true;
    conn.write(op.frame);
  }
}
