/**
 * Heartbeats: answering the server's PING, watching that the server is still
 * there (it PINGs every `heartbeat_interval`), and our own PING / PONG
 * round trips (`ping()`, and every `pingInterval` when set).
 */

import type { Connection, Waiter } from "./connection.js";
import type { Timers } from "./env.js";
import { NotConnectedError, TimeoutError, type SwitchboardError } from "./errors.js";
import type { Lifecycle } from "./lifecycle.js";
import { CloseCode } from "./protocol.js";
import { Replies } from "./requests.js";
import type { Settings } from "./settings.js";

/** A PING of ours, awaiting its PONG. */
interface PingOp extends Waiter<number> {
  readonly sentAt: number;
}

export class Heartbeat {
  readonly #s: Settings;
  readonly #timers: Timers;
  readonly #lifecycle: Lifecycle;
  /** CONNECT_ACK's `heartbeat_interval`, seconds. */
  #interval = 0;
  readonly #pings: Replies<PingOp>;

  constructor(s: Settings, lifecycle: Lifecycle) {
    this.#s = s;
    this.#timers = s.timers;
    this.#lifecycle = lifecycle;
    this.#pings = new Replies(s.timers);
  }

  /** CONNECT_ACK arrived on `conn`: the server PINGs every `interval` seconds from now on. */
  acked(conn: Connection, interval: number): void {
    this.#interval = interval;
    this.heard(conn);
  }

  /** A message arrived on `conn`: the server is alive; the watchdog starts again. */
  heard(conn: Connection): void {
    if (!this.#s.watchServerHeartbeat || !conn.acked || this.#interval <= 0) return;
    this.#timers.clearTimeout(conn.timers.watchdog);
    const limit = this.#interval * 1000 + this.#s.pongTimeout;
    conn.timers.watchdog = this.#timers.setTimeout(() => {
      conn.drop(CloseCode.Abnormal, `nothing from the server for ${limit} ms`, { reconnect: true });
    }, limit);
  }

  /** `conn` is ready: our own PINGs start (with `pingInterval`). */
  start(conn: Connection): void {
    if (this.#s.pingInterval <= 0) return;
    conn.timers.ping = this.#timers.setTimeout(() => {
      this.#ping(conn, this.#s.pongTimeout).then(
        () => {
          if (this.#lifecycle.live(conn)) this.start(conn);
        },
        (error: unknown) => {
          if (error instanceof TimeoutError) {
            conn.drop(CloseCode.Abnormal, `no PONG within ${this.#s.pongTimeout} ms`, { reconnect: true });
          } else if (this.#lifecycle.live(conn)) {
            // An ERROR answered the PING: the server is there; keep pinging.
            this.start(conn);
          }
        },
      );
    }, this.#s.pingInterval);
  }

  /** `SwitchboardClient.ping()`, with its timeout resolved. */
  ping(timeout: number): Promise<number> {
    const conn = this.#lifecycle.current;
    if (conn === null) return Promise.reject(new NotConnectedError());
    return this.#ping(conn, timeout);
  }

  /** A PING on `conn`; refused before CONNECT_ACK and once `disconnect()` was called. */
  #ping(conn: Connection, timeout: number): Promise<number> {
    if (!conn.acked || !this.#lifecycle.live(conn)) return Promise.reject(new NotConnectedError());
    return new Promise<number>((resolve, reject) => {
      const id = conn.send("PING", {});
      this.#pings.add(id, {
        sentAt: this.#timers.now(),
        resolve,
        reject,
        timer: this.#timers.setTimeout(() => {
          this.#pings.delete(id);
          reject(new TimeoutError("ping", timeout));
        }, timeout),
      });
    });
  }

  /** The server's PING `id`: answered at once (before authentication too). */
  pinged(conn: Connection, id: string): void {
    conn.send("PONG", {}, id);
  }

  /** A PONG answering `correlation`. */
  ponged(correlation: string): void {
    const ping = this.#pings.take(correlation);
    ping?.resolve(this.#timers.now() - ping.sentAt);
  }

  /** An ERROR: rejects the PING it answers; returns whether there was one. */
  error(correlation: string, error: SwitchboardError): boolean {
    const ping = this.#pings.take(correlation);
    if (ping === undefined) return false;
    ping.reject(error);
    return true;
  }

  /** The connection closed: PINGs in flight reject with `error`. */
  lost(error: SwitchboardError): void {
    for (const ping of this.#pings.takeAll()) ping.reject(error);
  }
}
