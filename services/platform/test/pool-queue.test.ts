/**
 * postgres.js keeps its connections in queues (open, busy, full, reserved) that scripts/patch-dependencies.mjs
 * repairs: unrepaired 3.4.9 scans every hole a shift() ever left on each move of a connection, so the cost per
 * query grows without bound under steady load. The repair searches only the live part and compacts the array.
 * This checks that the work of each move stays bounded under steady load, and the repaired queue against a
 * plain model through long mixed runs, compactions included.
 */
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { describe, it } from "node:test";

const require = createRequire(import.meta.url);
const queuePath = require.resolve("postgres").replace(/src[\\/]index\.js$/, "src/queue.js");
const Queue = require(queuePath) as <T>(initial?: T[]) => { length: number; push(x: T): T; shift(): T | undefined; remove(x: T): T | null };

describe("postgres.js's connection queue (repaired at install)", () => {
  it("keeps the array it searches bounded by the live connections under steady load", () => {
    // The queue copies its initial array with slice(), which keeps the subclass: the spy sees every array the
    // queue holds while it never runs empty, and what each search scans.
    let longest = 0;
    let scanned = 0;
    class Spy<T> extends Array<T> {
      override push(...items: T[]): number {
        const n = super.push(...items);
        longest = Math.max(longest, n);
        return n;
      }
      override indexOf(item: T, from = 0): number {
        scanned = Math.max(scanned, this.length - from);
        return super.indexOf(item, from);
      }
    }
    const connections = [{ id: 0 }, { id: 1 }, { id: 2 }];
    const busy = Queue(Spy.from(connections));
    // The pool's busy queue under load: a query takes the connection at the head, which moves back to the tail
    // (remove() misses it, since shift() already took it out).
    for (let query = 0; query < 100_000; query++) {
      const c = busy.shift()!;
      assert.equal(busy.remove(c), null);
      busy.push(c);
    }
    assert.equal(busy.length, 3);
    assert.ok(longest <= 2 * 1024 + 3, `the queue's array grew to ${longest} entries for 3 connections`);
    assert.ok(scanned <= 3, `a search scanned ${scanned} entries for 3 connections`);
  });

  it("behaves like a plain FIFO with removal through long runs that compact it", () => {
    // A deterministic generator, so a failure repeats.
    let seed = 42;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const queue = Queue<object>();
    const model: object[] = [];
    const items = Array.from({ length: 16 }, (_, i) => ({ id: i }));
    for (let step = 0; step < 200_000; step++) {
      const r = random();
      // Mostly kept from running empty, as the busy queue under load is: an array that never empties only ever
      // shrinks by compaction.
      if (r < 0.45 || model.length < 3) {
        // Like the pool, an item sits in one queue at most once.
        const free = items.filter((x) => !model.includes(x));
        if (free.length === 0) continue;
        const x = free[Math.floor(random() * free.length)]!;
        queue.push(x);
        model.push(x);
      } else if (r < 0.85) {
        assert.equal(queue.shift(), model.shift(), `shift at step ${step}`);
      } else {
        const x = items[Math.floor(random() * items.length)]!;
        const at = model.indexOf(x);
        const expected = at === -1 ? null : model.splice(at, 1)[0];
        assert.equal(queue.remove(x), expected, `remove at step ${step}`);
      }
      assert.equal(queue.length, model.length, `length at step ${step}`);
    }
  });

  it("keeps its order across a compaction", () => {
    // Three items cycled through a queue that never runs empty: after 1,024 shifts the holes are the larger half
    // of the array, the point where the repaired queue compacts.
    const queue = Queue<number>([0, 1, 2]);
    for (let i = 0; i < 5000; i++) {
      const x = queue.shift()!;
      assert.equal(x, i % 3, `shift ${i}`);
      if (i % 7 === 0) {
        assert.equal(queue.remove(x), null, "an item already shifted out is not in the queue");
      }
      queue.push(x);
      assert.equal(queue.length, 3);
    }
    // Next in line are 2 (5000 % 3), 0 and 1; 2 is taken out before its turn.
    assert.equal(queue.remove(2), 2);
    assert.deepEqual([queue.shift(), queue.shift(), queue.shift()], [0, 1, undefined]);
  });
});
