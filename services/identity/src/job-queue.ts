/**
 * Work that a call asks for but must not answer after: the call queues a job and returns, and the job runs once
 * the call's answer has gone out. Identity uses it where waiting for the work would tell the caller something
 * (RequestPasswordReset: only a registered address costs a token and a mail).
 */
import { Code } from "@connectrpc/connect";
import { detachedFromCall } from "@local-e-grocery/platform/call-scope.js";
import { DomainError, resourceExhausted } from "@local-e-grocery/platform/errors.js";
import type { Logger } from "@local-e-grocery/platform/logger.js";

export interface JobQueueOptions<T> {
  /** Does one job. A rejection is logged with `name`; the job is not retried. */
  run(job: T): Promise<void>;
  /** Jobs queued or running at most: a full queue refuses more rather than grow without bound. */
  maxPending: number;
  /** Jobs run at once at most (PGlite runs one query at a time anyway; PostgreSQL overlaps their waits). */
  concurrency?: number;
  /**
   * How long after `push` a job starts at the earliest, ms; 20 unless said. On PGlite a job's queries run on the
   * main thread, and gRPC's trailers leave a couple of event-loop turns after the handler returns: a job started
   * sooner (on a microtask, setImmediate or a 1 ms timer) holds the answer back until it ends.
   */
  startDelayMs?: number;
  logger: Logger;
  /** Names the jobs in the log. */
  name: string;
}

export interface JobQueue<T> {
  /**
   * Queues `job` and returns at once, before it starts. Throws RESOURCE_EXHAUSTED when `maxPending` jobs are
   * already queued or running, and UNAVAILABLE once `close()` has begun; a job it accepted always runs.
   */
  push(job: T): void;
  /** Jobs queued or running. */
  readonly pending: number;
  /** Refuses new jobs and resolves when every accepted one has finished. Idempotent. */
  close(): Promise<void>;
}

export function createJobQueue<T>(options: JobQueueOptions<T>): JobQueue<T> {
  const { run, maxPending, logger, name } = options;
  const concurrency = options.concurrency ?? 1;
  const startDelayMs = options.startDelayMs ?? 20;
  const waiting: { job: T; notBefore: number }[] = [];
  let running = 0;
  let closing = false;
  let idle: (() => void)[] = [];

  const settleIfIdle = () => {
    if (running > 0 || waiting.length > 0) return;
    const waiters = idle;
    idle = [];
    for (const resolve of waiters) resolve();
  };

  const finish = () => {
    running--;
    startNext();
    settleIfIdle();
  };

  const startNext = () => {
    while (running < concurrency && waiting.length > 0) {
      const { job, notBefore } = waiting.shift() as { job: T; notBefore: number };
      running++;
      // Timers count from the event loop's cached clock, which lags when a turn was long: one may fire a few
      // milliseconds before `notBefore`, and then waits out the rest.
      const start = () => {
        const left = notBefore - performance.now();
        if (left > 0) {
          setTimeout(start, left);
          return;
        }
        Promise.resolve()
          .then(() => run(job))
          .catch((e: unknown) => logger.error(`${name} failed`, { error: e }))
          .finally(finish);
      };
      // Outside the queuing call's scope: the call has answered, and its end must not cancel the job's
      // transactions. The timer is not unref'd: an accepted job keeps the process up until it has run.
      detachedFromCall(() => setTimeout(start, Math.max(0, notBefore - performance.now())));
    }
  };

  return {
    push(job) {
      if (closing) throw new DomainError(Code.Unavailable, "the service is shutting down");
      if (running + waiting.length >= maxPending) throw resourceExhausted("too many requests in progress, try again later");
      waiting.push({ job, notBefore: performance.now() + startDelayMs });
      startNext();
    },
    get pending() {
      return running + waiting.length;
    },
    close() {
      closing = true;
      return new Promise<void>((resolve) => {
        idle.push(resolve);
        settleIfIdle();
      });
    },
  };
}
