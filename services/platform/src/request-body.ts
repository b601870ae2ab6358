import { Code, ConnectError } from "@connectrpc/connect";
import { parseTimeout as parseConnectTimeout } from "@connectrpc/connect/protocol-connect";
import { parseTimeout as parseGrpcTimeout } from "@connectrpc/connect/protocol-grpc";

/** How long a request body may take to arrive; every wait on a client's bytes has one of these bounds. */
export interface BodyLimits {
  /** Longest pause between two chunks of a body. */
  readonly idleMs: number;
  /** Longest time from the request's headers to the end of its body. */
  readonly totalMs: number;
}

/**
 * The deadline a call asked for, in milliseconds from now, read from the header of its protocol (`grpc-timeout`
 * for gRPC and gRPC-web, `connect-timeout-ms` for Connect), capped at `maxTimeoutMs`. Undefined when the client
 * set none or set one that does not parse (the protocol handler answers that itself).
 */
export function requestedTimeoutMs(headers: { [key: string]: string | string[] | undefined }, maxTimeoutMs: number): number | undefined {
  const contentType = first(headers["content-type"]) ?? "";
  const parsed = contentType.startsWith("application/grpc")
    ? parseGrpcTimeout(first(headers["grpc-timeout"]) ?? null, maxTimeoutMs)
    : parseConnectTimeout(first(headers["connect-timeout-ms"]) ?? null, maxTimeoutMs);
  return parsed.error ? undefined : parsed.timeoutMs;
}

/**
 * How long a body that started arriving at `started` may wait for its next chunk at `now`, and the error to give
 * when that wait runs out: the nearest of the call's deadline, the total time and the pause between chunks.
 */
export function nextChunkWait(started: number, now: number, limits: BodyLimits, deadlineAt: number | undefined): { ms: number; error: () => ConnectError } {
  const totalLeft = started + limits.totalMs - now;
  const deadlineLeft = deadlineAt === undefined ? Infinity : deadlineAt - now;
  const wait = Math.min(limits.idleMs, totalLeft, deadlineLeft);
  const reason =
    wait === deadlineLeft
      ? "the call's deadline passed while its request body was arriving"
      : wait === totalLeft
        ? "the request body took longer than the server allows"
        : "the request body stalled";
  return { ms: Math.max(0, wait), error: () => new ConnectError(reason, Code.DeadlineExceeded) };
}

/**
 * Passes a request body through while enforcing, from the moment the request arrived, the call's deadline
 * (DEADLINE_EXCEEDED), the pause between chunks and the total time to receive it (both DEADLINE_EXCEEDED too:
 * the client ran out of the time the server grants, whatever it asked for). `onStall` runs once when any bound
 * fires, so the caller can stop reading the connection; `signal` ends the wait when the call goes away.
 */
export async function* guardBody(
  body: AsyncIterable<Uint8Array>,
  options: { limits: BodyLimits; deadlineAt?: number | undefined; signal?: AbortSignal; onStall?: () => void },
): AsyncGenerator<Uint8Array> {
  const started = Date.now();
  const it = body[Symbol.asyncIterator]();
  let finished = false;
  try {
    for (;;) {
      const wait = nextChunkWait(started, Date.now(), options.limits, options.deadlineAt);
      const next = await nextWithin(it, wait.ms, options.signal, wait.error);
      if (next.done) {
        finished = true;
        return;
      }
      yield next.value;
    }
  } catch (e) {
    if (e instanceof ConnectError && e.code === Code.DeadlineExceeded) options.onStall?.();
    throw e;
  } finally {
    if (!finished) void it.return?.().catch(() => {});
  }
}

function nextWithin<T>(
  it: AsyncIterator<T>,
  ms: number,
  signal: AbortSignal | undefined,
  timeoutError: () => ConnectError,
): Promise<IteratorResult<T>> {
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      cleanup();
      reject(ConnectError.from(signal?.reason ?? new ConnectError("call cancelled", Code.Canceled)));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(timeoutError());
    }, ms);
    const cleanup = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    };
    if (signal?.aborted) return onAbort();
    signal?.addEventListener("abort", onAbort, { once: true });
    it.next().then(
      (r) => {
        cleanup();
        resolve(r);
      },
      (e: unknown) => {
        cleanup();
        reject(e);
      },
    );
  });
}

function first(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}
