/**
 * A postgres.js transaction owns its connection from BEGIN to COMMIT, however full the connection's pipeline is
 * when BEGIN is written. Unrepaired postgres.js 3.4.9 skips the reservation when BEGIN fills the pipeline or meets
 * socket back-pressure: the transaction fails with UNSAFE_TRANSACTION, and the pool may run other callers' queries
 * inside it (porsager/postgres#823, #1189, #1210). scripts/patch-dependencies.mjs repairs it at install.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import postgres from "postgres";

const url = process.env["TEST_DATABASE_URL"];

describe("postgres.js transactions reserve their connection", { skip: url === undefined && "needs PostgreSQL (TEST_DATABASE_URL)" }, () => {
  const inOneTransaction = (sql: postgres.Sql) =>
    sql.begin(async (tx) => {
      const [a] = await tx`select pg_backend_pid() as pid, txid_current()::text as xid`;
      const [b] = await tx`select pg_backend_pid() as pid, txid_current()::text as xid`;
      return { first: { ...a }, second: { ...b } };
    });

  it("when BEGIN is the query that fills the pipeline (max_pipeline 0 and 1)", async () => {
    for (const maxPipeline of [0, 1]) {
      // max_pipeline is a postgres.js option its typings leave out.
      const options = { max: 2, max_pipeline: maxPipeline, onnotice: () => {} };
      const sql = postgres(url ?? "", options);
      try {
        const { first, second } = await inOneTransaction(sql);
        assert.deepEqual(first, second, `max_pipeline ${maxPipeline}: both statements in the same backend and transaction`);
        // The connection went back to the pool outside any transaction.
        const [after] = await sql`select txid_current_if_assigned() as xid`;
        assert.equal(after?.["xid"], null, `max_pipeline ${maxPipeline}: no transaction left open`);
      } finally {
        await sql.end({ timeout: 2 });
      }
    }
  });

  it("under load, with every connection busy and transactions queued behind plain queries", async () => {
    const options = { max: 3, max_pipeline: 2, onnotice: () => {} };
    const sql = postgres(url ?? "", options);
    try {
      const outcomes: PromiseSettledResult<unknown>[] = [];
      for (let round = 0; round < 10; round++) {
        const sleepers = Array.from({ length: 3 }, () => sql`select pg_sleep(0.05)`);
        const plain = Array.from({ length: 6 }, (_, n) => sql`select ${n}::int as n, txid_current_if_assigned() as xid`);
        const transactions = Array.from({ length: 5 }, () => inOneTransaction(sql));
        const settled = await Promise.allSettled([...sleepers, ...plain, ...transactions]);
        outcomes.push(...settled);
        for (const t of settled.slice(9)) {
          if (t.status === "fulfilled") {
            const { first, second } = t.value as { first: unknown; second: unknown };
            assert.deepEqual(first, second, "a transaction's statements share one backend and transaction");
          }
        }
        for (const p of settled.slice(3, 9)) {
          // A plain query that ran inside someone's transaction would see that transaction's id.
          if (p.status === "fulfilled") assert.equal((p.value as unknown as { xid: unknown }[])[0]?.xid, null, "a plain query ran outside any transaction");
        }
      }
      const failures = outcomes.filter((o) => o.status === "rejected").map((o) => String((o as PromiseRejectedResult).reason));
      assert.deepEqual(failures, []);
    } finally {
      await sql.end({ timeout: 2 });
    }
  });
});
