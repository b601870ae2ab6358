import type { ConnectRouter, HandlerContext } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";
import {
  Health,
  HealthCheckResponseSchema,
  HealthCheckResponse_ServingStatus as ServingStatus,
} from "@local-e-grocery/gen/grpc/health/v1/health_pb.js";

export { ServingStatus };

/**
 * Serving status per service name ("" is the whole server), served as grpc.health.v1.Health. Watch streams see
 * every change, including NOT_SERVING when the server starts shutting down.
 */
export interface HealthRegistry {
  set(service: string, status: ServingStatus): void;
  /** Sets every registered name, including "". */
  setAll(status: ServingStatus): void;
  get(service: string): ServingStatus | undefined;
  routes(router: ConnectRouter): void;
  /** Ends open Watch streams (at shutdown, after NOT_SERVING was sent). */
  close(): void;
}

export function createHealthRegistry(names: readonly string[]): HealthRegistry {
  const statuses = new Map<string, ServingStatus>([["", ServingStatus.NOT_SERVING]]);
  for (const name of names) statuses.set(name, ServingStatus.NOT_SERVING);
  const watchers = new Set<() => void>();
  let closed = false;
  const notify = () => {
    for (const wake of watchers) wake();
  };

  async function* watch(service: string, ctx: HandlerContext) {
    let last: ServingStatus | undefined;
    while (!ctx.signal.aborted) {
      const current = statuses.get(service) ?? ServingStatus.SERVICE_UNKNOWN;
      if (current !== last) {
        last = current;
        yield create(HealthCheckResponseSchema, { status: current });
      }
      if (closed) return;
      await new Promise<void>((resolve) => {
        const wake = () => {
          watchers.delete(wake);
          ctx.signal.removeEventListener("abort", wake);
          resolve();
        };
        watchers.add(wake);
        ctx.signal.addEventListener("abort", wake);
      });
    }
  }

  return {
    set(service, status) {
      if (statuses.get(service) === status) return;
      statuses.set(service, status);
      notify();
    },
    setAll(status) {
      for (const name of statuses.keys()) statuses.set(name, status);
      notify();
    },
    get: (service) => statuses.get(service),
    routes(router) {
      router.service(Health, {
        check(req) {
          const status = statuses.get(req.service);
          // The name is echoed only when short: a message travels in a header, and headers have a size limit.
          if (status === undefined) throw new ConnectError(req.service.length <= 200 ? `unknown service ${req.service}` : "unknown service", Code.NotFound);
          return { status };
        },
        watch: (req, ctx) => watch(req.service, ctx),
      });
    },
    close() {
      closed = true;
      notify();
    },
  };
}

/**
 * Pings the database every `intervalMs`, each ping bounded by `timeoutMs`, and flips `names` between SERVING and
 * NOT_SERVING with the result: an outage shows within about `intervalMs + timeoutMs`. Probes never overlap.
 * Resolves, with a stop function, once the first probe has set the status.
 */
export async function watchDatabase(options: {
  health: HealthRegistry;
  names: readonly string[];
  ping: (timeoutMs: number) => Promise<void>;
  intervalMs: number;
  timeoutMs: number;
  onChange?: (serving: boolean, error?: unknown) => void;
}): Promise<() => void> {
  let serving: boolean | undefined;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const probe = async () => {
    let ok = true;
    let error: unknown;
    try {
      await options.ping(options.timeoutMs);
    } catch (e) {
      ok = false;
      error = e;
    }
    if (stopped) return;
    if (ok !== serving) {
      serving = ok;
      const status = ok ? ServingStatus.SERVING : ServingStatus.NOT_SERVING;
      for (const name of options.names) options.health.set(name, status);
      options.onChange?.(ok, error);
    }
  };
  const loop = () => {
    timer = setTimeout(() => void probe().then(() => !stopped && loop()), options.intervalMs);
    timer.unref();
  };
  await probe();
  loop();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
