import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { readIdentityConfig } from "./config.js";
import { deliveryRetryDelayMs } from "./event-dispatcher.js";

describe("delivery retry delay", () => {
  const { maxRetryDelayMs } = readIdentityConfig({ EVENT_RETRY_MAX_DELAY: "2s" }).events;
  const lowest = () => 0;
  const highest = () => 1 - Number.EPSILON;

  it("starts at 250 ms and doubles with each failed attempt", () => {
    assert.deepEqual(
      [1, 2, 3, 4].map((attempts) => deliveryRetryDelayMs(attempts, maxRetryDelayMs, lowest) * 2),
      [250, 500, 1000, 2000],
    );
  });

  it("never exceeds EVENT_RETRY_MAX_DELAY, however often a destination failed", () => {
    assert.equal(maxRetryDelayMs, 2000);
    for (const attempts of [4, 5, 10, 1000, 1e9]) {
      const delay = deliveryRetryDelayMs(attempts, maxRetryDelayMs, highest);
      assert.ok(delay <= maxRetryDelayMs && delay > 1990, `attempt ${attempts}: ${delay} ms`);
      assert.equal(deliveryRetryDelayMs(attempts, maxRetryDelayMs, lowest), maxRetryDelayMs / 2);
    }
    // The default cap is a minute.
    const byDefault = readIdentityConfig({}).events.maxRetryDelayMs;
    assert.equal(byDefault, 60_000);
    assert.ok(deliveryRetryDelayMs(50, byDefault, highest) <= 60_000);
  });

  it("jitters each delay within [half, all) of its capped value", () => {
    for (let attempts = 1; attempts <= 8; attempts++) {
      const capped = Math.min(maxRetryDelayMs, 250 * 2 ** (attempts - 1));
      for (const r of [0, 0.25, 0.5, 0.75, 1 - Number.EPSILON]) {
        const delay = deliveryRetryDelayMs(attempts, maxRetryDelayMs, () => r);
        assert.ok(delay >= capped / 2 && delay < capped, `attempt ${attempts}, random ${r}: ${delay} of ${capped} ms`);
      }
    }
  });
});
