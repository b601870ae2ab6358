import { AsyncLocalStorage } from "node:async_hooks";
import { ConnectError, type Interceptor } from "@connectrpc/connect";
import { kRequestId } from "./context.js";

interface CallScope {
  readonly signal: AbortSignal;
  readonly requestId: string;
  /** Set once the handler settled: connect aborts every call's signal when it ends, which is not a cancellation. */
  settled: boolean;
}

/**
 * The signal of the call whose work is running, carried through async code so the database layer can tell
 * that the call was cancelled (client gone, deadline passed, server stopping) without every function passing it.
 * One store per process by nature: AsyncLocalStorage follows the async context, not the module graph.
 */
const scope = new AsyncLocalStorage<CallScope>();

/** Runs each call's handler inside its scope; work it starts (transactions included) can see its cancellation. */
export function createCallScopeInterceptor(): Interceptor {
  return (next) => async (req) => {
    const call: CallScope = { signal: req.signal, requestId: req.contextValues.get(kRequestId), settled: false };
    try {
      return await scope.run(call, () => next(req));
    } finally {
      call.settled = true;
    }
  };
}

/** Throws the call's abort reason (as a ConnectError) when the running call was cancelled; a no-op outside calls. */
export function throwIfCallCancelled(): void {
  const call = scope.getStore();
  if (call && !call.settled && call.signal.aborted) throw ConnectError.from(call.signal.reason);
}

/**
 * The request id of the call whose work is running, for work it leaves behind (an event delivered later), so
 * the calls that work makes carry the id of the call that caused them; undefined outside calls.
 */
export function currentRequestId(): string | undefined {
  return scope.getStore()?.requestId || undefined;
}

/** Runs `fn` outside any call, for background work a call only schedules: the call's end must not cancel it. */
export function detachedFromCall<T>(fn: () => T): T {
  return scope.exit(fn);
}
