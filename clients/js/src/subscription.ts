/**
 * One channel the client keeps subscribed, across connections: its handlers
 * and callbacks, where it stands on the current connection, its position in
 * the channel's stream, and the callers waiting for its confirmation. State
 * only, no IO: `Subscriptions` sends what it says. What the client tracks per
 * subscription belongs here.
 */

import type { Waiter } from "./connection.js";
import { rethrowLater, type Timers } from "./env.js";
import { TimeoutError } from "./errors.js";
import type { ChannelHandler, GapEvent, PresenceEvent, SubscribedEvent } from "./options.js";
import {
  NotRecoveredReason,
  type ChannelMessage,
  type StreamPosition,
  type SubscribeSuccessPayload,
  type SubscriptionRequest,
} from "./protocol.js";

export type SubscribedListener = (event: SubscribedEvent) => void;
export type GapListener = (event: GapEvent) => void;
export type PresenceListener = (event: PresenceEvent) => void;

export class Subscription {
  readonly handlers: Set<ChannelHandler>;
  readonly onSubscribed = new Set<SubscribedListener>();
  readonly onGap = new Set<GapListener>();
  readonly onJoin = new Set<PresenceListener>();
  readonly onLeave = new Set<PresenceListener>();
  /** Asks for the channel's join and leave events, in every SUBSCRIBE it goes out in. */
  readonly joinLeave: boolean;
  /**
   * unsent: to send once ready; pending: sent, unanswered; active: confirmed
   * on this connection; retry: answered `unavailable`, a timer sends it again.
   */
  status: "unsent" | "pending" | "active" | "retry" = "unsent";
  /** The id of the SUBSCRIBE it went out in: replies are matched on channel and this id. */
  correlationId: string | null = null;
  /** Made while not connected: counts against the queue bound until confirmed. */
  queued: boolean;
  /** Confirmed once before: the next confirmation is a resubscription. */
  wasActive = false;
  /**
   * Where the subscriber is in the channel's stream: the epoch, and the offset
   * of the last publication received (or the stream's offset when subscribed).
   * Null on a channel without history (or before the first confirmation).
   */
  position: StreamPosition | null;
  /** `last` asked by `subscribe()`: sent until the first confirmation. */
  last: number | null;
  /** Answers `unavailable` since the last confirmation. */
  retries = 0;
  /** The timer of a pending retry (status `retry`). */
  retryTimer: unknown = null;
  /** The last confirmation, for a `subscribe()` of the channel while it is active. */
  confirmed: SubscribedEvent | null = null;
  /** The `recover` position the pending SUBSCRIBE carried, if any. */
  #sentRecover: StreamPosition | null = null;
  readonly #waiters = new Set<Waiter<SubscribedEvent>>();
  readonly #timers: Timers;

  constructor(
    readonly channel: string,
    handler: ChannelHandler | undefined,
    queued: boolean,
    timers: Timers,
    options: {
      readonly last?: number | undefined;
      readonly recover?: StreamPosition | undefined;
      readonly joinLeave?: boolean | undefined;
    } = {},
  ) {
    this.handlers = new Set(handler === undefined ? [] : [handler]);
    this.queued = queued;
    this.#timers = timers;
    this.last = options.last ?? null;
    this.joinLeave = options.joinLeave === true;
    this.position = options.recover === undefined ? null : { epoch: options.recover.epoch, offset: options.recover.offset };
  }

  /** Someone waits for the confirmation. */
  get waited(): boolean {
    return this.#waiters.size > 0;
  }

  /** Whether the server holds (or may hold) it on the current connection. */
  get held(): boolean {
    return this.status === "pending" || this.status === "active";
  }

  /**
   * Its entry in a SUBSCRIBE (remembered until the reply): `recover` from the
   * position when it has one, else `last` before the first confirmation,
   * with `join_leave` when it asks for join and leave events; else the plain
   * name.
   */
  request(): SubscriptionRequest {
    this.#sentRecover = this.position;
    const events = this.joinLeave ? { join_leave: true } : {};
    if (this.position !== null) {
      return { channel: this.channel, recover: { epoch: this.position.epoch, offset: this.position.offset }, ...events };
    }
    if (this.last !== null) return { channel: this.channel, last: this.last, ...events };
    return this.joinLeave ? { channel: this.channel, ...events } : this.channel;
  }

