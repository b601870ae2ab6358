/**
 * Outbox retention: an event every destination acknowledged is deleted, with its delivery rows, once it has been
 * delivered for longer than OUTBOX_RETENTION; a younger one stays, and so does one that some destination has not
 * acknowledged yet, however old, with the deliveries that did succeed. Destinations are the in-process cart and
 * "ledger", a UserDataService on its own socket that refuses the users it is told to.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { sql } from "drizzle-orm";
import { Code, ConnectError } from "@connectrpc/connect";
import { UserDataService } from "@local-e-grocery/gen/grocery/userdata/v1/userdata_service_pb.js";
import { rowsOf } from "@local-e-grocery/platform/db.js";
import { createRpcServer, type RpcServer } from "@local-e-grocery/platform/server.js";
import { backends } from "../../../test/harness.js";
import { bearerOf, newAccount, startIdentity, type Account, type IdentityTestEnv } from "./identity-helpers.js";

const MINUTE = 60_000;

/** A holder of user data that acknowledges every purge except those of `refused` users (UNAVAILABLE). */
async function ledgerServer() {
  const refused = new Set<string>();
  const attempts: string[] = [];
  const server: RpcServer = createRpcServer({
    interceptors: [],
    routes: (router) =>
      router.service(UserDataService, {
        purgeUser: (req) => {
          attempts.push(req.userId);
          if (refused.has(req.userId)) throw new ConnectError("ledger is catching up", Code.Unavailable);
          return { rowsDeleted: 0n };
        },
      }),
  });
  const port = await server.listen(0, "127.0.0.1");
  return { port, refused, attempts, close: () => server.close(100) };
}

async function until<T>(what: string, probe: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let value = await probe(); ; value = await probe()) {
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(value)} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

for (const backend of backends) {
  describe(`outbox retention (${backend})`, () => {
    let t: IdentityTestEnv;
    let ledger: Awaited<ReturnType<typeof ledgerServer>>;
    before(async () => {
      ledger = await ledgerServer();
      t = await startIdentity(backend, {
        USER_DATA_SERVICES: "cart,ledger",
        LEDGER_SERVICE_ADDR: `127.0.0.1:${ledger.port}`,
        OUTBOX_RETENTION: "1h",
        EVENT_DISPATCH_INTERVAL_MS: "100",
      });
    });
    after(async () => {
      await t?.close();
      await ledger?.close();
    });

    /** The user's events with their delivery rows, as stored: `event status: destination=status …`. */
    const outboxOf = async (userId: string) =>
      rowsOf<{ line: string }>(
        await t.tp.platform.database.db.execute(sql`
          select o.status || ':' || coalesce(string_agg(' ' || d.destination || '=' || d.status, '' order by d.destination), '') as line
          from identity.outbox o left join identity.outbox_deliveries d on d.event_id = o.id
          where o.topic <> 'mail' and o.payload->>'user_id' = ${userId}
          group by o.id, o.status`),
      ).map((r) => r.line);
    /** How many delivery rows belong to these events, whether or not the events are still there. */
    const deliveryRows = async (eventIds: readonly string[]) => {
      const [row] = rowsOf<{ n: number }>(
        await t.tp.platform.database.db.execute(sql`select count(*)::int as n from identity.outbox_deliveries where event_id::text in (${sql.join(eventIds.map((id) => sql`${id}`), sql`, `)})`),
      );
      return row?.n ?? -1;
    };
    const eventIdsOf = async (userId: string) =>
      rowsOf<{ id: string }>(await t.tp.platform.database.db.execute(sql`select id::text as id from identity.outbox where topic <> 'mail' and payload->>'user_id' = ${userId}`)).map((r) => r.id);
    const deleteAccount = (a: Account) => t.users.deleteMe({ password: a.password }, bearerOf(a));

    it("deletes events delivered longer ago than OUTBOX_RETENTION with their deliveries, and keeps younger and unacknowledged ones", async () => {
      // Two deletions: one every destination acknowledges, one ledger refuses.
      const old = await newAccount(t);
      const stuck = await newAccount(t);
      ledger.refused.add(stuck.userId);
      await deleteAccount(old);
      await deleteAccount(stuck);
      const delivered = ["delivered: cart=delivered ledger=delivered"];
      const unacknowledged = ["pending: cart=delivered ledger=pending"];
      await until("the first deletion delivered", () => outboxOf(old.userId), (rows) => rows.join() === delivered.join());
      await until(
        "the second deletion refused by ledger",
        async () => ({ rows: await outboxOf(stuck.userId), tries: ledger.attempts.filter((id) => id === stuck.userId).length }),
        (s) => s.rows.join() === unacknowledged.join() && s.tries > 0,
      );
      const oldEvents = await eventIdsOf(old.userId);
      assert.equal(await deliveryRows(oldEvents), 2);

      // 40 minutes on, a third deletion that every destination acknowledges.
      t.clock.advance(40 * MINUTE);
      const young = await newAccount(t);
      await deleteAccount(young);
      await until("the third deletion delivered", () => outboxOf(young.userId), (rows) => rows.join() === delivered.join());
      assert.deepEqual(await outboxOf(old.userId), delivered, "40 minutes after delivery, within the hour kept");

      // 70 minutes after the first two, 30 after the third: housekeeping (about once a minute of clock time)
      // deletes the first; the same statement leaves the others.
      t.clock.advance(30 * MINUTE);
      await until("the first event pruned", () => outboxOf(old.userId), (rows) => rows.length === 0);
      assert.equal(await deliveryRows(oldEvents), 0, "its delivery rows went with it");
      assert.deepEqual(await outboxOf(young.userId), delivered, "delivered 30 minutes ago: kept");
      assert.deepEqual(await outboxOf(stuck.userId), unacknowledged, "70 minutes old but not acknowledged by ledger: kept, its cart delivery too");
    });
  });
}
