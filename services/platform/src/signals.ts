import { ConnectError } from "@connectrpc/connect";

/**
 * Settles with `promise`, or rejects with `signal`'s reason (as a ConnectError) as soon as it aborts, whichever
 * comes first: a wait bounded by the call's deadline, its client, the shutdown or an outage, even when the work
 * behind the promise ignores the signal.
 */
export function raceSignal<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(ConnectError.from(signal.reason));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(ConnectError.from(signal.reason));
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}
