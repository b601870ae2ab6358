import { UserDataService } from "@local-e-grocery/gen/grocery/userdata/v1/userdata_service_pb.js";
import { backoffDelayMs } from "@local-e-grocery/platform/backoff.js";
import type { Logger } from "@local-e-grocery/platform/logger.js";
import type { Mesh } from "@local-e-grocery/platform/mesh.js";
import { createPollingLoop, type PollingLoop } from "@local-e-grocery/platform/polling-loop.js";
import type { ServiceClient } from "@local-e-grocery/platform/service-client.js";
import type { Clock } from "@local-e-grocery/platform/service-module.js";
import type { ClaimedDelivery } from "./model.js";
import type { IdentityStore } from "./store.js";

export interface EventDispatcherOptions {
  store: IdentityStore;
  clock: Clock;
  logger: Logger;
  mesh: Mesh;
  destinations: readonly string[];
  intervalMs: number;
  /** Cap of the exponential back-off between attempts to one destination, ms. */
  maxRetryDelayMs: number;
  /**
   * How long a claimed delivery is reserved for the replica delivering it, ms: longer than a call may take, so a
   * second replica only takes it over when the first died with it.
   */
  leaseMs: number;
  /** Deliveries claimed per pass; they go out concurrently. */
  batchSize?: number;
  random?: () => number;
}

/**
 * How long a delivery that failed its `attempts`-th time waits before the next attempt: 250 ms at first, doubled
 * per further failure, capped at `maxRetryDelayMs` (EVENT_RETRY_MAX_DELAY), jittered down to half so that
 * deliveries failing together (a destination that went down) do not all come back in one burst.
 */
export function deliveryRetryDelayMs(attempts: number, maxRetryDelayMs: number, random: () => number = Math.random): number {
  return backoffDelayMs(attempts, { initialMs: 250, maxMs: maxRetryDelayMs, random });
}

/**
 * Delivers identity's user events to every service that keeps user data, at least once, each destination on its
 * own. A pass claims due deliveries with FOR UPDATE SKIP LOCKED and leases them in the same statement, so two
 * replicas never hold one delivery at the same moment; the call goes out after the claim committed; an
 * acknowledged delivery records its time, a failed one is retried with capped exponential back-off and jitter,
 * until acknowledged, across restarts of either side (state lives in identity's database only). An event is
 * marked delivered once every destination acknowledged it. Receivers are idempotent (PurgeUser) or keep the
 * highest sequence (SetUserStanding), so a redelivery after a lost acknowledgement is harmless.
 */
export function createEventDispatcher(options: EventDispatcherOptions): PollingLoop {
  const { store, clock, logger } = options;
  const batchSize = options.batchSize ?? 32;
  const random = options.random ?? Math.random;
  const clients = new Map<string, ServiceClient<typeof UserDataService>>(options.destinations.map((d) => [d, options.mesh.client(UserDataService, d)]));

  const deliver = async (row: ClaimedDelivery): Promise<void> => {
    const client = clients.get(row.destination);
    if (!client) throw new Error(`${row.destination} is not in USER_DATA_SERVICES`);
    const userId = row.payload.user_id ?? "";
    const call = typeof row.payload.request_id === "string" ? { requestId: row.payload.request_id } : {};
    if (row.topic === "user.deleted") {
      await client.purgeUser({ userId }, call);
    } else if (row.topic === "user.disabled" || row.topic === "user.enabled" || row.topic === "user.roles_changed") {
      await client.setUserStanding({ userId, enabled: row.payload.enabled === true, shopOwner: row.payload.shop_owner === true, sequence: BigInt(row.seq) }, call);
    } else {
      throw new Error(`no delivery for topic ${row.topic}`);
    }
  };

  const pass = async (stopped: () => boolean): Promise<number> => {
    const now = new Date(clock());
    const claimed = await store.direct.claimDeliveries(now, new Date(now.getTime() + options.leaseMs), batchSize);
    if (claimed.length === 0 || stopped()) return 0;
    // A full batch means more may be due: the next pass follows at once.
    if (claimed.length === batchSize) queueMicrotask(() => loop.kick());
    const outcomes = await Promise.all(
      claimed.map(async (row) => {
        try {
          await deliver(row);
        } catch (e) {
          const delayMs = deliveryRetryDelayMs(row.attempts, options.maxRetryDelayMs, random);
          logger.warn("event delivery failed, will retry", { event_id: row.eventId, topic: row.topic, destination: row.destination, attempts: row.attempts, retry_in_ms: Math.round(delayMs), error: e });
          await store.direct.deferDelivery(row.eventId, row.destination, new Date(clock() + delayMs), (e instanceof Error ? e.message : String(e)).slice(0, 500));
          return 0;
        }
        await store.direct.markDelivered(row.eventId, row.destination, new Date(clock()));
        logger.info("event delivered", { event_id: row.eventId, topic: row.topic, destination: row.destination, attempts: row.attempts });
        return 1;
      }),
    );
    return outcomes.reduce<number>((a, b) => a + b, 0);
  };

  const loop = createPollingLoop({ name: "event dispatch", intervalMs: options.intervalMs, logger, pass });
  return loop;
}
