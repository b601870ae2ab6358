import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { backoffDelayMs } from "./backoff.js";

const options = { initialMs: 250, maxMs: 60_000 };
const at = (r: number) => () => r;

describe("capped exponential back-off with jitter", () => {
  it("doubles with each failure from the initial wait until the cap, then stays there", () => {
    const delays = Array.from({ length: 12 }, (_, i) => backoffDelayMs(i + 1, { ...options, random: at(0) }));
    // random() = 0 is the lowest jitter: half of each un-jittered wait.
    assert.deepEqual(delays, [125, 250, 500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000, 30_000]);
  });

  it("never waits longer than the cap, however many failures (a long outage does not overflow)", () => {
    for (const failures of [9, 10, 100, 1025, 1e9, Number.MAX_SAFE_INTEGER]) {
      const longest = backoffDelayMs(failures, { ...options, random: at(1 - Number.EPSILON) });
      assert.ok(Number.isFinite(longest) && longest <= options.maxMs && longest > options.maxMs * 0.99, `${failures}: ${longest}`);
    }
    assert.equal(backoffDelayMs(1e9, { initialMs: 0, maxMs: 1000, random: at(0.5) }), 0);
  });

  it("jitters within [half, all) of the capped wait, spread over the range", () => {
    for (let failures = 1; failures <= 80; failures++) {
      const capped = Math.min(options.maxMs, options.initialMs * 2 ** (failures - 1));
      for (const r of [0, 0.001, 0.25, 0.5, 0.75, 0.999, 1 - Number.EPSILON]) {
        const delay = backoffDelayMs(failures, { ...options, random: at(r) });
        assert.ok(delay >= capped / 2 && delay < capped, `failure ${failures}, random ${r}: ${delay} of ${capped} ms`);
      }
    }
    const spread = new Set(Array.from({ length: 50 }, () => backoffDelayMs(3, options)));
    assert.ok(spread.size > 40, `Math.random by default: ${spread.size} distinct waits out of 50`);
  });

  it("treats a count below one as the first failure", () => {
    assert.equal(backoffDelayMs(0, { ...options, random: at(0) }), 125);
    assert.equal(backoffDelayMs(-3, { ...options, random: at(0) }), 125);
  });
});
