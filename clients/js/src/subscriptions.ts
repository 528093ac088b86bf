/**
 * The channels a client keeps subscribed, across connections (each one a
 * `Subscription`), and the SUBSCRIBE / UNSUBSCRIBE exchanges that keep the
 * server in step: one SUBSCRIBE with every unsent channel once ready, replies
 * matched by channel and correlation id, channel messages handed to their
 * handlers.
 */

import type { Connection, Waiter } from "./connection.js";
import type { Emitter } from "./emitter.js";
import type { Timers } from "./env.js";
import { QueueFullError, SubscribeError, TimeoutError, type SwitchboardError } from "./errors.js";
import type { Lifecycle } from "./lifecycle.js";
import type { ChannelHandler, ClientEvents } from "./options.js";
import { isValidChannel, type ChannelMessage, type Message } from "./protocol.js";
import { Replies } from "./requests.js";
import { Subscription } from "./subscription.js";

export class Subscriptions {
  readonly #channels = new Map<string, Subscription>();
  readonly #unsubscribes: Replies<Waiter<void>>;
  readonly #timers: Timers;
  readonly #lifecycle: Lifecycle;
  readonly #events: Emitter<ClientEvents>;

  constructor(timers: Timers, lifecycle: Lifecycle, events: Emitter<ClientEvents>) {
    this.#timers = timers;
    this.#lifecycle = lifecycle;
    this.#events = events;
    this.#unsubscribes = new Replies(timers);
  }

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

  /** `SwitchboardClient.subscribe()`, with its timeout resolved. */
  subscribe(channel: string, handler: ChannelHandler | undefined, timeout: number): Promise<void> {
    if (!isValidChannel(channel)) {
      return Promise.reject(
        new SubscribeError(channel, "invalid_channel", "1–255 characters of A–Z a–z 0–9 : _ - . @ / ="),
      );
    }
    const kept = this.#channels.get(channel);
    if (kept !== undefined) {
      // Kept already: one more handler, and the same confirmation.
      if (handler !== undefined) kept.handlers.add(handler);
      if (kept.status === "active") return Promise.resolve();
      return this.#wait(kept, timeout);
    }
    const refusal = this.#lifecycle.refusal();
    if (refusal !== null) return Promise.reject(refusal);
    const conn = this.#lifecycle.room();
    if (conn instanceof QueueFullError) return Promise.reject(conn);
    const sub = new Subscription(channel, handler, conn === null, this.#timers);
    this.#channels.set(channel, sub);
    const promise = this.#wait(sub, timeout);
    if (conn !== null) this.#send(conn, [channel]);
    return promise;
  }

  /** `SwitchboardClient.unsubscribe()`, with its timeout resolved. */
  unsubscribe(channel: string, timeout: number): Promise<void> {
    const sub = this.#channels.get(channel);
    if (sub === undefined) return Promise.resolve();
    this.#channels.delete(channel);
    sub.reject(new SubscribeError(channel, "cancelled", "unsubscribe() was called first"));
    // Whether the server may hold it on the current connection (so an UNSUBSCRIBE is due).
    const held = sub.status !== "unsent";
    this.#events.emit("unsubscribed", { channel });
    const conn = this.#lifecycle.readyConnection;
    if (conn === null || !held) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const id = conn.send("UNSUBSCRIBE", { subscriptions: [channel] });
      this.#unsubscribes.add(id, {
        resolve,
        reject,
        timer: this.#timers.setTimeout(() => {
          this.#unsubscribes.delete(id);
          reject(new TimeoutError(`unsubscribe ${channel}`, timeout));
        }, timeout),
      });
    });
  }

  /** `conn` is ready: one SUBSCRIBE with the channels to restore and the queued ones. */
  flush(conn: Connection): void {
    const channels: string[] = [];
    for (const [channel, sub] of this.#channels) if (sub.status === "unsent") channels.push(channel);
    if (channels.length > 0) this.#send(conn, channels);
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
      this.#refused(sub, new SubscribeError(channel, code, reason));
      return;
    }
    const resubscribed = sub.confirm();
    this.#events.emit("subscribed", { channel, resubscribed });
  }

  /** UNSUBSCRIBE_ACK answering `correlation`. */
  unsubscribed(correlation: string): void {
    this.#unsubscribes.take(correlation)?.resolve();
  }

  /** An ERROR: rejects the UNSUBSCRIBE it answers; returns whether there was one. */
  unsubscribeError(correlation: string, error: SwitchboardError): boolean {
    const waiter = this.#unsubscribes.take(correlation);
    if (waiter === undefined) return false;
    waiter.reject(error);
    return true;
  }

  /** An ERROR answering the SUBSCRIBE `correlation` refuses its channels; returns whether it did. */
  subscribeError(correlation: string, code: string, message: string): boolean {
    let matched = false;
    for (const sub of this.#channels.values()) {
      if (sub.status === "pending" && sub.correlationId === correlation) {
        matched = true;
        this.#refused(sub, new SubscribeError(sub.channel, code, message));
      }
    }
    return matched;
  }

  /** Hands an EVENT, DATA or NOTIFICATION to its channel's handlers. */
  dispatch(message: ChannelMessage): void {
    const channel = message.payload.channel;
    if (channel === undefined) return;
    this.#channels.get(channel)?.dispatch(message);
  }

  /**
   * The connection closed: an UNSUBSCRIBE in flight resolves (the
   * subscription is gone with the connection), and every channel is to be sent
   * again on the next one.
   */
  lost(): void {
    for (const waiter of this.#unsubscribes.takeAll()) waiter.resolve();
    for (const sub of this.#channels.values()) sub.reset();
  }

  /**
   * The client stopped: waiting callers reject; channels never confirmed are
   * forgotten, confirmed ones are kept for the next `connect()`.
   */
  stop(error: unknown): void {
    for (const [channel, sub] of this.#channels) {
      if (!sub.waited) continue;
      sub.reject(error);
      if (!sub.wasActive) this.#channels.delete(channel);
    }
  }

  /** `channels` go out in one SUBSCRIBE on `conn`. */
  #send(conn: Connection, channels: readonly string[]): void {
    const id = conn.send("SUBSCRIBE", { subscriptions: channels });
    for (const channel of channels) {
      const sub = this.#channels.get(channel);
      if (sub === undefined) continue;
      sub.status = "pending";
      sub.correlationId = id;
    }
  }

  #wait(sub: Subscription, timeout: number): Promise<void> {
    return sub.wait(timeout, (error) => {
      // The caller was told it failed: do not keep (or restore) it.
      if (this.#channels.get(sub.channel) === sub && sub.status !== "active") {
        this.#channels.delete(sub.channel);
        sub.reject(error);
      }
    });
  }

  #refused(sub: Subscription, error: SubscribeError): void {
    this.#channels.delete(sub.channel);
    const waited = sub.waited;
    sub.reject(error);
    if (!waited) this.#events.emit("subscription_failed", error);
  }
}
