/**
 * The channels a client keeps subscribed, across connections (each one a
 * `Subscription`), and the SUBSCRIBE / UNSUBSCRIBE exchanges that keep the
 * server in step: one SUBSCRIBE with every unsent channel once ready (each
 * recovering from its position), replies matched by channel and correlation
 * id, `unavailable` answers retried with backoff, channel messages, gap
 * events and join / leave events handed to their subscription.
 */

import { backoffDelay } from "./backoff.js";
import { decodeGap, decodeMember } from "./codec.js";
import type { Connection, Waiter } from "./connection.js";
import type { Emitter } from "./emitter.js";
import type { Timers } from "./env.js";
import {
  MalformedMessageError,
  QueueFullError,
  SubscribeError,
  TimeoutError,
  type SwitchboardError,
} from "./errors.js";
import type { Lifecycle } from "./lifecycle.js";
import type { ChannelHandler, ClientEvents, SubscribedEvent, SubscribeOptions } from "./options.js";
import {
  ErrorCode,
  GAP_EVENT,
  isValidChannel,
  JOIN_EVENT,
  LEAVE_EVENT,
  type ChannelMessage,
  type Message,
  type StreamPosition,
} from "./protocol.js";
import { Replies } from "./requests.js";
import type { Settings } from "./settings.js";
import { Subscription } from "./subscription.js";

/** The longest epoch the server takes in `recover`. */
const MAX_EPOCH_LENGTH = 64;

export class Subscriptions {
  readonly #channels = new Map<string, Subscription>();
  readonly #unsubscribes: Replies<Waiter<void>>;
  readonly #s: Settings;
  readonly #timers: Timers;
  readonly #lifecycle: Lifecycle;
  readonly #events: Emitter<ClientEvents>;

  constructor(s: Settings, lifecycle: Lifecycle, events: Emitter<ClientEvents>) {
    this.#s = s;
    this.#timers = s.timers;
    this.#lifecycle = lifecycle;
    this.#events = events;
    this.#unsubscribes = new Replies(s.timers);
  }

