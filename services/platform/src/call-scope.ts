import { AsyncLocalStorage } from "node:async_hooks";
import { ConnectError, type Interceptor } from "@connectrpc/connect";

interface CallScope {
  readonly signal: AbortSignal;
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
    const call: CallScope = { signal: req.signal, settled: false };
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

/** Runs `fn` outside any call, for background work a call only schedules: the call's end must not cancel it. */
export function detachedFromCall<T>(fn: () => T): T {
  return scope.exit(fn);
}
