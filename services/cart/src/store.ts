import { and, asc, count, eq, inArray, lt, ne, sql } from "drizzle-orm";
import { transactionBoundary, type TransactionBoundary } from "@local-e-grocery/platform/store-boundary.js";
import type { Db } from "@local-e-grocery/platform/db.js";
import { alreadyExists, sqlState } from "@local-e-grocery/platform/errors.js";
import { isPurged, leaveTombstone } from "@local-e-grocery/platform/tombstones.js";
import type { CartCursor } from "./cart-cursor.js";
import type { CartLine, CartRecord, CartSnapshot, CartView } from "./model.js";
import { addItemRequests, cartItems, carts, purgeTombstones } from "./schema.js";

/**
 * The cart service's queries, each run inside a transaction the domain opens explicitly. Methods that lock say so;
 * ownership is part of every cart lookup, so another user's cart is simply absent.
 */
export interface CartTx {
  /** Serialises changes that depend on all of an owner's carts (count limit, names) until the transaction ends. */
  lockOwner(ownerId: string): Promise<void>;
  countCarts(ownerId: string): Promise<number>;
  /** True when another of the owner's carts (not `exceptCartId`) has this name key. */
  nameTaken(ownerId: string, nameKey: string, exceptCartId?: string): Promise<boolean>;
  /** Inserts a cart; a name key already used by the owner raises ALREADY_EXISTS. */
  insertCart(cart: CartRecord, nameKey: string): Promise<void>;
  /** The owner's cart, or undefined; with `lock` the row stays locked (FOR UPDATE) until the transaction ends. */
  findCart(ownerId: string, cartId: string, lock: boolean): Promise<CartRecord | undefined>;
  /** The owner's cart with its lines ordered by position, read in one statement; undefined when absent. */
  cartWithLines(ownerId: string, cartId: string): Promise<CartView | undefined>;
  /** Up to `limit` of the owner's carts after `after`, ordered by (createTime, id), with their lines: one statement. */
  listCarts(ownerId: string, after: CartCursor | undefined, limit: number): Promise<CartView[]>;
  /** The lines of each cart, ordered by position; carts without lines are absent from the map. */
  lines(cartIds: readonly string[]): Promise<Map<string, CartLine[]>>;
  insertLine(cartId: string, line: CartLine): Promise<void>;
  /** Writes a line's name, price and quantity. */
  updateLine(cartId: string, line: CartLine): Promise<void>;
  deleteLine(cartId: string, productId: string, shopId: string): Promise<void>;
  deleteLines(cartId: string): Promise<void>;
  /** Sets a cart's version and update time, and its name when given; a taken name raises ALREADY_EXISTS. */
  updateCart(cartId: string, change: { version: bigint; updateTime: number; name?: { name: string; key: string } }): Promise<void>;
  deleteCart(cartId: string): Promise<void>;
  /**
   * Claims an AddItem request id for this transaction. False when the owner already used it (and that use has not
   * expired, i.e. is not older than `expiredBefore`); a concurrent claim of the same id waits for the first one's
   * transaction to end.
   */
  claimRequest(claim: { ownerId: string; requestId: string; fingerprint: string; createTime: number; expiredBefore: number }): Promise<boolean>;
  findRequest(ownerId: string, requestId: string): Promise<{ fingerprint: string; result: CartSnapshot | null } | undefined>;
  saveRequestResult(ownerId: string, requestId: string, result: CartSnapshot): Promise<void>;
  /** True while a purge tombstone for the owner is live (its `until` is after `now`, ms). */
  isPurged(ownerId: string, now: number): Promise<boolean>;
  /**
   * Records (or extends, never shortens) the owner's tombstone up to `until` (ms), and deletes tombstones that
   * expired before `now`.
   */
  leaveTombstone(ownerId: string, until: number, now: number): Promise<void>;
  /**
   * Deletes every cart, line and AddItem request id of the owner; returns how many rows went. It first locks the
   * owner's carts (FOR UPDATE), so a write holding one finishes first and what it wrote is deleted too; request
   * ids go last, in a statement that sees what those writes committed. Take lockOwner before, so no cart is
   * created meanwhile.
   */
  purgeOwner(ownerId: string): Promise<number>;
}

export interface CartStore extends TransactionBoundary<CartTx> {
  /** Deletes request ids recorded before `before` (ms); returns how many. */
  pruneRequests(before: number): Promise<number>;
}

const cartColumns = {
  id: carts.id,
  ownerId: carts.ownerId,
  name: carts.name,
  version: carts.version,
  createTime: carts.createTime,
  updateTime: carts.updateTime,
};

/** A cart line's columns beside a cart's (its name renamed, as the cart has one). */
const lineColumns = {
  productId: cartItems.productId,
  shopId: cartItems.shopId,
  lineName: cartItems.name,
  currencyCode: cartItems.currencyCode,
  unitPriceMinor: cartItems.unitPriceMinor,
  quantity: cartItems.quantity,
  position: cartItems.position,
};

function toRecord(row: { id: string; ownerId: string; name: string; version: bigint; createTime: Date; updateTime: Date }): CartRecord {
  return { ...row, createTime: row.createTime.getTime(), updateTime: row.updateTime.getTime() };
}

