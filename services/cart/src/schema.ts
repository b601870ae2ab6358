import { sql } from "drizzle-orm";
import { bigint, check, foreignKey, index, integer, jsonb, pgSchema, primaryKey, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { purgeTombstonesTable } from "@local-e-grocery/platform/tombstones.js";

/** Everything the cart service stores lives in the Postgres schema `cart`; owners are identity's opaque user ids. */
export const cartSchema = pgSchema("cart");

export const carts = cartSchema.table(
  "carts",
  {
    id: uuid("id").primaryKey(),
    /** The owner's user id (the token's `sub`); opaque, no foreign key across services. */
    ownerId: text("owner_id").notNull(),
    name: text("name").notNull(),
    /** nameKey(name): makes names unique per owner ignoring case, the same on every backend. */
    nameKey: text("name_key").notNull(),
    version: bigint("version", { mode: "bigint" }).notNull(),
    createTime: timestamp("create_time", { withTimezone: true, mode: "date" }).notNull(),
    updateTime: timestamp("update_time", { withTimezone: true, mode: "date" }).notNull(),
  },
  (t) => [
    uniqueIndex("carts_owner_name_key_idx").on(t.ownerId, t.nameKey),
    // ListCarts walks an owner's carts by (create_time, id).
    index("carts_owner_create_time_idx").on(t.ownerId, t.createTime, t.id),
    check("carts_version_positive", sql`${t.version} > 0`),
  ],
);

export const cartItems = cartSchema.table(
  "cart_items",
  {
    cartId: uuid("cart_id").notNull(),
    productId: text("product_id").notNull(),
    shopId: text("shop_id").notNull(),
    name: text("name").notNull(),
    currencyCode: text("currency_code").notNull(),
    unitPriceMinor: bigint("unit_price_minor", { mode: "bigint" }).notNull(),
    quantity: integer("quantity").notNull(),
    /** The cart version that created the line; orders lines by first addition. */
    position: bigint("position", { mode: "bigint" }).notNull(),
  },
  (t) => [
    primaryKey({ name: "cart_items_pkey", columns: [t.cartId, t.productId, t.shopId] }),
    foreignKey({ name: "cart_items_cart_id_fkey", columns: [t.cartId], foreignColumns: [carts.id] }).onDelete("cascade"),
    check("cart_items_quantity_positive", sql`${t.quantity} > 0`),
    check("cart_items_unit_price_not_negative", sql`${t.unitPriceMinor} >= 0`),
  ],
);

/**
 * AddItem request ids already applied (AIP-155), with the cart they produced, so a retry answers the same result.
 * Rows older than CART_REQUEST_ID_TTL are pruned opportunistically and may be reclaimed.
 */
export const addItemRequests = cartSchema.table(
  "add_item_requests",
  {
    ownerId: text("owner_id").notNull(),
    requestId: uuid("request_id").notNull(),
    /** Hash of the request's contents; the same id with other contents is refused. */
    fingerprint: text("fingerprint").notNull(),
    /** The CartSnapshot returned by the first call; null only inside the transaction that claims the id. */
    result: jsonb("result"),
    createTime: timestamp("create_time", { withTimezone: true, mode: "date" }).notNull(),
  },
  (t) => [
    primaryKey({ name: "add_item_requests_pkey", columns: [t.ownerId, t.requestId] }),
    index("add_item_requests_create_time_idx").on(t.createTime),
  ],
);

/**
 * Users purged by UserDataService/PurgeUser, until their access tokens issued before the purge have expired: while
 * a tombstone is live every cart write by that user is refused (services/platform/src/tombstones.ts).
 */
export const purgeTombstones = purgeTombstonesTable(cartSchema);
