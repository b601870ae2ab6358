import { createHash } from "node:crypto";
import type { Logger } from "@local-e-grocery/platform/logger.js";
import type { Clock } from "@local-e-grocery/platform/service-module.js";
import { alreadyExists, invalidArgument, notFound, resourceExhausted } from "@local-e-grocery/platform/errors.js";
import { checkExpectedVersion } from "@local-e-grocery/platform/expected-version.js";
import { pageOf, resolvePageSize } from "@local-e-grocery/platform/pagination.js";
import { accountDeleted } from "@local-e-grocery/platform/tombstones.js";
import { cartPageSizes, decodeCartCursor, encodeCartCursor } from "./cart-cursor.js";
import type { CartConfig } from "./config.js";
import { fromSnapshot, toSnapshot, type CartLine, type CartRecord, type CartView } from "./model.js";
import {
  findLine,
  parseCartId,
  parseCartName,
  parseNewItem,
  parseQuantity,
  parseRequestId,
  planAddItem,
  planSetQuantity,
  type NewItemInput,
} from "./rules.js";
import type { CartStore, CartTx } from "./store.js";

export interface CartsOptions {
  store: CartStore;
  config: CartConfig;
  clock: Clock;
  newId: () => string;
  logger?: Logger;
}

/** The cart use cases; `owner` is always the authenticated caller, never a request field. */
export interface Carts {
  createCart(owner: string, input: { name: string }): Promise<CartView>;
  getCart(owner: string, input: { cartId: string }): Promise<CartView>;
  listCarts(owner: string, input: { pageSize: number; pageToken: string }): Promise<{ carts: CartView[]; nextPageToken: string }>;
  renameCart(owner: string, input: { cartId: string; name: string; expectedVersion?: bigint | undefined }): Promise<CartView>;
  deleteCart(owner: string, input: { cartId: string; expectedVersion?: bigint | undefined }): Promise<void>;
  addItem(
    owner: string,
    input: { cartId: string; item?: NewItemInput | undefined; expectedVersion?: bigint | undefined; requestId: string },
  ): Promise<CartView>;
  updateItemQuantity(
    owner: string,
    input: { cartId: string; productId: string; shopId: string; quantity: number; expectedVersion?: bigint | undefined },
  ): Promise<CartView>;
  removeItem(owner: string, input: { cartId: string; productId: string; shopId: string; expectedVersion?: bigint | undefined }): Promise<CartView>;
  clearCart(owner: string, input: { cartId: string; expectedVersion?: bigint | undefined }): Promise<CartView>;
  /**
   * Deletes every cart, line and AddItem request id of `owner` in one transaction and leaves a tombstone that
   * refuses the owner's writes for `purgeTombstoneTtlMs`; returns how many rows went. Idempotent.
   */
  purgeUser(owner: string): Promise<number>;
}

/** How often, at most, one process deletes expired AddItem request ids. */
const pruneIntervalMs = 5 * 60_000;

/**
 * Builds the cart use cases. Every mutation runs in one transaction that first locks the cart row, so concurrent
 * mutations of a cart queue up instead of overwriting each other, and bumps the version by exactly one.
 * Errors are DomainErrors: INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS, FAILED_PRECONDITION, ABORTED,
 * RESOURCE_EXHAUSTED, as documented on each RPC in cart_service.proto, and PERMISSION_DENIED for every write by a
 * user purged less than PURGE_TOMBSTONE_TTL ago (userdata_service.proto).
 */
