/** A fake clock for the client's `timers` option: time moves only on `advance`. */

import type { Timers } from "../src/index.js";

interface Entry {
  readonly id: number;
  readonly at: number;
  readonly callback: () => void;
}

export class FakeClock implements Timers {
  #now: number;
  #nextId = 1;
  readonly #entries = new Map<number, Entry>();

  constructor(start = 1_763_769_600_000) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(callback: () => void, ms: number): unknown {
    const id = this.#nextId++;
    this.#entries.set(id, { id, at: this.#now + Math.max(0, ms), callback });
    return id;
  }

  clearTimeout(handle: unknown): void {
    if (typeof handle === "number") this.#entries.delete(handle);
  }

  /** Delays (from now) of the pending timers, soonest first. */
  pending(): number[] {
    return [...this.#entries.values()].map((e) => e.at - this.#now).sort((a, b) => a - b);
  }

  /** Moves time forward by `ms`, running due timers in order (and microtasks between them). */
  async advance(ms: number): Promise<void> {
    const target = this.#now + ms;
    await flush();
    for (;;) {
      let next: Entry | undefined;
      for (const entry of this.#entries.values()) {
        if (entry.at <= target && (next === undefined || entry.at < next.at || (entry.at === next.at && entry.id < next.id))) {
          next = entry;
        }
      }
      if (next === undefined) break;
      this.#entries.delete(next.id);
      this.#now = next.at;
      next.callback();
      await flush();
    }
    this.#now = target;
    await flush();
  }
}

/** Lets pending promise callbacks run. */
export async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}
