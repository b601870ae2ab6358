import { sql } from "drizzle-orm";
import { bigint, boolean, check, doublePrecision, index, integer, pgSchema, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { purgeTombstonesTable } from "@local-e-grocery/platform/tombstones.js";

/** Everything the address service stores lives in the Postgres schema `address`. */
export const addressSchema = pgSchema("address");

/**
 * One row per address. Owners are identity's user ids, kept as opaque text (no foreign key across services).
 * The database itself holds the invariants the service promises: one default per owner, a known kind, SHOP
 * rows with a name and a location, coordinates in range.
 */
export const addresses = addressSchema.table(
  "addresses",
  {
    id: uuid("id").primaryKey(),
    ownerId: text("owner_id").notNull(),
    kind: text("kind", { enum: ["home", "work", "other", "shop"] }).notNull(),
    label: text("label").notNull().default(""),
    recipientName: text("recipient_name").notNull().default(""),
    phoneNumber: text("phone_number").notNull().default(""),
    line1: text("line1").notNull(),
    line2: text("line2").notNull().default(""),
    landmark: text("landmark").notNull().default(""),
    city: text("city").notNull(),
    district: text("district").notNull().default(""),
    state: text("state").notNull().default(""),
    postalCode: text("postal_code").notNull().default(""),
    countryCode: text("country_code").notNull(),
    latitude: doublePrecision("latitude"),
    longitude: doublePrecision("longitude"),
    shopName: text("shop_name").notNull().default(""),
    isDefault: boolean("is_default").notNull().default(false),
    version: integer("version").notNull().default(1),
    createTime: timestamp("create_time", { withTimezone: true, mode: "date" }).notNull(),
    updateTime: timestamp("update_time", { withTimezone: true, mode: "date" }).notNull(),
  },
  (t) => [
    // Listing an owner's book in creation order, and counting it under the owner lock.
    index("addresses_owner_create_idx").on(t.ownerId, t.createTime, t.id),
    // At most one default per owner; the service keeps it at exactly one while the owner has any address.
    uniqueIndex("addresses_one_default_per_owner").on(t.ownerId).where(sql`is_default`),
    // The bounding-box prefilter of FindNearbyShops: a range scan on latitude, then longitude, over shops only.
    index("addresses_shop_location_idx").on(t.latitude, t.longitude).where(sql`kind = 'shop'`),
    check("addresses_kind_check", sql`kind in ('home', 'work', 'other', 'shop')`),
    check("addresses_location_check", sql`(latitude is null) = (longitude is null) and latitude between -90 and 90 and longitude between -180 and 180`),
    check("addresses_shop_check", sql`kind <> 'shop' or (shop_name <> '' and latitude is not null)`),
    check("addresses_version_check", sql`version >= 1`),
  ],
);

export type AddressRow = typeof addresses.$inferSelect;
export type NewAddressRow = typeof addresses.$inferInsert;

/**
 * Users purged by UserDataService/PurgeUser, until their access tokens issued before the purge have expired: while
 * a tombstone is live every address write by that user is refused (services/platform/src/tombstones.ts).
 */
export const purgeTombstones = purgeTombstonesTable(addressSchema);

/**
 * Each user's standing as identity last reported it (UserDataService/SetUserStanding): FindNearbyShops lists a
 * SHOP address only while its owner's row says enabled and shop owner, or while the owner has no row at all
 * (identity reports changes only, so an owner never changed stands as registered). `sequence` is the highest
 * standing sequence applied; an equal or lower one is ignored, so redelivered and reordered reports are harmless.
 * A purged user keeps a row that no sequence can overtake (see address-book.ts, purgedStanding).
 */
export const userStandings = addressSchema.table(
  "user_standings",
  {
    /** Identity's user id (the token's `sub`), lower-case. */
    userId: text("user_id").primaryKey(),
    enabled: boolean("enabled").notNull(),
    shopOwner: boolean("shop_owner").notNull(),
    sequence: bigint("sequence", { mode: "bigint" }).notNull(),
  },
  () => [check("user_standings_sequence_check", sql`sequence > 0`)],
);
