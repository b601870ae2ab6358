import { and, eq, inArray, lte, lt, ne, sql } from "drizzle-orm";
import { rowsOf, type Db } from "@local-e-grocery/platform/db.js";
import type { ClaimedDelivery, ClaimedMail, PendingDelivery } from "../model.js";
import { outbox, outboxDeliveries } from "../schema.js";

/** Queries over identity.outbox and identity.outbox_deliveries. */
export interface OutboxQueries {
  /** Queues a mail (its payload) as outbox row `id`, sendable from `now`. */
  insertMail(id: string, payload: unknown, now: Date): Promise<void>;
  /**
   * Records an event owed to each of `destinations`, one delivery row per destination; with none it is stored
   * as delivered already.
   */
  insertEvent(event: { id: string; topic: string; payload: Record<string, unknown>; destinations: readonly string[]; now: Date }): Promise<void>;
  /**
   * Claims up to `limit` pending mails due at `now` (FOR UPDATE SKIP LOCKED, so concurrent claimers take
   * different ones), oldest first, leasing them until `leaseUntil` and counting the attempt.
   */
  claimMail(now: Date, leaseUntil: Date, limit: number): Promise<ClaimedMail[]>;
  /** Marks a mail sent at `time`, keeping only `payload` (its body is scrubbed). */
  markMailSent(id: string, time: Date, payload: unknown): Promise<void>;
  /** Records a failed send: pending again from `retryTime`, or failed for good. */
  markMailFailed(id: string, failure: { gaveUp: boolean; retryTime: Date; error: string }): Promise<void>;
  /**
   * Claims up to `limit` pending deliveries due at `now` (FOR UPDATE SKIP LOCKED) and leases them until
   * `leaseUntil` in the same statement, counting the attempt.
   */
  claimDeliveries(now: Date, leaseUntil: Date, limit: number): Promise<ClaimedDelivery[]>;
  /** A failed delivery is retried from `retryTime`, unless it was delivered meanwhile. */
  deferDelivery(eventId: string, destination: string, retryTime: Date, error: string): Promise<void>;
  /** Records an acknowledged delivery; the event is delivered once every destination has acknowledged it. */
  markDelivered(eventId: string, destination: string, time: Date): Promise<void>;
  /** Up to `limit` unacknowledged deliveries ordered by (event time, event id, destination), after `after`. */
  listPendingDeliveries(after: { createTime: Date; eventId: string; destination: string } | undefined, limit: number): Promise<PendingDelivery[]>;
  deleteMailDeliveredBefore(time: Date): Promise<void>;
  /** Deletes events delivered before `time`; their delivery rows go with them. */
  deleteEventsDeliveredBefore(time: Date): Promise<void>;
}

