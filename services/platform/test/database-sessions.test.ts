/**
 * How db.ts talks to PostgreSQL: every query goes out as a prepared statement (planned once per connection, not
 * on every call), inside transactions too, and write transactions are READ COMMITTED from the session's own
 * setting, whatever the database's default, without a SET TRANSACTION per transaction.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { sql } from "drizzle-orm";
import postgres from "postgres";
import { emptyDatabase, type DataHandle } from "../../../test/harness.js";
import { openDatabase, rowsOf, type Database } from "../src/db.js";
import { transactionBoundary } from "../src/store-boundary.js";

const adminUrl = process.env["TEST_DATABASE_URL"];

describe("PostgreSQL sessions (db.ts)", { skip: adminUrl === undefined && "needs PostgreSQL (TEST_DATABASE_URL): PGlite has no pool and no prepared-statement cache" }, () => {
  let data: DataHandle;
  let database: Database;
  let url: string;
  const boundary = () => transactionBoundary(database.db, (handle) => handle);

  before(async () => {
    data = await emptyDatabase("postgres");
    url = data.env["DATABASE_URL"] ?? "";
    const admin = postgres(url, { max: 1, onnotice: () => {} });
    try {
      // A database whose operator made SERIALIZABLE the default: the stores must not inherit it.
      await admin.unsafe(`alter database "${new URL(url).pathname.slice(1)}" set default_transaction_isolation = 'serializable'`);
    } finally {
      await admin.end();
    }
    // One connection, so consecutive queries outside a transaction share its statement cache.
    database = await openDatabase({ url, dataDir: data.env["DATA_DIR"] ?? "", maxConnections: 1 });
  });
  after(async () => {
    await database?.close(0);
    await data?.drop();
  });

  it("runs write transactions READ COMMITTED where the database's default is SERIALIZABLE", async () => {
    const plain = postgres(url, { max: 1, onnotice: () => {} });
    try {
      const [row] = await plain.begin((tx) => tx`select current_setting('transaction_isolation') as level`);
      assert.equal(row?.["level"], "serializable", "the database default applies to a client that does not set its own");
    } finally {
      await plain.end();
    }
    const level = await boundary().write(async (tx) => String(rowsOf<{ level: string }>(await tx.execute(sql`select current_setting('transaction_isolation') as level`))[0]?.level));
    assert.equal(level, "read committed");
    // Reads keep their explicit REPEATABLE READ.
    const readLevel = await boundary().read(async (tx) => String(rowsOf<{ level: string }>(await tx.execute(sql`select current_setting('transaction_isolation') as level`))[0]?.level));
    assert.equal(readLevel, "repeatable read");
  });

  it("prepares every query on its connection, inside a transaction and outside, and reuses it", async () => {
    const prepared = async (db: Database["db"]) =>
      rowsOf<{ statement: string }>(await db.execute(sql`select statement from pg_prepared_statements`)).map((r) => r.statement);
    const inside = await boundary().write(async (tx) => {
      await tx.execute(sql`select ${41}::int + 1 as probe_inside`);
      return prepared(tx);
    });
    assert.ok(inside.some((s) => s.includes("probe_inside")), `prepared in the transaction: ${inside.join(" | ")}`);
    await database.db.execute(sql`select ${1}::int as probe_outside`);
    await database.db.execute(sql`select ${2}::int as probe_outside`);
    const outside = await prepared(database.db);
    assert.equal(outside.filter((s) => s.includes("probe_outside")).length, 1, "the same text is prepared once, then reused");
    assert.ok(outside.some((s) => s.includes("probe_inside")), "the transaction ran on the pool's connection, whose statements stay");
  });
});