  /** The channels kept, confirmed or not. */
  channels(): string[] {
    return [...this.#channels.keys()];
  }

  /** The position of `channel`'s subscription in its stream, if it has one. */
  position(channel: string): StreamPosition | null {
    const position = this.#channels.get(channel)?.position ?? null;
    return position === null ? null : { epoch: position.epoch, offset: position.offset };
  }

  /** Subscribes made while not connected and not sent yet. */
  queued(): number {
    let n = 0;
    for (const sub of this.#channels.values()) if (sub.queued && sub.status === "unsent") n++;
    return n;
  }

  /** `SwitchboardClient.subscribe()`, with its timeout resolved. */
  subscribe(
    channel: string,
    handler: ChannelHandler | undefined,
    options: SubscribeOptions,
    timeout: number,
  ): Promise<SubscribedEvent> {
    if (!isValidChannel(channel)) {
      return Promise.reject(
        new SubscribeError(channel, ErrorCode.InvalidChannel, "1–255 characters of A–Z a–z 0–9 : _ - . @ / ="),
      );
    }
    const kept = this.#channels.get(channel);
    if (kept !== undefined) {
      // The server ignores `join_leave` for a channel the connection is
      // subscribed to already: it would never come.
      if (options.joinLeave === true && !kept.joinLeave) {
        return Promise.reject(
          new SubscribeError(
            channel,
            ErrorCode.InvalidMessage,
            "subscribed already without joinLeave: unsubscribe() first to subscribe with it",
          ),
        );
      }
      // Kept already: one more handler, and the same confirmation.
      this.#listen(kept, handler, options);
      if (kept.status === "active" && kept.confirmed !== null) return Promise.resolve(kept.confirmed);
      return this.#wait(kept, timeout);
    }
    const invalid = invalidOptions(channel, options);
    if (invalid !== null) return Promise.reject(invalid);
    const refusal = this.#lifecycle.refusal();
    if (refusal !== null) return Promise.reject(refusal);
    const conn = this.#lifecycle.room();
    if (conn instanceof QueueFullError) return Promise.reject(conn);
    const sub = new Subscription(channel, undefined, conn === null, this.#timers, options);
    this.#listen(sub, handler, options);
    this.#channels.set(channel, sub);
    const promise = this.#wait(sub, timeout);
    if (conn !== null) this.#send(conn, [sub]);
    return promise;
  }

  /** `SwitchboardClient.unsubscribe()`, with its timeout resolved. */
  unsubscribe(channel: string, timeout: number): Promise<void> {
    const sub = this.#channels.get(channel);
    if (sub === undefined) return Promise.resolve();
    this.#channels.delete(channel);
    sub.cancelRetry();
    sub.reject(new SubscribeError(channel, "cancelled", "unsubscribe() was called first"));
    // Whether the server may hold it on the current connection (so an UNSUBSCRIBE is due).
    const held = sub.held;
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
    const subs = [...this.#channels.values()].filter((sub) => sub.status === "unsent");
    if (subs.length > 0) this.#send(conn, subs);
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
      if (code === ErrorCode.Unavailable) this.#unavailable(sub, reason);
      else this.#refused(sub, new SubscribeError(channel, code, reason));
      return;
    }
    const event = sub.confirm(message.payload);
    sub.subscribed(event);
    this.#events.emit("subscribed", event);
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
    for (const sub of [...this.#channels.values()]) {
      if (sub.status === "pending" && sub.correlationId === correlation) {
        matched = true;
        this.#refused(sub, new SubscribeError(sub.channel, code, message));
      }
    }
    return matched;
  }

  /**
   * Hands an EVENT, DATA or NOTIFICATION to its channel's subscription; a
   * `switchboard.gap` event becomes a `gap` event (and moves the position on),
   * `switchboard.join` / `switchboard.leave` become `join` / `leave` events,
   * instead of reaching the handlers.
   */
  dispatch(message: ChannelMessage): void {
    const channel = message.payload.channel;
    if (channel === undefined) return;
    const sub = this.#channels.get(channel);
    if (sub === undefined) return;
    if (message.type === "EVENT" && (message.payload.event === JOIN_EVENT || message.payload.event === LEAVE_EVENT)) {
      const name = message.payload.event;
      const member = decodeMember(message.payload.data);
      if (member === null) {
        const error = new MalformedMessageError(`${name} on ${channel}: data is not a member`, JSON.stringify(message));
        this.#events.emit("error", error);
        return;
      }
      const event = { channel, member };
      const joined = name === JOIN_EVENT;
      sub.presence(event, joined);
      this.#events.emit(joined ? "join" : "leave", event);
      return;
    }
    if (message.type === "EVENT" && message.payload.event === GAP_EVENT) {
      const gap = decodeGap(message.payload.data);
      if (gap === null) {
        const error = new MalformedMessageError(`${GAP_EVENT} on ${channel}: data is not a gap`, JSON.stringify(message));
        this.#events.emit("error", error);
        return;
      }
      const event = { channel, ...gap };
      sub.gap(event);
      this.#events.emit("gap", event);
      return;
    }
    sub.dispatch(message);
  }

  /**
   * The connection closed: an UNSUBSCRIBE in flight resolves (the
   * subscription is gone with the connection), and every channel is to be sent
   * again on the next one (recovering from its position).
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
      sub.reset();
      if (!sub.waited) continue;
      sub.reject(error);
      if (!sub.wasActive) this.#channels.delete(channel);
    }
  }

  /**
   * `subs` go out on `conn`: together in one SUBSCRIBE, except those asking
   * for `last`, each in its own (a `last` the server refuses answers ERROR
   * for its whole SUBSCRIBE; a `last` past its recovery limit is lowered).
   */
  #send(conn: Connection, subs: readonly Subscription[]): void {
    const together: Subscription[] = [];
    for (const sub of subs) {
      if (sub.position === null && sub.last !== null) this.#sendOne(conn, [sub]);
      else together.push(sub);
    }
    if (together.length > 0) this.#sendOne(conn, together);
  }

  #sendOne(conn: Connection, subs: readonly Subscription[]): void {
    const id = conn.send("SUBSCRIBE", { subscriptions: subs.map((sub) => sub.request()) });
    for (const sub of subs) {
      sub.status = "pending";
      sub.correlationId = id;
    }
  }

  #listen(sub: Subscription, handler: ChannelHandler | undefined, options: SubscribeOptions): void {
    if (handler !== undefined) sub.handlers.add(handler);
    if (options.onSubscribed !== undefined) sub.onSubscribed.add(options.onSubscribed);
    if (options.onGap !== undefined) sub.onGap.add(options.onGap);
    if (options.onJoin !== undefined) sub.onJoin.add(options.onJoin);
    if (options.onLeave !== undefined) sub.onLeave.add(options.onLeave);
  }

  #wait(sub: Subscription, timeout: number): Promise<SubscribedEvent> {
    return sub.wait(timeout, (error) => {
      // The caller was told it failed: do not keep (or restore) it.
      if (this.#channels.get(sub.channel) === sub && sub.status !== "active") {
        this.#channels.delete(sub.channel);
        sub.cancelRetry();
        sub.reject(error);
      }
    });
  }

