export interface BackoffOptions {
  /** The wait after the first failure, before jitter. */
  initialMs: number;
  /** No wait is longer than this. */
  maxMs: number;
  /** Uniform in [0, 1); Math.random unless a test fixes it. */
  random?: () => number;
}

/**
 * The wait after the `failures`-th failure in a row (1 is the first): `initialMs`, doubled for each further
 * failure, capped at `maxMs`, then scaled by a random factor in [0.5, 1), so that peers that failed together do
 * not all come back at the same moment. The result lies in [capped / 2, capped).
 */
export function backoffDelayMs(failures: number, options: BackoffOptions): number {
  const random = options.random ?? Math.random;
  // Bounded exponent: after a long outage 2 ** failures overflows to Infinity, and Infinity * 0 is NaN.
  const doublings = Math.min(Math.max(failures - 1, 0), 52);
  const capped = Math.min(options.maxMs, options.initialMs * 2 ** doublings);
  return capped * (0.5 + random() / 2);
}
