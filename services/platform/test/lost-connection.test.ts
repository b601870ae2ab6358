/**
 * A PostgreSQL connection that dies under a transaction fails that transaction's statements with an error the
 * caller can catch; it never throws outside a promise (which would end the process), and the pool keeps serving,
 * from the very next transaction on. Unrepaired postgres.js 3.4.9 hangs such a statement forever or throws from a
 * setImmediate on a null socket (porsager/postgres#1208), and lets the lost transaction's last statement fail
 * the first one of the session that replaces it; scripts/patch-dependencies.mjs repairs both at install.
 *
 * test-runner: own process — it watches process-wide uncaughtException, which another file's stray error would trip.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { sql } from "drizzle-orm";
import { openDatabase, rowsOf, type Database } from "../src/db.js";

const url = process.env["TEST_DATABASE_URL"];

describe("a PostgreSQL connection lost under a transaction", { skip: url === undefined && "needs PostgreSQL (TEST_DATABASE_URL)" }, () => {
  let database: Database;
  let killer: Database;
  let dataDir: string;
  const uncaught: unknown[] = [];
  const onUncaught = (e: unknown) => uncaught.push(e);

  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "lost-connection-"));
    database = await openDatabase({ url, dataDir, maxConnections: 2 });
    killer = await openDatabase({ url, dataDir, maxConnections: 1 });
    process.on("uncaughtException", onUncaught);
  });
  after(async () => {
    process.off("uncaughtException", onUncaught);
    await database.close(0);
    await killer.close(0);
    await rm(dataDir, { recursive: true, force: true });
  });

  it("rejects the transaction's later statements, throws nothing uncaught, and the pool still answers", async () => {
    // postgres.js rejects the transaction as soon as its connection closes, while the callback (a handler
    // mid-way through its work) goes on issuing statements on that connection: those are the dangerous ones.
    let done!: (outcomes: string[]) => void;
    const callbackOutcomes = new Promise<string[]>((r) => (done = r));
    const transaction = database.db.transaction(async (tx) => {
      const outcomes: string[] = [];
      try {
        const pid = rowsOf<{ pid: number }>(await tx.execute(sql`select pg_backend_pid() as pid`))[0]?.pid;
        await killer.db.execute(sql`select pg_terminate_backend(${pid})`);
        await new Promise((r) => setTimeout(r, 200));
        for (let i = 0; i < 3; i++) {
          let timer: NodeJS.Timeout | undefined;
          const bound = new Promise<string>((r) => (timer = setTimeout(() => r("no answer after 3 s"), 3000)));
          const outcome = tx.execute(sql`select 1`).then(
            () => "answered",
            (e: unknown) => ((e as { cause?: { code?: string } }).cause ?? (e as { code?: string })).code ?? String(e),
          );
          outcomes.push(await Promise.race([outcome, bound]));
          clearTimeout(timer);
        }
      } finally {
        done(outcomes);
      }
    });
    await assert.rejects(transaction, { code: "CONNECTION_CLOSED" });
    assert.deepEqual(await callbackOutcomes, ["CONNECTION_CLOSED", "CONNECTION_CLOSED", "CONNECTION_CLOSED"]);
    // Both pool slots serve transactions again, at once: the lost connection was given back, not leaked, and
    // nothing of its session reaches the one that replaces it.
    const again = await Promise.all(
      Array.from({ length: 4 }, () => database.db.transaction(async (tx) => rowsOf<{ one: number }>(await tx.execute(sql`select 1 as one`))[0]?.one)),
    );
    assert.deepEqual(again, [1, 1, 1, 1]);
    // A write deferred on the dead connection runs on the immediate after it was queued; these transactions took
    // several network round trips since, each an event-loop turn with its immediates, and one more turn follows
    // here. So every such write has run by now, and anything it threw was recorded.
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(uncaught, []);
  });
});