/** Maps a unique violation of the owner/name index to ALREADY_EXISTS; rethrows anything else. */
function nameConflict(e: unknown): never {
  if (sqlState(e) === "23505") throw alreadyExists("a cart with this name");
  throw e;
}

/**
 * A cart joined with its lines, one row per line (one row with null line columns when it has none). Built and
 * prepared once per handle: the hottest read skips drizzle's query building and PostgreSQL's planning.
 */
function cartWithLinesQuery(db: Db) {
  return db
    .select({ ...cartColumns, ...lineColumns })
    .from(carts)
    .leftJoin(cartItems, eq(cartItems.cartId, carts.id))
    .where(and(eq(carts.id, sql.placeholder("cartId")), eq(carts.ownerId, sql.placeholder("ownerId"))))
    .orderBy(asc(cartItems.position))
    .prepare("cart_with_lines");
}

/**
 * A page of the owner's carts joined with their lines, one row per line (one with null line columns for a cart
 * without lines), in page order. `paged` says whether it starts after a cursor.
 */
function cartPageQuery(db: Db, paged: boolean) {
  const after = paged
    ? sql`(${carts.createTime}, ${carts.id}) > (${sql.placeholder("afterTime")}::timestamptz, ${sql.placeholder("afterId")}::uuid)`
    : undefined;
  const page = db
    .select(cartColumns)
    .from(carts)
    .where(and(eq(carts.ownerId, sql.placeholder("ownerId")), after))
    .orderBy(asc(carts.createTime), asc(carts.id))
    .limit(sql.placeholder("limit"))
    .as("page");
  return db
    .select({
      id: page.id,
      ownerId: page.ownerId,
      name: page.name,
      version: page.version,
      createTime: page.createTime,
      updateTime: page.updateTime,
      ...lineColumns,
    })
    .from(page)
    .leftJoin(cartItems, eq(cartItems.cartId, page.id))
    .orderBy(asc(page.createTime), asc(page.id), asc(cartItems.position))
    .prepare(`cart_page_${paged ? "after" : "first"}`);
}

type CartLineRow = {
  id: string;
  ownerId: string;
  name: string;
  version: bigint;
  createTime: Date;
  updateTime: Date;
  productId: string | null;
  shopId: string | null;
  lineName: string | null;
  currencyCode: string | null;
  unitPriceMinor: bigint | null;
  quantity: number | null;
  position: bigint | null;
};

/** Folds rows of carts joined with their lines (grouped by cart, lines in order) into views, in row order. */
function cartViews(rows: readonly CartLineRow[]): CartView[] {
  const views: (CartRecord & { items: CartLine[] })[] = [];
  let current: (CartRecord & { items: CartLine[] }) | undefined;
  for (const r of rows) {
    if (current?.id !== r.id) {
      const { id, ownerId, name, version, createTime, updateTime } = r;
      current = { ...toRecord({ id, ownerId, name, version, createTime, updateTime }), items: [] };
      views.push(current);
    }
    if (r.productId === null || r.shopId === null || r.lineName === null || r.currencyCode === null) continue;
    if (r.unitPriceMinor === null || r.quantity === null || r.position === null) continue;
    current.items.push({ productId: r.productId, shopId: r.shopId, name: r.lineName, currencyCode: r.currencyCode, unitPriceMinor: r.unitPriceMinor, quantity: r.quantity, position: r.position });
  }
  return views;
}