  /** The status after the connection closed: to send again on the next one. */
  reset(): void {
    this.cancelRetry();
    this.status = "unsent";
    this.correlationId = null;
    this.#sentRecover = null;
  }

  /** A pending retry is off. */
  cancelRetry(): void {
    if (this.retryTimer !== null) {
      this.#timers.clearTimeout(this.retryTimer);
      this.retryTimer = null;
    }
  }

  /**
   * A promise settled with the confirmation; after `timeout` ms it rejects
   * with `TimeoutError`, and `expired` is told (with the same error).
   */
  wait(timeout: number, expired: (error: TimeoutError) => void): Promise<SubscribedEvent> {
    return new Promise<SubscribedEvent>((resolve, reject) => {
      const waiter: Waiter<SubscribedEvent> = {
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

  /**
   * SUBSCRIBE_SUCCESS: active on this connection, the position taken from it,
   * the waiters resolve. Returns the `subscribed` event (callbacks not called yet).
   */
  confirm(payload: SubscribeSuccessPayload): SubscribedEvent {
    const resubscribed = this.wasActive;
    const sent = this.#sentRecover;
    this.#sentRecover = null;
    this.status = "active";
    this.queued = false;
    this.wasActive = true;
    this.last = null;
    this.retries = 0;

    const { epoch, offset } = payload;
    let recovered = payload.recovered;
    let reason = payload.reason;
    if (sent !== null || resubscribed) {
      // It asked to recover, or came back without a position to recover
      // from: either way the application may have missed something, and a
      // server that does not say so did not recover it.
      if (recovered === undefined) {
        recovered = false;
        reason = NotRecoveredReason.NoHistory;
      }
    }
    if (epoch !== undefined && offset !== undefined) {
      // Recovered: the replay from the position sent follows and moves it on.
      // Otherwise the subscription starts after the stream's offset.
      this.position = recovered === true && sent !== null && sent.epoch === epoch ? sent : { epoch, offset };
    } else {
      this.position = null;
    }
    const event: SubscribedEvent = {
      channel: this.channel,
      resubscribed,
      epoch: epoch ?? null,
      offset: offset ?? null,
      ...(recovered === undefined ? {} : { recovered }),
      ...(recovered === false && reason !== undefined ? { reason } : {}),
      ...(sent === null ? {} : { recover: { epoch: sent.epoch, offset: sent.offset } }),
      ...(payload.last === undefined ? {} : { last: payload.last }),
      ...(this.joinLeave && payload.join_leave === true ? { joinLeave: true } : {}),
    };
    this.confirmed = event;
    for (const waiter of this.#waiters) {
      this.#timers.clearTimeout(waiter.timer);
      waiter.resolve(event);
    }
    this.#waiters.clear();
    return event;
  }

  /** The waiters reject with `error`. */
  reject(error: unknown): void {
    for (const waiter of this.#waiters) {
      this.#timers.clearTimeout(waiter.timer);
      waiter.reject(error);
    }
    this.#waiters.clear();
  }

  /**
   * Hands an EVENT, DATA or NOTIFICATION to the handlers; one with an `offset`
   * moves the position on first (the server delivers a channel's publications
   * in offset order).
   */
  dispatch(message: ChannelMessage): void {
    if (message.offset !== undefined && this.position !== null) {
      this.position = { epoch: this.position.epoch, offset: message.offset };
    }
    for (const handler of [...this.handlers]) {
      try {
        handler(message);
      } catch (error) {
        rethrowLater(error);
      }
    }
  }

  /** A `switchboard.gap`: delivery goes on after `resume`; the callbacks are told. */
  gap(event: GapEvent): void {
    this.position = { epoch: event.resume.epoch, offset: event.resume.offset };
    for (const listener of [...this.onGap]) call(listener, event);
  }

  /** A `switchboard.join` (`joined`) or `switchboard.leave`: the callbacks are told. */
  presence(event: PresenceEvent, joined: boolean): void {
    for (const listener of [...(joined ? this.onJoin : this.onLeave)]) call(listener, event);
  }

  /** Tells the callbacks about a confirmation. */
  subscribed(event: SubscribedEvent): void {
    for (const listener of [...this.onSubscribed]) call(listener, event);
  }
}

function call<T>(listener: (event: T) => void, event: T): void {
  try {
    listener(event);
  } catch (error) {
    rethrowLater(error);
  }
}
