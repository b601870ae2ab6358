import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setImmediate as nextTurn, setTimeout as sleep } from "node:timers/promises";
import { Code } from "@connectrpc/connect";
import { DomainError } from "@local-e-grocery/platform/errors.js";
import { createLogger } from "@local-e-grocery/platform/logger.js";
import { createJobQueue, type JobQueueOptions } from "./job-queue.js";

/** A queue whose log lines are kept, with `run` as given. */
function queue<T>(run: (job: T) => Promise<void>, options: Partial<JobQueueOptions<T>> = {}) {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({ level: "debug", write: (line) => lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { q: createJobQueue<T>({ run, maxPending: 10, logger, name: "test job", ...options }), lines };
}

const codeOf = (fn: () => unknown): Code | undefined => {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof DomainError);
    return e.code;
  }
  return undefined;
};

/** Waits (boundedly) until `condition` holds. */
async function until(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !condition(); i++) await sleep(2);
  assert.ok(condition(), "condition not reached within a second");
}

/** A promise and the function that settles it, for jobs a test finishes when it wants. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

describe("job queue", () => {
  it("returns from push before the job starts, and starts it only after the delay", async () => {
    const started: number[] = [];
    const { q } = queue<number>(async (n) => void started.push(n), { startDelayMs: 30 });
    const pushed = performance.now();
    q.push(1);
    assert.deepEqual(started, []);
    // Several event-loop turns (where an answer's frames are written) pass without the job.
    for (let i = 0; i < 5; i++) await nextTurn();
    assert.deepEqual(started, []);
    await q.close();
    assert.deepEqual(started, [1]);
    assert.ok(performance.now() - pushed >= 29, "waited for the delay");
  });

  it("runs every accepted job, in order, at most `concurrency` at once", async () => {
    let running = 0;
    let most = 0;
    const started: number[] = [];
    const done: number[] = [];
    const { q } = queue<number>(
      async (n) => {
        started.push(n);
        running++;
        most = Math.max(most, running);
        await sleep(5);
        running--;
        done.push(n);
      },
      { concurrency: 3, startDelayMs: 0, maxPending: 100 },
    );
    for (let n = 0; n < 20; n++) q.push(n);
    assert.equal(q.pending, 20);
    await q.close();
    assert.equal(most, 3);
    assert.deepEqual(started, [...Array(20).keys()]);
    assert.deepEqual([...done].sort((a, b) => a - b), [...Array(20).keys()]);
    assert.equal(q.pending, 0);
  });

  it("refuses a job with RESOURCE_EXHAUSTED when maxPending are queued or running, and takes jobs again once they end", async () => {
    const g = gate();
    const started: string[] = [];
    const ran: string[] = [];
    const { q } = queue<string>(
      async (job) => {
        started.push(job);
        await g.opened;
        ran.push(job);
      },
      { maxPending: 2, startDelayMs: 0 },
    );
    q.push("a");
    q.push("b");
    assert.equal(codeOf(() => q.push("c")), Code.ResourceExhausted);
    // One running and one waiting (concurrency 1): both still count.
    await until(() => started.length === 1);
    assert.deepEqual(started, ["a"]);
    assert.equal(codeOf(() => q.push("c")), Code.ResourceExhausted);
    g.open();
    await until(() => q.pending === 0);
    q.push("d");
    await q.close();
    assert.deepEqual(ran, ["a", "b", "d"]);
  });

  it("logs a failed job and goes on with the next", async () => {
    const ran: number[] = [];
    const { q, lines } = queue<number>(
      async (n) => {
        if (n === 1) throw new Error("database went away");
        ran.push(n);
      },
      { startDelayMs: 0 },
    );
    for (const n of [1, 2]) q.push(n);
    await q.close();
    assert.deepEqual(ran, [2]);
    assert.deepEqual(
      lines.map((l) => [l["level"], l["msg"]]),
      [["error", "test job failed"]],
    );
  });

  it("close waits for queued and running jobs, then refuses new ones with UNAVAILABLE", async () => {
    const g = gate();
    const events: string[] = [];
    const { q } = queue<number>(
      async (n) => {
        events.push(`start ${n}`);
        await g.opened;
        events.push(`end ${n}`);
      },
      { startDelayMs: 0 },
    );
    q.push(1);
    q.push(2);
    // Job 1 running, job 2 queued behind it.
    await until(() => events.length === 1);
    const closing = q.close().then(() => events.push("closed"));
    assert.equal(codeOf(() => q.push(3)), Code.Unavailable);
    g.open();
    await closing;
    // The order, not a pause, shows that close waited: it resolved only after both accepted jobs had ended.
    assert.deepEqual(events, ["start 1", "end 1", "start 2", "end 2", "closed"]);
    // Idempotent, and immediate once idle.
    await q.close();
    assert.equal(codeOf(() => q.push(4)), Code.Unavailable);
  });
});
