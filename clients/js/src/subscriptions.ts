/**
 * The channels a client keeps subscribed, across connections: each one's
 * handlers, where it stands on the current connection, and the callers
 * waiting for its confirmation. No IO: the client sends what this says.
 */

import type { Timers } from "./env.js";
import { rethrowLater } from "./env.js";
import { SubscribeError, TimeoutError } from "./errors.js";
import type { ChannelHandler } from "./options.js";
import type { ChannelMessage, Message } from "./protocol.js";

interface Waiter {
  resolve(): void;
  reject(error: unknown): void;
  timer: unknown;
}

interface Subscription {
  readonly handlers: Set<ChannelHandler>;
  /** unsent: to send once ready; pending: sent, unanswered; active: confirmed on this connection. */
  status: "unsent" | "pending" | "active";
  /** The id of the SUBSCRIBE it went out in: replies are matched on channel and this id. */
  correlationId: string | null;
  /** Made while not connected: counts against the queue bound until confirmed. */
  queued: boolean;
  /** Confirmed once before: the next confirmation is a resubscription. */
  wasActive: boolean;
  readonly waiters: Set<Waiter>;
}

export interface SubscriptionEvents {
  subscribed(channel: string, resubscribed: boolean): void;
  /** A refusal nobody waits for (a resubscription after a reconnect). */
  lost(error: SubscribeError): void;
}

export class Subscriptions {
  readonly #channels = new Map<string, Subscription>();

  constructor(
    private readonly timers: Timers,
    private readonly events: SubscriptionEvents,
  ) {}

  /** The channels kept, confirmed or not. */
  channels(): string[] {
    return [...this.#channels.keys()];
  }

  /** Subscribes made while not connected and not sent yet. */
  queued(): number {
    let n = 0;
    for (const sub of this.#channels.values()) if (sub.queued && sub.status === "unsent") n++;
    return n;
  }

  has(channel: string): boolean {
    return this.#channels.has(channel);
  }

  /**
   * Adds `handler` to a kept channel. Returns null when the channel is not
   * kept; otherwise a promise settled with its confirmation (at once if
   * already active).
   */
  join(channel: string, handler: ChannelHandler | undefined, timeout: number): Promise<void> | null {
    const sub = this.#channels.get(channel);
    if (sub === undefined) return null;
    if (handler !== undefined) sub.handlers.add(handler);
    if (sub.status === "active") return Promise.resolve();
    return this.#wait(channel, sub, timeout);
  }

  /** Keeps a new channel (not sent yet); the promise settles with its confirmation. */
  add(channel: string, handler: ChannelHandler | undefined, queued: boolean, timeout: number): Promise<void> {
    const sub: Subscription = {
      handlers: new Set(handler === undefined ? [] : [handler]),
      status: "unsent",
      correlationId: null,
      queued,
      wasActive: false,
      waiters: new Set(),
    };
    this.#channels.set(channel, sub);
    return this.#wait(channel, sub, timeout);
  }

  /**
   * Forgets `channel`; its waiters reject. Returns whether the server may hold
   * it on the current connection (so an UNSUBSCRIBE is due).
   */
  remove(channel: string): boolean {
    const sub = this.#channels.get(channel);
    if (sub === undefined) return false;
    this.#channels.delete(channel);
    this.#reject(sub, new SubscribeError(channel, "cancelled", "unsubscribe() was called first"));
    return sub.status !== "unsent";
  }

  /** Channels to send in the next SUBSCRIBE (restored and queued ones). */
  unsent(): string[] {
    const out: string[] = [];
    for (const [channel, sub] of this.#channels) if (sub.status === "unsent") out.push(channel);
    return out;
  }

  /** `channels` went out in the SUBSCRIBE whose id is `id`. */
  sent(channels: readonly string[], id: string): void {
    for (const channel of channels) {
      const sub = this.#channels.get(channel);
      if (sub === undefined) continue;
      sub.status = "pending";
      sub.correlationId = id;
    }
  }

  /** The connection closed: everything is to be sent again on the next one. */
  connectionLost(): void {
    for (const sub of this.#channels.values()) {
      sub.status = "unsent";
      sub.correlationId = null;
    }
  }

  /** SUBSCRIBE_SUCCESS / SUBSCRIBE_FAILURE, matched by channel and correlation_id. */
  reply(message: Message<"SUBSCRIBE_SUCCESS"> | Message<"SUBSCRIBE_FAILURE">): void {
    const channel = message.payload.channel;
    const sub = this.#channels.get(channel);
    if (sub === undefined || sub.status !== "pending") return;
    // A reply to an older SUBSCRIBE (unsubscribed and subscribed again since) is stale.
    const correlation = message.correlation_id ?? null;
    if (correlation !== null && correlation !== sub.correlationId) return;
    if (message.type === "SUBSCRIBE_FAILURE") {
      const { code, reason } = message.payload;
      this.#refused(channel, sub, new SubscribeError(channel, code, reason));
      return;
    }
    const resubscribed = sub.wasActive;
    sub.status = "active";
    sub.queued = false;
    sub.wasActive = true;
    for (const waiter of sub.waiters) {
      this.timers.clearTimeout(waiter.timer);
      waiter.resolve();
    }
    sub.waiters.clear();
    this.events.subscribed(channel, resubscribed);
  }

  /** An ERROR answering the SUBSCRIBE `correlation` refuses its channels; returns whether it did. */
  errorReply(correlation: string, code: string, message: string): boolean {
    let matched = false;
    for (const [channel, sub] of this.#channels) {
      if (sub.status === "pending" && sub.correlationId === correlation) {
        matched = true;
        this.#refused(channel, sub, new SubscribeError(channel, code, message));
      }
    }
    return matched;
  }

  /** Hands an EVENT, DATA or NOTIFICATION to its channel's handlers. */
  dispatch(message: ChannelMessage): void {
    const channel = message.payload.channel;
    if (channel === undefined) return;
    const sub = this.#channels.get(channel);
    if (sub === undefined) return;
    for (const handler of [...sub.handlers]) {
      try {
        handler(message);
      } catch (error) {
        rethrowLater(error);
      }
    }
  }

  /**
   * The client stopped: waiting callers reject; channels never confirmed are
   * forgotten, confirmed ones are kept for the next `connect()`.
   */
  stop(error: unknown): void {
    for (const [channel, sub] of this.#channels) {
      if (sub.waiters.size === 0) continue;
      this.#reject(sub, error);
      if (!sub.wasActive) this.#channels.delete(channel);
    }
  }

  #wait(channel: string, sub: Subscription, timeout: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        timer: this.timers.setTimeout(() => {
          sub.waiters.delete(waiter);
          const error = new TimeoutError(`subscribe ${channel}`, timeout);
          reject(error);
          // The caller was told it failed: do not keep (or restore) it.
          if (this.#channels.get(channel) === sub && sub.status !== "active") {
            this.#channels.delete(channel);
            this.#reject(sub, error);
          }
        }, timeout),
      };
      sub.waiters.add(waiter);
    });
  }

  #refused(channel: string, sub: Subscription, error: SubscribeError): void {
    this.#channels.delete(channel);
    const waited = sub.waiters.size > 0;
    this.#reject(sub, error);
    if (!waited) this.events.lost(error);
  }

  #reject(sub: Subscription, error: unknown): void {
    for (const waiter of sub.waiters) {
      this.timers.clearTimeout(waiter.timer);
      waiter.reject(error);
    }
    sub.waiters.clear();
  }
}
