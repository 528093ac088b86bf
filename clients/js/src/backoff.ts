/**
 * Exponential backoff with full jitter: the n-th retry (n from 0) waits a
 * uniformly random time in [0, min(maxDelay, initialDelay × factor^n)).
 * Full jitter spreads a crowd of clients that lost the same server across the
 * whole window, so a restarting gateway is not hit by all of them at once.
 */

export interface BackoffOptions {
  /** Cap of the first retry's delay, in ms. Default 500. */
  readonly initialDelay: number;
  /** Largest cap, in ms. Default 20 000. */
  readonly maxDelay: number;
  /** Growth of the cap per attempt. Default 2. */
  readonly factor: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialDelay: 500, maxDelay: 20_000, factor: 2 };

/** The window's upper bound for retry `attempt` (0-based), in ms. */
export function backoffCap(attempt: number, options: BackoffOptions): number {
  return Math.min(options.maxDelay, options.initialDelay * options.factor ** attempt);
}

/** The delay before retry `attempt` (0-based), in ms; `random` returns [0, 1). */
export function backoffDelay(attempt: number, options: BackoffOptions, random: () => number): number {
  const r = Math.min(Math.max(random(), 0), 1);
  return Math.floor(r * backoffCap(attempt, options));
}
