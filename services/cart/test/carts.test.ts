/** The cart use cases against an in-memory CartStore: orchestration, clock and id injection, pruning. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Code } from "@connectrpc/connect";
import { DomainError } from "@local-e-grocery/platform/errors.js";
import { createCarts } from "../src/carts.js";
import { defaultCartConfig } from "../src/config.js";
import type { CartLine, CartRecord, CartSnapshot } from "../src/model.js";
import type { CartStore, CartTx } from "../src/store.js";

interface FakeStore extends CartStore {
  prunes: number[];
  failPrune: boolean;
}

/** A CartStore over plain maps; transactions run one at a time and roll back by restoring a copy. */
function createFakeStore(): FakeStore {
  let carts = new Map<string, CartRecord & { nameKey: string }>();
  let lines = new Map<string, CartLine[]>();
  let requests = new Map<string, { fingerprint: string; result: CartSnapshot | null; createTime: number }>();
  const tombstones = new Map<string, number>();
  const tx: CartTx = {
    async lockOwner() {},
    async countCarts(owner) {
      return [...carts.values()].filter((c) => c.ownerId === owner).length;
    },
    async nameTaken(owner, key, except) {
      return [...carts.values()].some((c) => c.ownerId === owner && c.nameKey === key && c.id !== except);
    },
    async insertCart(cart, nameKey) {
      carts.set(cart.id, { ...cart, nameKey });
    },
    async findCart(owner, id) {
      const c = carts.get(id);
      if (!c || c.ownerId !== owner) return undefined;
      const { nameKey: _, ...record } = c;
      return record;
    },
    async cartWithLines(owner, id) {
      const c = carts.get(id);
      if (!c || c.ownerId !== owner) return undefined;
      const { nameKey: _, ...record } = c;
      return { ...record, items: [...(lines.get(id) ?? [])] };
    },
    async listCarts(owner, after, limit) {
      return [...carts.values()]
        .filter((c) => c.ownerId === owner && (!after || c.createTime > after.createTime || (c.createTime === after.createTime && c.id > after.id)))
        .sort((a, b) => a.createTime - b.createTime || (a.id < b.id ? -1 : 1))
        .slice(0, limit)
        .map(({ nameKey: _, ...record }) => ({ ...record, items: [...(lines.get(record.id) ?? [])] }));
    },
    async lines(ids) {
      return new Map(ids.flatMap((id) => (lines.get(id)?.length ? [[id, [...(lines.get(id) ?? [])]] as const] : [])));
    },
    async insertLine(id, line) {
      lines.set(id, [...(lines.get(id) ?? []), line]);
    },
    async updateLine(id, line) {
      lines.set(id, (lines.get(id) ?? []).map((l) => (l.productId === line.productId && l.shopId === line.shopId ? line : l)));
    },
    async deleteLine(id, productId, shopId) {
      lines.set(id, (lines.get(id) ?? []).filter((l) => l.productId !== productId || l.shopId !== shopId));
    },
    async deleteLines(id) {
      lines.delete(id);
    },
    async updateCart(id, change) {
      const c = carts.get(id);
      if (!c) return;
      carts.set(id, { ...c, version: change.version, updateTime: change.updateTime, ...(change.name ? { name: change.name.name, nameKey: change.name.key } : {}) });
    },
    async deleteCart(id) {
      carts.delete(id);
      lines.delete(id);
    },
    async claimRequest(claim) {
      const key = `${claim.ownerId}/${claim.requestId}`;
      const existing = requests.get(key);
      if (existing && existing.createTime >= claim.expiredBefore) return false;
      requests.set(key, { fingerprint: claim.fingerprint, result: null, createTime: claim.createTime });
      return true;
    },
    async findRequest(owner, requestId) {
      return requests.get(`${owner}/${requestId}`);
    },
    async saveRequestResult(owner, requestId, result) {
      const r = requests.get(`${owner}/${requestId}`);
      if (r) r.result = result;
    },
    async isPurged(owner, now) {
      return (tombstones.get(owner) ?? 0) > now;
    },
    async leaveTombstone(owner, until) {
      tombstones.set(owner, Math.max(until, tombstones.get(owner) ?? 0));
    },
    async purgeOwner(owner) {
      let n = 0;
      for (const [id, c] of carts) {
        if (c.ownerId !== owner) continue;
        n += 1 + (lines.get(id)?.length ?? 0);
        carts.delete(id);
        lines.delete(id);
      }
      for (const key of requests.keys()) if (key.startsWith(`${owner}/`) && requests.delete(key)) n++;
      return n;
    },
  };
  const store: FakeStore = {
    prunes: [],
    failPrune: false,
    async write(fn) {
      const saved = [new Map(carts), new Map([...lines].map(([k, v]) => [k, [...v]])), new Map(requests)] as const;
      try {
        return await fn(tx);
      } catch (e) {
        [carts, lines, requests] = [saved[0], saved[1], saved[2]];
        throw e;
      }
    },
    read: (fn) => fn(tx),
    readOne: (fn) => fn(tx),
    async pruneRequests(before) {
      store.prunes.push(before);
      if (store.failPrune) throw new Error("database hiccup");
      return 0;
    },
  };
  return store;
}

function setup() {
  let now = 1_000_000;
  let ids = 0;
  const store = createFakeStore();
  const carts = createCarts({
    store,
    config: defaultCartConfig,
    clock: () => now,
    newId: () => `00000000-0000-4000-8000-${(++ids).toString().padStart(12, "0")}`,
  });
  return { store, carts, advance: (ms: number) => (now += ms), now: () => now };
}

