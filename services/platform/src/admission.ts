import { setMaxListeners } from "node:events";
import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { accessPolicyOf } from "./auth/access-interceptor.js";

export interface AdmissionOptions {
  /** Expensive calls running at once (password hashing runs on libuv's four threads by default). */
  readonly concurrency: number;
  /** Expensive calls allowed to wait for a slot; more answer RESOURCE_EXHAUSTED at once. */
  readonly queueLength: number;
}

/**
 * Admits the calls of RPCs marked `expensive` in their access policy through a bounded FIFO queue: at most
 * `concurrency` run at once, at most `queueLength` wait, and a call whose client goes away (or whose deadline
 * passes) while it waits leaves the queue without ever running. A burst of Register or Login calls (or of
 * streams opened and reset at once) therefore cannot starve the cheap calls, nor make work no one waits for.
 */
export function createAdmissionInterceptor(options: AdmissionOptions): Interceptor {
  const expensive = new Map<DescMethod, boolean>();
  const waiting: { admit: () => void; signal: AbortSignal }[] = [];
  let running = 0;
  const release = () => {
    running--;
    while (waiting.length > 0 && running < options.concurrency) {
      const next = waiting.shift()!;
      if (next.signal.aborted) continue;
      running++;
      next.admit();
    }
  };
  const isExpensive = (method: DescMethod) => {
    let known = expensive.get(method);
    if (known === undefined) expensive.set(method, (known = accessPolicyOf(method)?.expensive ?? false));
    return known;
  };
  return (next) => async (req) => {
    if (!isExpensive(req.method)) return next(req);
    if (req.signal.aborted) throw ConnectError.from(req.signal.reason);
    if (running >= options.concurrency) {
      if (waiting.length >= options.queueLength) throw new ConnectError("too many such calls right now, try again shortly", Code.ResourceExhausted);
      await new Promise<void>((resolve, reject) => {
        const entry = {
          signal: req.signal,
          admit: () => {
            req.signal.removeEventListener("abort", onAbort);
            resolve();
          },
        };
        const onAbort = () => {
          const at = waiting.indexOf(entry);
          if (at >= 0) waiting.splice(at, 1);
          reject(ConnectError.from(req.signal.reason));
        };
        setMaxListeners(0, req.signal);
        req.signal.addEventListener("abort", onAbort, { once: true });
        waiting.push(entry);
      });
    } else {
      running++;
    }
    try {
      return await next(req);
    } finally {
      release();
    }
  };
}
