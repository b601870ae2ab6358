/**
 * Statements PostgreSQL gives up on because of other transactions answer codes a client can act on, never
 * INTERNAL: a serialization failure, a deadlock or a lock not available is ABORTED, a statement cut by
 * DATABASE_STATEMENT_TIMEOUT is DEADLINE_EXCEEDED. Each error is made for real on PostgreSQL, and a call
 * stuck behind a lock held elsewhere answers within the statement timeout, changing nothing.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Code } from "@connectrpc/connect";
import { CartService } from "@local-e-grocery/gen/grocery/cart/v1/cart_service_pb.js";
import postgres from "postgres";
import { bearer, clientFor, errorOf } from "../../../test/clients.js";
import { emptyDatabase, registerAndLogin, startTestPlatform, type DataHandle, type TestPlatform } from "../../../test/harness.js";
import { toConnectError } from "../src/errors.js";

const adminUrl = process.env["TEST_DATABASE_URL"];
const skip = adminUrl === undefined && "needs PostgreSQL (TEST_DATABASE_URL): PGlite runs one transaction at a time, so nothing conflicts";

/** A promise and the function that resolves it, for steps of two transactions that must happen in order. */
function gate(): { open: () => void; opened: Promise<void> } {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return { open, opened };
}

/** The error `work` fails with; fails the test when it succeeds. */
async function failureOf(work: Promise<unknown>): Promise<unknown> {
  try {
    await work;
  } catch (e) {
    return e;
  }
  assert.fail("expected the statement to fail");
}

describe("PostgreSQL conflicts and statement timeouts as status codes", { skip }, () => {
  let data: DataHandle;
  let a: postgres.Sql;
  let b: postgres.Sql;
  before(async () => {
    data = await emptyDatabase("postgres");
    const url = data.env["DATABASE_URL"] ?? "";
    a = postgres(url, { max: 1, onnotice: () => {} });
    b = postgres(url, { max: 1, onnotice: () => {} });
    await a`create table slots (id int primary key, n int not null)`;
    await a`insert into slots values (1, 0), (2, 0)`;
  });
  after(async () => {
    await a?.end();
    await b?.end();
    await data?.drop();
  });

  function mapped(e: unknown): { code: string; unexpected: boolean } {
    const { error, unexpected } = toConnectError(e);
    return { code: Code[error.code], unexpected };
  }

  it("maps a statement cut by statement_timeout to DEADLINE_EXCEEDED", async () => {
    const e = await failureOf(a.begin(async (tx) => {
      await tx`set local statement_timeout = 50`;
      await tx`select pg_sleep(2)`;
    }));
    assert.deepEqual(mapped(e), { code: "DeadlineExceeded", unexpected: false });
  });

  it("maps a lock not available to ABORTED", async () => {
    const { open: release, opened: held } = gate();
    const { open: locked, opened: isLocked } = gate();
    const holder = a.begin(async (tx) => {
      await tx`select * from slots where id = 1 for update`;
      locked();
      await held;
    });
    await isLocked;
    const e = await failureOf(b`select * from slots where id = 1 for update nowait`);
    release();
    await holder;
    assert.deepEqual(mapped(e), { code: "Aborted", unexpected: false });
  });

  it("maps a deadlock to ABORTED", async () => {
    // Each transaction holds one row and then asks for the other's: PostgreSQL breaks the cycle by failing one.
    const { open: aHolds, opened: aHeld } = gate();
    const { open: bHolds, opened: bHeld } = gate();
    const results = await Promise.allSettled([
      a.begin(async (tx) => {
        await tx`update slots set n = n + 1 where id = 1`;
        aHolds();
        await bHeld;
        await tx`update slots set n = n + 1 where id = 2`;
      }),
      b.begin(async (tx) => {
        await tx`update slots set n = n + 1 where id = 2`;
        bHolds();
        await aHeld;
        await tx`update slots set n = n + 1 where id = 1`;
      }),
    ]);
    const failed = results.filter((r) => r.status === "rejected");
    assert.equal(failed.length, 1, "PostgreSQL fails exactly one side of the deadlock");
    assert.deepEqual(mapped(failed[0]?.reason), { code: "Aborted", unexpected: false });
  });

  it("maps a serialization failure to ABORTED", async () => {
    const { open: aRead, opened: aHasRead } = gate();
    const { open: bDone, opened: bCommitted } = gate();
    const first = a.begin("isolation level repeatable read", async (tx) => {
      await tx`select n from slots where id = 1`;
      aRead();
      await bCommitted;
      await tx`update slots set n = n + 1 where id = 1`;
    });
    await aHasRead;
    await b`update slots set n = n + 1 where id = 1`;
    bDone();
    assert.deepEqual(mapped(await failureOf(first)), { code: "Aborted", unexpected: false });
  });
});

describe("a call behind a lock held elsewhere", { skip }, () => {
  let tp: TestPlatform;
  let side: postgres.Sql;
  before(async () => {
    tp = await startTestPlatform({ backend: "postgres", env: { DATABASE_STATEMENT_TIMEOUT: "1s" } });
    side = postgres(tp.platform.config.databaseUrl ?? "", { max: 1, onnotice: () => {} });
  });
  after(async () => {
    await side?.end();
    await tp?.close();
  });

  it("answers DEADLINE_EXCEEDED within the statement timeout and adds nothing", async () => {
    const user = await registerAndLogin(tp.url);
    const carts = clientFor(CartService, tp.url);
    const auth = bearer(user.accessToken);
    const { cart } = await carts.createCart({ name: "weekly" }, auth);
    const cartId = cart?.id ?? "";
    const milk = { productId: "milk", shopId: "shop-1", name: "Milk", unitPrice: { currencyCode: "EUR", amountMinor: 129n }, quantity: 1 };

    const { open: release, opened: held } = gate();
    const { open: locked, opened: isLocked } = gate();
    const holder = side.begin(async (tx) => {
      await tx`select id from cart.carts where id = ${cartId} for update`;
      locked();
      await held;
    });
    await isLocked;
    const started = Date.now();
    const error = await errorOf(carts.addItem({ cartId, item: milk }, { ...auth, timeoutMs: 10_000 }));
    const took = Date.now() - started;
    release();
    await holder;

    assert.equal(Code[error.code], "DeadlineExceeded", error.message);
    assert.ok(took >= 900 && took < 5_000, `answered after ${took} ms, with a 1 s statement timeout and a 10 s deadline`);
    const after = await carts.getCart({ cartId }, auth);
    assert.equal(after.cart?.items.length, 0, "the cut call added nothing");
    assert.equal(after.cart?.version, cart?.version, "nor changed the version");
    await carts.addItem({ cartId, item: milk }, auth);
    assert.equal((await carts.getCart({ cartId }, auth)).cart?.items.length, 1, "the same call succeeds once the lock is gone");
  });
});
