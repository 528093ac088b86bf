import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { backoffCap, backoffDelay, DEFAULT_BACKOFF } from "../src/index.js";

describe("backoff (exponential, full jitter)", () => {
  test("defaults: 0.5 s doubling up to 20 s", () => {
    assert.deepEqual(DEFAULT_BACKOFF, { initialDelay: 500, maxDelay: 20_000, factor: 2 });
    const caps = Array.from({ length: 10 }, (_, n) => backoffCap(n, DEFAULT_BACKOFF));
    assert.deepEqual(caps, [500, 1000, 2000, 4000, 8000, 16000, 20000, 20000, 20000, 20000]);
    assert.equal(backoffCap(10_000, DEFAULT_BACKOFF), 20_000, "no overflow for huge attempts");
  });

  test("the delay is uniform over [0, cap): random 0 gives 0, random → 1 approaches the cap", () => {
    for (let n = 0; n < 8; n++) {
      const cap = backoffCap(n, DEFAULT_BACKOFF);
      assert.equal(backoffDelay(n, DEFAULT_BACKOFF, () => 0), 0);
      assert.equal(backoffDelay(n, DEFAULT_BACKOFF, () => 0.5), Math.floor(cap / 2));
      assert.equal(backoffDelay(n, DEFAULT_BACKOFF, () => 0.999999), Math.floor(cap * 0.999999));
    }
  });

  test("full jitter bounds hold for many random draws, and the draws spread over the window", () => {
    let seed = 42;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let n = 0; n < 12; n++) {
      const cap = backoffCap(n, DEFAULT_BACKOFF);
      const delays = Array.from({ length: 2000 }, () => backoffDelay(n, DEFAULT_BACKOFF, random));
      assert.ok(delays.every((d) => d >= 0 && d < cap), `attempt ${n}: within [0, ${cap})`);
      assert.ok(Math.min(...delays) < cap * 0.05, `attempt ${n}: some near 0`);
      assert.ok(Math.max(...delays) > cap * 0.95, `attempt ${n}: some near the cap`);
    }
  });

  test("custom options and out-of-range random values are clamped", () => {
    const options = { initialDelay: 100, maxDelay: 1000, factor: 3 };
    assert.deepEqual([0, 1, 2, 3].map((n) => backoffCap(n, options)), [100, 300, 900, 1000]);
    assert.equal(backoffDelay(3, options, () => 7), 1000);
    assert.equal(backoffDelay(3, options, () => -1), 0);
  });
});
