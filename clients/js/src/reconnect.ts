/**
 * The reconnect policy: whether a closed connection is followed by another
 * (the close code's advice, the options, the attempts so far), when (backoff
 * with full jitter), and why the next attempt asks for a token.
 */

import { backoffDelay } from "./backoff.js";
import type { DropOverride } from "./connection.js";
import { ConnectionClosedError, type SwitchboardError } from "./errors.js";
import type { TokenReason } from "./options.js";
import { CloseCode, reconnectAdvice } from "./protocol.js";
import type { Settings } from "./settings.js";

export interface Verdict {
  readonly reconnect: boolean;
  /** Why the client stops, when it does because of a failure. */
  readonly error: SwitchboardError | null;
}

export class Reconnect {
  readonly #s: Settings;
  /** Consecutive failed attempts since the last successful connection. */
  #attempt = 0;
  #timer: unknown = null;
  #tokenReason: TokenReason = "connect";

  constructor(s: Settings) {
    this.#s = s;
  }

  /** The attempt about to be made: 0 for the first after `connect()`. */
  get attempt(): number {
    return this.#attempt;
  }

  /** Why the next attempt asks for a token. */
  get tokenReason(): TokenReason {
    return this.#tokenReason;
  }

  /** `connect()` starts afresh. */
  start(): void {
    this.#attempt = 0;
    this.#tokenReason = "connect";
  }

  /** A connection became ready: the count starts again. */
  succeeded(): void {
    this.#attempt = 0;
    this.#tokenReason = "reconnect";
  }

  /** Whether to reconnect after a close with `code` (`why`); `active`: the client still wants a connection. */
  verdict(code: number, why: string, override: DropOverride | null, active: boolean): Verdict {
    const advice = reconnectAdvice(code);
    const provider = typeof this.#s.token === "function";
    let reconnect = override?.reconnect ?? (advice === "yes" || (advice === "after_new_token" && provider));
    let error = override?.error ?? null;
    if (!active) reconnect = false;
    if (reconnect && !this.#s.reconnect.enabled) reconnect = false;
    if (reconnect && this.#attempt >= this.#s.reconnect.maxAttempts) {
      reconnect = false;
      error = new ConnectionClosedError(
        code,
        why,
        `gave up after ${this.#attempt} reconnect attempts (last close ${code}${why === "" ? "" : ` ${why}`})`,
      );
    }
    if (!reconnect && error === null && active && code !== CloseCode.Normal) {
      const detail = why === "" ? "" : ` (${why})`;
      error = new ConnectionClosedError(code, why, `closed with ${code}${detail}; not reconnecting`);
    }
    return { reconnect, error };
  }

  /** Schedules `open` after a close with `code`; returns the attempt number (from 1) and the delay. */
  schedule(code: number, open: () => void): { readonly attempt: number; readonly delay: number } {
    const delay = backoffDelay(this.#attempt, this.#s.reconnect.backoff, this.#s.reconnect.random);
    this.#attempt += 1;
    // "expired" sticks until a connection succeeds: a provider that caches
    // tokens must not hand back the expired one after a failed attempt.
    if (code === CloseCode.TokenExpired) this.#tokenReason = "expired";
    this.#timer = this.#s.timers.setTimeout(() => {
      this.#timer = null;
      open();
    }, delay);
    return { attempt: this.#attempt, delay };
  }

  /** A scheduled attempt is off. */
  cancel(): void {
    if (this.#timer !== null) {
      this.#s.timers.clearTimeout(this.#timer);
      this.#timer = null;
    }
  }
}
