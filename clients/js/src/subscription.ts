/**
 * One channel the client keeps subscribed, across connections: its handlers,
 * where it stands on the current connection, and the callers waiting for its
 * confirmation. State only, no IO: `Subscriptions` sends what it says. What
 * the client tracks per subscription belongs here.
 */

import type { Waiter } from "./connection.js";
import { rethrowLater, type Timers } from "./env.js";
import { TimeoutError } from "./errors.js";
import type { ChannelHandler } from "./options.js";
import type { ChannelMessage } from "./protocol.js";

export class Subscription {
  readonly handlers: Set<ChannelHandler>;
  /** unsent: to send once ready; pending: sent, unanswered; active: confirmed on this connection. */
  status: "unsent" | "pending" | "active" = "unsent";
  /** The id of the SUBSCRIBE it went out in: replies are matched on channel and this id. */
  correlationId: string | null = null;
  /** Made while not connected: counts against the queue bound until confirmed. */
  queued: boolean;
  /** Confirmed once before: the next confirmation is a resubscription. */
  wasActive = false;
  readonly #waiters = new Set<Waiter<void>>();
  readonly #timers: Timers;

  constructor(
    readonly channel: string,
    handler: ChannelHandler | undefined,
    queued: boolean,
    timers: Timers,
  ) {
    this.handlers = new Set(handler === undefined ? [] : [handler]);
    this.queued = queued;
    this.#timers = timers;
  }

  /** Someone waits for the confirmation. */
  get waited(): boolean {
    return this.#waiters.size > 0;
  }

  /** The status after the connection closed: to send again on the next one. */
  reset(): void {
    this.status = "unsent";
    this.correlationId = null;
  }

  /**
   * A promise settled with the confirmation; after `timeout` ms it rejects
   * with `TimeoutError`, and `expired` is told (with the same error).
   */
  wait(timeout: number, expired: (error: TimeoutError) => void): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter<void> = {
        resolve,
        reject,
        timer: this.#timers.setTimeout(() => {
          this.#waiters.delete(waiter);
          const error = new TimeoutError(`subscribe ${this.channel}`, timeout);
          reject(error);
          expired(error);
        }, timeout),
      };
      this.#waiters.add(waiter);
    });
  }

  /** SUBSCRIBE_SUCCESS: active on this connection, the waiters resolve. Returns whether it was a resubscription. */
  confirm(): boolean {
    const resubscribed = this.wasActive;
    this.status = "active";
    this.queued = false;
    this.wasActive = true;
    for (const waiter of this.#waiters) {
      this.#timers.clearTimeout(waiter.timer);
      waiter.resolve();
    }
    this.#waiters.clear();
    return resubscribed;
  }

  /** The waiters reject with `error`. */
  reject(error: unknown): void {
    for (const waiter of this.#waiters) {
      this.#timers.clearTimeout(waiter.timer);
      waiter.reject(error);
    }
    this.#waiters.clear();
  }

  /** Hands an EVENT, DATA or NOTIFICATION to the handlers. */
  dispatch(message: ChannelMessage): void {
    for (const handler of [...this.handlers]) {
      try {
        handler(message);
      } catch (error) {
        rethrowLater(error);
      }
    }
  }
}