  /**
   * SUBSCRIBE_FAILURE `unavailable` (the channel's history could not be read):
   * sent again after a backoff delay, `subscribeRetries` times at most.
   */
  #unavailable(sub: Subscription, reason: string): void {
    if (sub.retries >= this.#s.subscribeRetries) {
      this.#refused(sub, new SubscribeError(sub.channel, ErrorCode.Unavailable, `${reason} (gave up after ${sub.retries} retries)`));
      return;
    }
    const { backoff, random } = this.#s.reconnect;
    const delay = backoffDelay(sub.retries, backoff, random);
    sub.retries += 1;
    sub.status = "retry";
    sub.correlationId = null;
    sub.retryTimer = this.#timers.setTimeout(() => {
      sub.retryTimer = null;
      if (this.#channels.get(sub.channel) !== sub || sub.status !== "retry") return;
      const conn = this.#lifecycle.readyConnection;
      if (conn !== null) this.#send(conn, [sub]);
      else sub.status = "unsent"; // sent with the others once ready
    }, delay);
    this.#events.emit("error", new SubscribeError(sub.channel, ErrorCode.Unavailable, reason, delay));
  }

  #refused(sub: Subscription, error: SubscribeError): void {
    this.#channels.delete(sub.channel);
    sub.cancelRetry();
    const waited = sub.waited;
    sub.reject(error);
    if (!waited) this.#events.emit("subscription_failed", error);
  }
}

/** Why `subscribe()`'s `last` / `recover` cannot be sent, or null. */
function invalidOptions(channel: string, options: SubscribeOptions): SubscribeError | null {
  const invalid = (reason: string): SubscribeError => new SubscribeError(channel, ErrorCode.InvalidMessage, reason);
  const { last, recover } = options;
  if (last !== undefined && recover !== undefined) return invalid("set recover or last, not both");
  if (last !== undefined && !(Number.isSafeInteger(last) && last >= 1)) {
    return invalid(`last must be a whole number ≥ 1, got ${String(last)}`);
  }
  if (recover !== undefined) {
    const { epoch, offset } = recover as { epoch: unknown; offset: unknown };
    if (typeof epoch !== "string" || epoch.length === 0 || epoch.length > MAX_EPOCH_LENGTH) {
      return invalid(`recover.epoch must be a string of 1 to ${MAX_EPOCH_LENGTH} characters`);
    }
    if (typeof offset !== "number" || !Number.isSafeInteger(offset) || offset < 0) {
      return invalid(`recover.offset must be a whole number ≥ 0, got ${String(offset)}`);
    }
  }
  return null;
}