export function outboxQueries(db: Db): OutboxQueries {
  return {
    async insertMail(id, payload, now) {
      await db.insert(outbox).values({ id, topic: "mail", payload, createTime: now, availableTime: now });
    },
    async insertEvent({ id, topic, payload, destinations, now }) {
      await db.insert(outbox).values({ id, topic, payload, createTime: now, availableTime: now, ...(destinations.length === 0 ? { status: "delivered", deliverTime: now } : {}) });
      if (destinations.length > 0) await db.insert(outboxDeliveries).values(destinations.map((destination) => ({ eventId: id, destination, availableTime: now })));
    },
    async claimMail(now, leaseUntil, limit) {
      const due = await db
        .select({ id: outbox.id })
        .from(outbox)
        .where(and(eq(outbox.topic, "mail"), eq(outbox.status, "pending"), lte(outbox.availableTime, now)))
        .orderBy(outbox.availableTime)
        .limit(limit)
        .for("update", { skipLocked: true });
      if (due.length === 0) return [];
      const rows = await db
        .update(outbox)
        .set({ availableTime: leaseUntil, attempts: sql`${outbox.attempts} + 1` })
        .where(inArray(outbox.id, due.map((r) => r.id)))
        .returning();
      return rows.map((r) => ({ id: r.id, payload: r.payload, attempts: r.attempts }));
    },
    async markMailSent(id, time, payload) {
      await db.update(outbox).set({ status: "delivered", deliverTime: time, payload, lastError: null }).where(eq(outbox.id, id));
    },
    async markMailFailed(id, { gaveUp, retryTime, error }) {
      await db
        .update(outbox)
        .set({ status: gaveUp ? "failed" : "pending", availableTime: retryTime, lastError: error })
        .where(eq(outbox.id, id));
    },
    async claimDeliveries(now, leaseUntil, limit) {
      const rows = rowsOf<{ event_id: string; destination: string; attempts: number; topic: string; payload: ClaimedDelivery["payload"]; seq: string }>(
        await db.execute(sql`
        with due as (
          select event_id, destination from identity.outbox_deliveries
          where status = 'pending' and available_time <= ${now.toISOString()}::timestamptz
          order by available_time
          limit ${limit}
          for update skip locked
        )
        update identity.outbox_deliveries d
        set available_time = ${leaseUntil.toISOString()}::timestamptz, attempts = d.attempts + 1
        from due, identity.outbox o
        where d.event_id = due.event_id and d.destination = due.destination and o.id = d.event_id
        returning d.event_id, d.destination, d.attempts, o.topic, o.payload, o.seq::text as seq`),
      );
      return rows.map((r) => ({ eventId: r.event_id, destination: r.destination, attempts: r.attempts, topic: r.topic, payload: r.payload, seq: r.seq }));
    },
    async deferDelivery(eventId, destination, retryTime, error) {
      await db.execute(sql`
            update identity.outbox_deliveries
            set available_time = ${retryTime.toISOString()}::timestamptz, last_error = ${error}
            where event_id = ${eventId} and destination = ${destination} and status = 'pending'`);
    },
    async markDelivered(eventId, destination, time) {
      // ISO text: drizzle's postgres.js driver leaves Date parameters of raw SQL to a serializer it turned off.
      const at = time.toISOString();
      // One statement: a process dying between two would leave an event whose every delivery is done still
      // pending, never pruned. The outer update sees the deliveries as they were before this one, hence the
      // destination is left out of its check.
      await db.execute(sql`
          with done as (
            update identity.outbox_deliveries set status = 'delivered', deliver_time = ${at}::timestamptz, last_error = null
            where event_id = ${eventId} and destination = ${destination}
            returning event_id
          )
          update identity.outbox set status = 'delivered', deliver_time = ${at}::timestamptz
          where id in (select event_id from done) and status = 'pending'
            and not exists (
              select 1 from identity.outbox_deliveries
              where event_id = ${eventId} and destination <> ${destination} and status <> 'delivered'
            )`);
    },
    async listPendingDeliveries(after, limit) {
      const raw = rowsOf<{ event_id: string; topic: string; user_id: string | null; destination: string; attempts: number; create_time: Date | string; available_time: Date | string; last_error: string | null }>(
        await db.execute(sql`
      select d.event_id, o.topic, o.payload->>'user_id' as user_id, d.destination, d.attempts, o.create_time, d.available_time, d.last_error
      from identity.outbox_deliveries d join identity.outbox o on o.id = d.event_id
      where d.status = 'pending'
        ${after ? sql`and (o.create_time, d.event_id, d.destination) > (${after.createTime.toISOString()}::timestamptz, ${after.eventId}::uuid, ${after.destination})` : sql``}
      order by o.create_time, d.event_id, d.destination
      limit ${limit}`),
      );
      return raw.map((r) => ({
        eventId: r.event_id,
        topic: r.topic,
        userId: r.user_id ?? "",
        destination: r.destination,
        attempts: r.attempts,
        createTime: new Date(r.create_time),
        nextAttemptTime: new Date(r.available_time),
        lastError: r.last_error ?? "",
      }));
    },
    async deleteMailDeliveredBefore(time) {
      await db.delete(outbox).where(and(eq(outbox.topic, "mail"), eq(outbox.status, "delivered"), lt(outbox.deliverTime, time)));
    },
    async deleteEventsDeliveredBefore(time) {
      await db.delete(outbox).where(and(ne(outbox.topic, "mail"), eq(outbox.status, "delivered"), lt(outbox.deliverTime, time)));
    },
  };
}