export function createCarts(options: CartsOptions): Carts {
  const { store, config, clock, newId, logger } = options;
  let lastPrune = Number.NEGATIVE_INFINITY;

  /** The owner's cart, locked for the rest of the transaction; NOT_FOUND when absent or someone else's. */
  async function lockCart(tx: CartTx, owner: string, cartId: string, expectedVersion: bigint | undefined): Promise<CartRecord> {
    const cart = await tx.findCart(owner, cartId, true);
    if (!cart) throw notFound("cart");
    checkExpectedVersion(expectedVersion, cart.version, "cart");
    return cart;
  }

  /**
   * The write prologue of a change to one cart: the purge check, the cart's lock and its lines, sent together
   * (one round trip; postgres.js pipelines a transaction's statements). PostgreSQL runs them in the order sent,
   * so the lines are read once the lock is granted and the tombstone is checked before the lock is taken, as if
   * awaited one by one; an error in one fails the transaction, and the first is the one thrown.
   */
  async function lockCartWithLines(tx: CartTx, owner: string, cartId: string, expectedVersion: bigint | undefined): Promise<{ cart: CartRecord; lines: CartLine[] }> {
    const [, cart, lines] = await Promise.all([refuseIfPurged(tx, owner), lockCart(tx, owner, cartId, expectedVersion), linesOf(tx, cartId)]);
    return { cart, lines };
  }

  /**
   * PERMISSION_DENIED while the owner's purge tombstone is live: the account was deleted, and its access tokens,
   * which stay valid until they expire, may not write again (services/platform/src/tombstones.ts).
   * Checked inside the write's transaction: a purge that commits first is seen (its tombstone is committed with
   * it), and one that commits after either waits for this transaction's locks (owner lock, cart row) or finds
   * nothing left to guard, so no write slips in after a purge.
   */
  async function refuseIfPurged(tx: CartTx, owner: string): Promise<void> {
    if (await tx.isPurged(owner, clock())) throw accountDeleted();
  }

  async function linesOf(tx: CartTx, cartId: string): Promise<CartLine[]> {
    return (await tx.lines([cartId])).get(cartId) ?? [];
  }

  /**
   * Bumps the cart's version and update time and returns the view after the change. The time is read here, under
   * the cart lock, so update_time never goes backwards when changes queue up. `alongside` are the change's own
   * statements (given the view, for a request's stored result): they are sent with the cart's update, in one
   * round trip, as lockCartWithLines does. `name` renames the cart.
   */
  async function commitChange(
    tx: CartTx,
    cart: CartRecord,
    lines: readonly CartLine[],
    change: { alongside?: (view: CartView) => Promise<unknown>[]; name?: { name: string; key: string } } = {},
  ): Promise<CartView> {
    const { alongside = () => [], name } = change;
    const now = clock();
    const version = cart.version + 1n;
    const view: CartView = { ...cart, ...(name ? { name: name.name } : {}), version, updateTime: now, items: [...lines] };
    await Promise.all([...alongside(view), tx.updateCart(cart.id, { version, updateTime: now, ...(name ? { name } : {}) })]);
    return view;
  }

  async function maybePrune(now: number): Promise<void> {
    if (now - lastPrune < pruneIntervalMs) return;
    lastPrune = now;
    try {
      const removed = await store.pruneRequests(now - config.requestIdTtlSeconds * 1000);
      if (removed > 0) logger?.debug("expired request ids pruned", { removed });
    } catch (e) {
      // Pruning is housekeeping: the AddItem that triggered it has already succeeded.
      logger?.warn("pruning request ids failed", { error: e });
    }
  }

  return {
    async createCart(owner, input) {
      const name = parseCartName(input.name, config);
      return store.write(async (tx) => {
        await tx.lockOwner(owner);
        await refuseIfPurged(tx, owner);
        const now = clock();
        if (await tx.nameTaken(owner, name.key)) throw alreadyExistsName();
        if ((await tx.countCarts(owner)) >= config.maxCarts) throw resourceExhausted(`a user may keep at most ${config.maxCarts} carts`);
        const cart: CartRecord = { id: newId(), ownerId: owner, name: name.name, version: 1n, createTime: now, updateTime: now };
        await tx.insertCart(cart, name.key);
        return { ...cart, items: [] };
      });
    },

    async getCart(owner, input) {
      const cartId = parseCartId(input.cartId);
      const cart = await store.readOne((tx) => tx.cartWithLines(owner, cartId));
      if (!cart) throw notFound("cart");
      return cart;
    },

    async listCarts(owner, input) {
      const pageSize = resolvePageSize(input.pageSize, cartPageSizes);
      const after = decodeCartCursor(owner, input.pageToken);
      // One extra cart says whether another page follows.
      const rows = await store.readOne((tx) => tx.listCarts(owner, after, pageSize + 1));
      const page = pageOf(rows, pageSize, (last) => encodeCartCursor(owner, last));
      return { carts: page.items, nextPageToken: page.nextPageToken };
    },

    async renameCart(owner, input) {
      const cartId = parseCartId(input.cartId);
      const name = parseCartName(input.name, config);
      return store.write(async (tx) => {
        // The owner lock first, as CreateCart takes it, so two renames to one name cannot both pass the check.
        await tx.lockOwner(owner);
        await refuseIfPurged(tx, owner);
        const cart = await lockCart(tx, owner, cartId, input.expectedVersion);
        if (await tx.nameTaken(owner, name.key, cart.id)) throw alreadyExistsName();
        return commitChange(tx, cart, await linesOf(tx, cart.id), { name });
      });
    },

    async deleteCart(owner, input) {
      const cartId = parseCartId(input.cartId);
      await store.write(async (tx) => {
        await refuseIfPurged(tx, owner);
        const cart = await lockCart(tx, owner, cartId, input.expectedVersion);
        await tx.deleteCart(cart.id);
      });
    },

    async addItem(owner, input) {
      const cartId = parseCartId(input.cartId);
      const item = parseNewItem(input.item, config);
      const requestId = parseRequestId(input.requestId);
      const now = clock();
      const fingerprint = requestId === undefined ? "" : fingerprintOf([cartId, item, input.expectedVersion?.toString() ?? null]);
      const view = await store.write(async (tx): Promise<CartView> => {
        if (requestId !== undefined) {
          // The purge check before the claim (sent together, run in that order), so a purged user's retry is
          // refused rather than answered from a request id. Claiming before locking the cart: a concurrent call
          // with the same id waits here for the first one, then finds its result. Claims never wait while
          // holding a cart lock, so no deadlock is possible.
          const [, claimed] = await Promise.all([
            refuseIfPurged(tx, owner),
            tx.claimRequest({ ownerId: owner, requestId, fingerprint, createTime: now, expiredBefore: now - config.requestIdTtlSeconds * 1000 }),
          ]);
          if (!claimed) {
            const previous = await tx.findRequest(owner, requestId);
            if (!previous?.result || previous.fingerprint !== fingerprint) {
              throw invalidArgument("request_id", "was already used for a different request");
            }
            return fromSnapshot(previous.result);
          }
        }
        // With a request id the purge check went with the claim.
        const { cart, lines } =
          requestId === undefined
            ? await lockCartWithLines(tx, owner, cartId, input.expectedVersion)
            : await Promise.all([lockCart(tx, owner, cartId, input.expectedVersion), linesOf(tx, cartId)]).then(([cart, lines]) => ({ cart, lines }));
        const plan = planAddItem(lines, item, cart.version + 1n, config);
        return commitChange(tx, cart, plan.lines, {
          alongside: (result) => [
            plan.kind === "insert" ? tx.insertLine(cart.id, plan.line) : tx.updateLine(cart.id, plan.line),
            ...(requestId === undefined ? [] : [tx.saveRequestResult(owner, requestId, toSnapshot(result))]),
          ],
        });
      });
      if (requestId !== undefined) await maybePrune(now);
      return view;
    },

    async updateItemQuantity(owner, input) {
      const cartId = parseCartId(input.cartId);
      const { productId, shopId } = input;
      const quantity = parseQuantity("quantity", input.quantity, config);
      return store.write(async (tx) => {
        const { cart, lines } = await lockCartWithLines(tx, owner, cartId, input.expectedVersion);
        const plan = planSetQuantity(lines, productId, shopId, quantity);
        return commitChange(tx, cart, plan.lines, {
          alongside: () => [quantity === 0 ? tx.deleteLine(cart.id, productId, shopId) : tx.updateLine(cart.id, plan.line)],
        });
      });
    },

    async removeItem(owner, input) {
      const cartId = parseCartId(input.cartId);
      const { productId, shopId } = input;
      return store.write(async (tx) => {
        const { cart, lines } = await lockCartWithLines(tx, owner, cartId, input.expectedVersion);
        const line = findLine(lines, productId, shopId);
        if (!line) throw notFound("cart item");
        return commitChange(tx, cart, lines.filter((l) => l !== line), { alongside: () => [tx.deleteLine(cart.id, productId, shopId)] });
      });
    },

    async clearCart(owner, input) {
      const cartId = parseCartId(input.cartId);
      return store.write(async (tx) => {
        const [, cart] = await Promise.all([refuseIfPurged(tx, owner), lockCart(tx, owner, cartId, input.expectedVersion)]);
        return commitChange(tx, cart, [], { alongside: () => [tx.deleteLines(cart.id)] });
      });
    },

    async purgeUser(owner) {
      return store.write(async (tx) => {
        // The owner lock orders the purge against CreateCart and RenameCart, which take it first too: one that
        // got it earlier has committed its cart by now, and one that waits sees the tombstone.
        await tx.lockOwner(owner);
        const now = clock();
        await tx.leaveTombstone(owner, now + config.purgeTombstoneTtlMs, now);
        return tx.purgeOwner(owner);
      });
    },
  };
}

function alreadyExistsName() {
  return alreadyExists("a cart with this name");
}

/** A stable hash of what an AddItem asks for, to tell a retry from a different request reusing its id. */
function fingerprintOf(parts: unknown[]): string {
  const json = JSON.stringify(parts, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v));
  return createHash("sha256").update(json).digest("base64url");
}