const milk = { productId: "milk", shopId: "s1", name: "Milk", unitPrice: { currencyCode: "EUR", amountMinor: 129n }, quantity: 1 };
const rid = "8c2a5a52-6a35-4a0e-a2a5-6f2f7e0d5b11";

async function code(p: Promise<unknown>): Promise<Code> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof DomainError);
    return e.code;
  }
  assert.fail("expected a failure");
}

describe("createCarts", () => {
  it("uses the injected id generator and clock", async () => {
    const { carts, advance, now } = setup();
    const c = await carts.createCart("u1", { name: "weekly" });
    assert.equal(c.id, "00000000-0000-4000-8000-000000000001");
    assert.deepEqual([c.createTime, c.updateTime, c.version], [now(), now(), 1n]);
    advance(5000);
    const after = await carts.addItem("u1", { cartId: c.id, item: milk, requestId: "" });
    assert.deepEqual([after.createTime, after.updateTime, after.version], [now() - 5000, now(), 2n]);
  });

  it("a refused change leaves the store as it was", async () => {
    const { carts } = setup();
    const c = await carts.createCart("u1", { name: "weekly" });
    await carts.addItem("u1", { cartId: c.id, item: milk, requestId: "" });
    assert.equal(await code(carts.addItem("u1", { cartId: c.id, item: { ...milk, productId: "x", unitPrice: { currencyCode: "USD", amountMinor: 1n } }, requestId: rid })), Code.FailedPrecondition);
    assert.equal(await code(carts.clearCart("u1", { cartId: c.id, expectedVersion: 1n })), Code.Aborted);
    const got = await carts.getCart("u1", { cartId: c.id });
    assert.deepEqual([got.version, got.items.length], [2n, 1]);
    // The failed call's request id was not consumed.
    assert.equal((await carts.addItem("u1", { cartId: c.id, item: { ...milk, productId: "x" }, requestId: rid })).version, 3n);
  });

  it("replays an applied request id from its snapshot", async () => {
    const { carts } = setup();
    const c = await carts.createCart("u1", { name: "weekly" });
    const first = await carts.addItem("u1", { cartId: c.id, item: milk, requestId: rid });
    await carts.renameCart("u1", { cartId: c.id, name: "renamed" });
    assert.deepEqual(await carts.addItem("u1", { cartId: c.id, item: milk, requestId: rid.toUpperCase() }), first);
    assert.equal(await code(carts.addItem("u1", { cartId: c.id, item: { ...milk, quantity: 2 }, requestId: rid })), Code.InvalidArgument);
  });

  it("prunes expired request ids at most every five minutes, and a failed prune does not fail the call", async () => {
    const { store, carts, advance, now } = setup();
    const c = await carts.createCart("u1", { name: "weekly" });
    const add = (requestId: string) => carts.addItem("u1", { cartId: c.id, item: milk, requestId });
    await add("00000000-0000-4000-8000-0000000000a1");
    assert.deepEqual(store.prunes, [now() - 24 * 3600_000]);
    advance(60_000);
    await add("00000000-0000-4000-8000-0000000000a2");
    assert.equal(store.prunes.length, 1);
    // Calls without a request id never prune.
    advance(10 * 60_000);
    await carts.addItem("u1", { cartId: c.id, item: milk, requestId: "" });
    assert.equal(store.prunes.length, 1);
    store.failPrune = true;
    assert.equal((await add("00000000-0000-4000-8000-0000000000a3")).version, 5n);
    assert.equal(store.prunes.length, 2);
  });

  it("lists page by page with tokens from the last cart of each page", async () => {
    const { carts, advance } = setup();
    for (const name of ["a", "b", "c"]) {
      await carts.createCart("u1", { name });
      advance(1);
    }
    const first = await carts.listCarts("u1", { pageSize: 2, pageToken: "" });
    assert.deepEqual(first.carts.map((c) => c.name), ["a", "b"]);
    const second = await carts.listCarts("u1", { pageSize: 2, pageToken: first.nextPageToken });
    assert.deepEqual([second.carts.map((c) => c.name), second.nextPageToken], [["c"], ""]);
  });
  it("purges one owner's carts, lines and request ids, and refuses that owner's writes until the tombstone expires", async () => {
    const { carts, advance } = setup();
    const c = await carts.createCart("u1", { name: "weekly" });
    await carts.addItem("u1", { cartId: c.id, item: milk, requestId: rid });
    await carts.createCart("u2", { name: "weekly" });
    assert.equal(await carts.purgeUser("u1"), 3);
    assert.equal(await carts.purgeUser("u1"), 0);
    assert.equal((await carts.listCarts("u2", { pageSize: 0, pageToken: "" })).carts.length, 1);
    assert.equal(await code(carts.createCart("u1", { name: "again" })), Code.PermissionDenied);
    assert.equal(await code(carts.addItem("u1", { cartId: c.id, item: milk, requestId: rid })), Code.PermissionDenied);
    advance(defaultCartConfig.purgeTombstoneTtlMs - 1);
    assert.equal(await code(carts.createCart("u1", { name: "again" })), Code.PermissionDenied);
    advance(1);
    // The tombstone's `until` is exclusive: at that instant the owner may write again.
    assert.equal((await carts.createCart("u1", { name: "again" })).name, "again");
  });
});
