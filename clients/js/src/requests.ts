/**
 * Correlated request/response tracking: `Replies` holds the callers waiting
 * for an answer, by the id of the message they sent (each wait bounded by a
 * timer); `Requests` is the ACTION → ACTION_RESULT / ERROR exchange on top of
 * it, with the requests queued while not connected.
 */

import { utf8Length, type Connection, type Waiter } from "./connection.js";
import { uuid, type Timers } from "./env.js";
import {
  ConnectionClosedError,
  MalformedMessageError,
  QueueFullError,
  SwitchboardError,
  TimeoutError,
} from "./errors.js";
import type { Lifecycle } from "./lifecycle.js";
import type { PayloadMap, Presence, PresenceStats } from "./protocol.js";
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

/** The replies that answer a request (besides ERROR). */
type Answer = "ACTION_RESULT" | "PRESENCE_RESULT";

/** A request, queued (`sent` false) or awaiting its reply / ERROR. */
interface RequestOp extends Waiter<unknown> {
  /** What it is, for errors: the action's name, or `presence public:lobby`. */
  readonly label: string;
  readonly frame: string;
  readonly answer: Answer;
  /** The reply's payload → the value the caller gets (or an error to reject with). */
  readonly settle: (payload: PayloadMap[Answer]) => unknown;
  /** Safe to send twice (a read): sent again after a reconnect instead of failing. */
  readonly resend: boolean;
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
    const payload: PayloadMap["ACTION"] = data === undefined ? { action } : { action, data };
    return this.#start<T>("ACTION", payload, {
      label: action,
      answer: "ACTION_RESULT",
      settle: (reply) => (reply as PayloadMap["ACTION_RESULT"]).data,
      resend: false,
      timeout,
    });
  }

  /**
   * `SwitchboardClient.presence()` (`members`) and `presenceStats()`, with
   * their timeout resolved. Reads: one in flight when the connection drops is
   * sent again on the next (after the resubscriptions), within its timeout.
   */
  presence(channel: string, members: true, timeout: number): Promise<Presence>;
  presence(channel: string, members: false, timeout: number): Promise<PresenceStats>;
  presence(channel: string, members: boolean, timeout: number): Promise<Presence | PresenceStats> {
    const label = `${members ? "presence" : "presence stats"} ${channel}`;
    return this.#start(members ? "PRESENCE" : "PRESENCE_STATS", { channel }, {
      label,
      answer: "PRESENCE_RESULT",
      settle: (reply) => {
        const { channel: answered, connections, users, members: list } = reply as PayloadMap["PRESENCE_RESULT"];
        if (!members) return { channel: answered, connections, users } satisfies PresenceStats;
        if (list === undefined) {
          return new MalformedMessageError(`PRESENCE_RESULT answering ${label} has no members`, JSON.stringify(reply));
        }
        return { channel: answered, connections, users, members: list } satisfies Presence;
      },
      resend: true,
      timeout,
    });
  }

  /** `conn` is ready: the queued requests go out, in the order they were made. */
  flush(conn: Connection): void {
    for (const [, op] of this.#ops.entries()) if (!op.sent) this.#send(conn, op);
  }

  /**
   * ACTION_RESULT or PRESENCE_RESULT answering `correlation`: resolves the
   * request it answers (a reply of the wrong kind rejects it).
   */
  reply<A extends Answer>(correlation: string, type: A, payload: PayloadMap[A]): void {
    const op = this.#ops.take(correlation);
    if (op === undefined) return;
    if (op.answer !== type) {
      op.reject(new MalformedMessageError(`${type} answering ${op.label}`, JSON.stringify(payload)));
      return;
    }
    const value = op.settle(payload);
    if (value instanceof SwitchboardError) op.reject(value);
    else op.resolve(value);
  }

  /** An ERROR: rejects the request it answers; returns whether there was one. */
  error(correlation: string, error: SwitchboardError): boolean {
    const op = this.#ops.take(correlation);
    if (op === undefined) return false;
    op.reject(error);
    return true;
  }

  /**
   * The connection closed with `code` (`why`): requests in flight reject (they
   * may have run) and are not resent; reads (presence) wait for the next
   * connection instead.
   */
  lost(code: number, why: string): void {
    for (const [id, op] of this.#ops.entries()) {
      if (!op.sent) continue;
      if (op.resend) {
        op.sent = false;
        continue;
      }
      this.#ops.take(id);
      op.reject(
        new ConnectionClosedError(
          code,
          why,
          `connection closed (${code}) before ${op.label} was answered; it may or may not have run`,
        ),
      );
    }
  }

  /** The client stopped: every request left (queued ones) rejects with `error`. */
  stop(error: SwitchboardError): void {
    for (const op of this.#ops.takeAll()) op.reject(error);
  }

  /** Queues or sends one request of `type`. */
  #start<T>(
    type: "ACTION" | "PRESENCE" | "PRESENCE_STATS",
    payload: PayloadMap["ACTION" | "PRESENCE" | "PRESENCE_STATS"],
    what: Pick<RequestOp, "label" | "answer" | "settle" | "resend"> & { readonly timeout: number },
  ): Promise<T> {
    const refusal = this.#lifecycle.refusal();
    if (refusal !== null) return Promise.reject(refusal);
    const id = uuid();
    const frame = JSON.stringify({ type, id, payload });
    if (utf8Length(frame) > this.#s.maxMessageSize) {
      return Promise.reject(
        new SwitchboardError(
          `${type === "ACTION" ? "request" : "ask for"} ${what.label}: ${utf8Length(frame)} bytes is over the ${this.#s.maxMessageSize}-byte message limit`,
        ),
      );
    }
    const conn = this.#lifecycle.room();
    if (conn instanceof QueueFullError) return Promise.reject(conn);
    const { timeout, ...rest } = what;
    return new Promise<T>((resolve, reject) => {
      const op: RequestOp = {
        ...rest,
        frame,
        sent: false,
        resolve: resolve as (value: unknown) => void,
        reject,
        timer: this.#timers.setTimeout(() => {
          this.#ops.delete(id);
          reject(new TimeoutError(type === "ACTION" ? `request ${what.label}` : what.label, timeout));
        }, timeout),
      };
      this.#ops.add(id, op);
      if (conn !== null) this.#send(conn, op);
    });
  }

  #send(conn: Connection, op: RequestOp): void {
    op.sent = true;
    conn.write(op.frame);
  }
}
