import { currentRequestId } from "@local-e-grocery/platform/call-scope.js";
import type { Logger } from "@local-e-grocery/platform/logger.js";
import { createPollingLoop, type PollingLoop } from "@local-e-grocery/platform/polling-loop.js";
import type { Clock } from "@local-e-grocery/platform/service-module.js";
import type { Mail, Mailer } from "./mailer.js";
import type { IdentityStore, IdentityTx } from "./store.js";

/** Queues `mail` in the caller's transaction; it is sent after commit by the dispatcher. */
export async function enqueueMail(tx: IdentityTx, clock: Clock, newId: () => string, mail: Mail): Promise<void> {
  await tx.insertMail(newId(), mail, new Date(clock()));
}

/**
 * Records a domain event for other services in the caller's transaction (such as `user.deleted`), owed to each of
 * `destinations`; the event dispatcher (event-dispatcher.ts) delivers it to each after commit. The request id of
 * the call that caused it goes with it, so each delivery's log lines, here and at the destination, name that call.
 */
export async function enqueueEvent(tx: IdentityTx, clock: Clock, newId: () => string, destinations: readonly string[], topic: string, payload: Record<string, unknown>): Promise<void> {
  const requestId = currentRequestId();
  await tx.insertEvent({ id: newId(), topic, payload: requestId ? { ...payload, request_id: requestId } : payload, destinations, now: new Date(clock()) });
}

export interface MailDispatcherOptions {
  store: IdentityStore;
  clock: Clock;
  mailer: Mailer;
  logger: Logger;
  intervalMs: number;
  /** Messages claimed per pass. */
  batchSize?: number;
  /** How long a claimed message is reserved for the replica sending it, ms. */
  leaseMs?: number;
  /** Attempts before a message is given up as failed. */
  maxAttempts?: number;
  /** Extra housekeeping run about once a minute on the same loop (deleting expired rows). */
  housekeeping?: () => Promise<void>;
}

export type MailDispatcher = PollingLoop;

/**
 * Sends pending mail from the outbox. Each pass claims a batch with FOR UPDATE SKIP LOCKED and leases it (so
 * replicas never send the same message twice at once), sends outside the transaction, then marks each message
 * delivered — its body is scrubbed, as reset mail carries a token — or schedules a retry with back-off.
 */
export function createMailDispatcher(options: MailDispatcherOptions): MailDispatcher {
  const { store, clock, logger } = options;
  const batchSize = options.batchSize ?? 20;
  const leaseMs = options.leaseMs ?? 60_000;
  const maxAttempts = options.maxAttempts ?? 10;
  let lastHousekeeping = -Infinity;

  const pass = async (stopped: () => boolean): Promise<number> => {
    const now = clock();
    const claimed = await store.write((tx) => tx.claimMail(new Date(now), new Date(now + leaseMs), batchSize));
    let sent = 0;
    for (const row of claimed) {
      if (stopped()) break;
      const mail = row.payload as Mail;
      try {
        await options.mailer.send(mail);
        await store.direct.markMailSent(row.id, new Date(clock()), { to: mail.to, subject: mail.subject });
        sent++;
      } catch (e) {
        const gaveUp = row.attempts >= maxAttempts;
        const backoffMs = Math.min(3_600_000, 5_000 * 2 ** (row.attempts - 1));
        logger.warn(gaveUp ? "mail failed, giving up" : "mail failed, will retry", { outbox_id: row.id, attempts: row.attempts, error: e });
        await store.direct.markMailFailed(row.id, {
          gaveUp,
          retryTime: new Date(clock() + backoffMs),
          error: e instanceof Error ? e.message.slice(0, 500) : String(e).slice(0, 500),
        });
      }
    }
    if (options.housekeeping && clock() - lastHousekeeping > 60_000) {
      lastHousekeeping = clock();
      await options.housekeeping();
    }
    return sent;
  };

  return createPollingLoop({ name: "mail dispatch", intervalMs: options.intervalMs, logger, pass });
}
