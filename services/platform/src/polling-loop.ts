import type { Logger } from "./logger.js";

export interface PollingLoop {
  start(): void;
  /** Asks for a pass soon (new work was committed); a pass running now is followed by another at once. */
  kick(): void;
  /** Runs one pass now, after any running one; resolves with what the pass returned. For tests and shutdown. */
  runOnce(): Promise<number>;
  /** Stops the loop and waits for a running pass, so nothing touches the database after close. */
  stop(): Promise<void>;
}

/**
 * Runs `pass` every `intervalMs`, one pass at a time per process, and at once when kicked. A failed pass is
 * logged and the loop goes on. The timer is unref'd and `stop()` ends it: a test process is never kept alive.
 */
export function createPollingLoop(options: { name: string; intervalMs: number; logger: Logger; pass: (stopped: () => boolean) => Promise<number> }): PollingLoop {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<number> | undefined;
  let stopped = false;
  let kicked = false;
  let looping = false;
  const isStopped = () => stopped;

  const runOnce = (): Promise<number> => {
    const previous = running ?? Promise.resolve(0);
    const next = previous.catch(() => 0).then(() => (stopped ? 0 : options.pass(isStopped)));
    running = next;
    void next
      .finally(() => {
        if (running === next) running = undefined;
      })
      .catch(() => {});
    return next;
  };

  const schedule = (delayMs: number) => {
    if (stopped) return;
    clearTimeout(timer);
    timer = setTimeout(() => {
      kicked = false;
      looping = true;
      runOnce()
        .catch((e: unknown) => {
          options.logger.warn(`${options.name} pass failed`, { error: e });
        })
        .finally(() => {
          looping = false;
          // Work queued during the pass is done right away rather than after the interval.
          schedule(kicked ? 0 : options.intervalMs);
        });
    }, delayMs);
    timer.unref();
  };

  return {
    start: () => schedule(0),
    kick() {
      if (stopped) return;
      kicked = true;
      if (!looping) schedule(0);
    },
    runOnce,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running?.catch(() => {});
    },
  };
}
