/**
 * One platform per test worker and backend, for the suites that need no platform of their own: they only call
 * RPCs as users they create themselves (unique names from `uniqueName`), never count or list what others may
 * have made, never move the clock and never stop, restart or reconfigure the platform. The type enforces the
 * last two: a shared platform has no stop/restart/close and its clock cannot be advanced. A suite that needs any
 * of that starts its own with `startTestPlatform`.
 *
 * scripts/test.mjs runs many files in one worker process, so the first suite of a worker pays the start-up and
 * the rest reuse it; the platforms stop after the worker's last test (a root-level hook, registered when this
 * module is first imported, which is at a file's top level).
 */
import { after } from "node:test";
import { startTestPlatform, type Backend, type TestPlatform } from "./harness.js";

export type SharedTestPlatform = Omit<TestPlatform, "stop" | "restart" | "close" | "clock"> & { readonly clock: () => number };

const started = new Map<Backend, Promise<TestPlatform>>();

after(async () => {
  const platforms = await Promise.allSettled(started.values());
  started.clear();
  await Promise.all(platforms.map((p) => (p.status === "fulfilled" ? p.value.close() : undefined)));
});

/** The worker's platform on `backend` (default options but the registration limit, every service), started on first use. */
export async function sharedTestPlatform(backend: Backend): Promise<SharedTestPlatform> {
  let platform = started.get(backend);
  if (!platform) {
    // Every suite on it registers from 127.0.0.1: the per-address registration limit is for one person, not a
    // worker's worth of suites.
    platform = startTestPlatform({ backend, env: { REGISTER_IP_MAX_ATTEMPTS: "100000" } });
    started.set(backend, platform);
    // A failed start is not cached: the next suite tries again and reports its own failure.
    platform.catch(() => started.delete(backend));
  }
  const { url, port, clock, platform: running } = await platform;
  return { url, port, backend, clock: () => clock(), platform: running };
}