/** The queries over `tx`: a transaction, or the database itself for the single statements of `readOne`. */
function createTx(tx: Db): CartTx {
  let withLines: ReturnType<typeof cartWithLinesQuery> | undefined;
  // Built on first use, once per handle: one prepared statement for each shape of the query.
  const cartPages = new Map<string, ReturnType<typeof cartPageQuery>>();
  return {
    async lockOwner(ownerId) {
      await tx.execute(sql`select pg_advisory_xact_lock(hashtextextended(${"grocery.cart.owner:" + ownerId}, 0))`);
    },
    async countCarts(ownerId) {
      const [row] = await tx.select({ n: count() }).from(carts).where(eq(carts.ownerId, ownerId));
      return row?.n ?? 0;
    },
    async nameTaken(ownerId, nameKey, exceptCartId) {
      const rows = await tx
        .select({ id: carts.id })
        .from(carts)
        .where(and(eq(carts.ownerId, ownerId), eq(carts.nameKey, nameKey), exceptCartId ? ne(carts.id, exceptCartId) : undefined))
        .limit(1);
      return rows.length > 0;
    },
    async insertCart(cart, nameKey) {
      await tx
        .insert(carts)
        .values({ ...cart, nameKey, createTime: new Date(cart.createTime), updateTime: new Date(cart.updateTime) })
        .catch(nameConflict);
    },
    async findCart(ownerId, cartId, lock) {
      const query = tx.select(cartColumns).from(carts).where(and(eq(carts.id, cartId), eq(carts.ownerId, ownerId)));
      const rows = lock ? await query.for("update") : await query;
      return rows[0] ? toRecord(rows[0]) : undefined;
    },
    async cartWithLines(ownerId, cartId) {
      return cartViews(await (withLines ??= cartWithLinesQuery(tx)).execute({ cartId, ownerId }))[0];
    },
    async listCarts(ownerId, after, limit) {
      const shape = after ? "after" : "first";
      let prepared = cartPages.get(shape);
      if (!prepared) cartPages.set(shape, (prepared = cartPageQuery(tx, after !== undefined)));
      const afterTime = after ? new Date(after.createTime).toISOString() : undefined;
      return cartViews(await prepared.execute({ ownerId, afterTime, afterId: after?.id, limit }));
    },
    async lines(cartIds) {
      const byCart = new Map<string, CartLine[]>();
      if (cartIds.length === 0) return byCart;
      const rows = await tx
        .select()
        .from(cartItems)
        .where(inArray(cartItems.cartId, [...cartIds]))
        .orderBy(asc(cartItems.cartId), asc(cartItems.position));
      for (const { cartId, ...line } of rows) {
        const list = byCart.get(cartId);
        if (list) list.push(line);
        else byCart.set(cartId, [line]);
      }
      return byCart;
    },
    async insertLine(cartId, line) {
      await tx.insert(cartItems).values({ cartId, ...line });
    },
    async updateLine(cartId, line) {
      await tx
        .update(cartItems)
        .set({ name: line.name, unitPriceMinor: line.unitPriceMinor, quantity: line.quantity })
        .where(and(eq(cartItems.cartId, cartId), eq(cartItems.productId, line.productId), eq(cartItems.shopId, line.shopId)));
    },
    async deleteLine(cartId, productId, shopId) {
      await tx.delete(cartItems).where(and(eq(cartItems.cartId, cartId), eq(cartItems.productId, productId), eq(cartItems.shopId, shopId)));
    },
    async deleteLines(cartId) {
      await tx.delete(cartItems).where(eq(cartItems.cartId, cartId));
    },
    async updateCart(cartId, change) {
      await tx
        .update(carts)
        .set({
          version: change.version,
          updateTime: new Date(change.updateTime),
          ...(change.name ? { name: change.name.name, nameKey: change.name.key } : {}),
        })
        .where(eq(carts.id, cartId))
        .catch(nameConflict);
    },
    async deleteCart(cartId) {
      await tx.delete(carts).where(eq(carts.id, cartId));
    },
    async claimRequest(claim) {
      const rows = await tx
        .insert(addItemRequests)
        .values({ ownerId: claim.ownerId, requestId: claim.requestId, fingerprint: claim.fingerprint, createTime: new Date(claim.createTime) })
        .onConflictDoUpdate({
          target: [addItemRequests.ownerId, addItemRequests.requestId],
          // An expired id may be reused as if new.
          set: { fingerprint: claim.fingerprint, result: null, createTime: new Date(claim.createTime) },
          setWhere: lt(addItemRequests.createTime, new Date(claim.expiredBefore)),
        })
        .returning({ requestId: addItemRequests.requestId });
      return rows.length > 0;
    },
    async findRequest(ownerId, requestId) {
      const rows = await tx
        .select({ fingerprint: addItemRequests.fingerprint, result: addItemRequests.result })
        .from(addItemRequests)
        .where(and(eq(addItemRequests.ownerId, ownerId), eq(addItemRequests.requestId, requestId)));
      const row = rows[0];
      return row ? { fingerprint: row.fingerprint, result: (row.result ?? null) as CartSnapshot | null } : undefined;
    },
    async saveRequestResult(ownerId, requestId, result) {
      await tx
        .update(addItemRequests)
        .set({ result })
        .where(and(eq(addItemRequests.ownerId, ownerId), eq(addItemRequests.requestId, requestId)));
    },
    isPurged: (ownerId, now) => isPurged(tx, purgeTombstones, ownerId, now),
    leaveTombstone: (ownerId, until, now) => leaveTombstone(tx, purgeTombstones, ownerId, until, now),
    async purgeOwner(ownerId) {
      const owned = await tx.select({ id: carts.id }).from(carts).where(eq(carts.ownerId, ownerId)).for("update");
      const ids = owned.map((c) => c.id);
      const lines = ids.length === 0 ? [] : await tx.delete(cartItems).where(inArray(cartItems.cartId, ids)).returning({ cartId: cartItems.cartId });
      const gone = await tx.delete(carts).where(eq(carts.ownerId, ownerId)).returning({ id: carts.id });
      const requests = await tx.delete(addItemRequests).where(eq(addItemRequests.ownerId, ownerId)).returning({ requestId: addItemRequests.requestId });
      return lines.length + gone.length + requests.length;
    },
  };
}

/** The drizzle-backed CartStore over the service's database handle. */
export function createCartStore(db: Db): CartStore {
  return {
    ...transactionBoundary(db, createTx),
    async pruneRequests(before) {
      const rows = await db
        .delete(addItemRequests)
        .where(lt(addItemRequests.createTime, new Date(before)))
        .returning({ requestId: addItemRequests.requestId });
      return rows.length;
    },
  };
}
