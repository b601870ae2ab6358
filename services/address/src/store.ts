import { and, asc, between, count, desc, eq, lt, ne, or, sql, type Placeholder, type SQL } from "drizzle-orm";
import { transactionBoundary, type TransactionBoundary } from "@local-e-grocery/platform/store-boundary.js";
import type { Db } from "@local-e-grocery/platform/db.js";
import type { UserStanding } from "@local-e-grocery/platform/service-module.js";
import { isPurged, leaveTombstone } from "@local-e-grocery/platform/tombstones.js";
import { boundingBox, earthRadiusKm } from "./geo.js";
import { addressFieldsOf, type Address, type AddressFields, type AddressKind, type LatLng, type NearbyShop } from "./model.js";
import { addresses, purgeTombstones, userStandings, type AddressRow } from "./schema.js";

export interface ListQuery {
  ownerId: string;
  kind?: AddressKind | undefined;
  /** Keyset position: return addresses after this one in (create_time, id) order. */
  after?: { createTime: Date; id: string } | undefined;
  limit: number;
}

export interface NearbyQuery {
  center: LatLng;
  radiusKm: number;
  /** Keyset position: return shops after this one in (distance, id) order. */
  after?: { distanceKm: number; id: string } | undefined;
  limit: number;
}

/**
 * The address service's queries, each run inside a transaction the domain opens explicitly (address-book.ts holds
 * the rules). Ownership is part of every address lookup, so another owner's address is simply absent.
 */
export interface AddressTx {
  /**
   * Serialises the owner's writes until the transaction ends, so count limits and the one-default rule hold under
   * concurrent calls from any number of replicas (the partial unique index is the database's backstop for the
   * latter).
   */
  lockOwner(ownerId: string): Promise<void>;
  /** True while a purge tombstone for the owner is live (its `until` is after `now`, ms). */
  isPurged(ownerId: string, now: number): Promise<boolean>;
  /** Records (or extends, never shortens) the owner's tombstone up to `until` (ms); prunes those expired before `now`. */
  leaveTombstone(ownerId: string, until: number, now: number): Promise<void>;
  /** How many addresses the owner keeps, and whether one of them is the default. */
  bookStats(ownerId: string): Promise<{ count: number; hasDefault: boolean }>;
  insertAddress(address: Address): Promise<void>;
  findAddress(ownerId: string, id: string): Promise<Address | undefined>;
  /**
   * Up to `limit` of the owner's addresses (of one kind when given) after `after`, in creation order, and how many
   * of them (of that kind) there are in all: one statement, so the page and its total are read in one snapshot.
   */
  listPage(query: ListQuery): Promise<{ addresses: Address[]; totalSize: number }>;
  /** Overwrites an address's writable fields, version and update time; returns it as stored. */
  updateAddress(ownerId: string, id: string, change: { fields: AddressFields; version: number; updateTime: Date }): Promise<Address>;
  deleteAddress(ownerId: string, id: string): Promise<void>;
  /** The owner's most recently updated address (ties: most recently created, then highest id), if any. */
  latestAddress(ownerId: string): Promise<Address | undefined>;
  /** Sets or clears one address's default flag, bumping its version; returns it as stored. */
  setDefaultFlag(ownerId: string, id: string, isDefault: boolean, updateTime: Date): Promise<Address>;
  /** Clears the default flag of the owner's addresses other than `exceptId`, bumping each one's version. */
  clearOtherDefaults(ownerId: string, exceptId: string, updateTime: Date): Promise<void>;
  /** Deletes every address of the owner; returns how many went. */
  deleteOwnerAddresses(ownerId: string): Promise<number>;
  /**
   * SHOP addresses within the radius, nearest first (ties by id), of every owner whose recorded standing is
   * enabled and shop owner, or who has none recorded.
   */
  findNearbyShops(query: NearbyQuery): Promise<NearbyShop[]>;
  /**
   * Records the user's standing when its sequence is greater than the one recorded (or none is); answers whether
   * it did. One statement, so concurrent reports of one user settle on the highest sequence whatever their order.
   */
  setStanding(standing: UserStanding): Promise<boolean>;
  /** Records the user's standing whatever is recorded. */
  forceStanding(standing: UserStanding): Promise<void>;
}

export type AddressStore = TransactionBoundary<AddressTx>;
/** The queries over `tx`: a transaction, or the database itself for the single statements of `readOne`. */
function createTx(tx: Db): AddressTx {
  const owned = (ownerId: string, id: string) => and(eq(addresses.id, id), eq(addresses.ownerId, ownerId));
  // Built on first use, once per handle: one prepared statement for each shape of the query.
  const listPages = new Map<string, ReturnType<typeof listPageQuery>>();
  let addressById: ReturnType<typeof addressByIdQuery> | undefined;
  const nearbyShops = new Map<string, ReturnType<typeof nearbyShopsQuery>>();
  return {
    async lockOwner(ownerId) {
      // Two-key form: its own key space.
      await tx.execute(sql`select pg_advisory_xact_lock(hashtext('address.owner'), hashtext(${ownerId}))`);
    },
    isPurged: (ownerId, now) => isPurged(tx, purgeTombstones, ownerId, now),
    leaveTombstone: (ownerId, until, now) => leaveTombstone(tx, purgeTombstones, ownerId, until, now),
    async bookStats(ownerId) {
      const [stats] = await tx
        .select({ n: count(), defaults: sql<number>`count(*) filter (where ${addresses.isDefault})`.mapWith(Number) })
        .from(addresses)
        .where(eq(addresses.ownerId, ownerId));
      return { count: stats?.n ?? 0, hasDefault: (stats?.defaults ?? 0) > 0 };
    },
    async insertAddress(address) {
      await tx.insert(addresses).values(toRow(address));
    },
    async findAddress(ownerId, id) {
      const [row] = await (addressById ??= addressByIdQuery(tx)).execute({ ownerId, id });
      return row && toAddress(row);
    },
    async listPage(query) {
      const shape = `${query.kind ? "kind" : "all"}/${query.after ? "after" : "first"}`;
      let prepared = listPages.get(shape);
      if (!prepared) listPages.set(shape, (prepared = listPageQuery(tx, Boolean(query.kind), query.after !== undefined)));
      const rows = await prepared.execute({
        ownerId: query.ownerId,
        kind: query.kind,
        afterTime: query.after?.createTime.toISOString(),
        afterId: query.after?.id,
        limit: query.limit,
      });
      return {
        addresses: rows.flatMap((r) => (r.row === null ? [] : [toAddress(r.row)])),
        totalSize: rows[0]?.n ?? 0,
      };
    },
    async updateAddress(ownerId, id, change) {
      const [updated] = await tx
        .update(addresses)
        .set({ ...toColumns(change.fields), version: change.version, updateTime: change.updateTime })
        .where(owned(ownerId, id))
        .returning();
      return toAddress(must(updated));
    },
    async deleteAddress(ownerId, id) {
      await tx.delete(addresses).where(owned(ownerId, id));
    },
    async latestAddress(ownerId) {
      const [row] = await tx
        .select()
        .from(addresses)
        .where(eq(addresses.ownerId, ownerId))
        .orderBy(desc(addresses.updateTime), desc(addresses.createTime), desc(addresses.id))
        .limit(1);
      return row && toAddress(row);
    },
    async setDefaultFlag(ownerId, id, isDefault, updateTime) {
      const [updated] = await tx
        .update(addresses)
        .set({ isDefault, version: sql`${addresses.version} + 1`, updateTime })
        .where(owned(ownerId, id))
        .returning();
      return toAddress(must(updated));
    },
    async clearOtherDefaults(ownerId, exceptId, updateTime) {
      await tx
        .update(addresses)
        .set({ isDefault: false, version: sql`${addresses.version} + 1`, updateTime })
        .where(and(eq(addresses.ownerId, ownerId), eq(addresses.isDefault, true), ne(addresses.id, exceptId)));
    },
    async deleteOwnerAddresses(ownerId) {
      const gone = await tx.delete(addresses).where(eq(addresses.ownerId, ownerId)).returning({ id: addresses.id });
      return gone.length;
    },
    async findNearbyShops(query) {
      const box = boundingBox(query.center, query.radiusKm);
      const lngRanges = box.longitudeRanges.filter(([min, max]) => min > -180 || max < 180);
      const shape = `${lngRanges.length}/${query.after ? "after" : "first"}`;
      let prepared = nearbyShops.get(shape);
      if (!prepared) nearbyShops.set(shape, (prepared = nearbyShopsQuery(tx, lngRanges.length, query.after !== undefined)));
      const rows = await prepared.execute({
        latitude: query.center.latitude,
        longitude: query.center.longitude,
        radiusKm: query.radiusKm,
        minLatitude: box.minLatitude,
        maxLatitude: box.maxLatitude,
        ...Object.fromEntries(lngRanges.flatMap(([min, max], i) => [[`minLongitude${i}`, min], [`maxLongitude${i}`, max]])),
        afterDistanceKm: query.after?.distanceKm,
        afterId: query.after?.id,
        limit: query.limit,
      });
      return rows.map((r) => ({ address: toAddress(r.row), distanceKm: r.distanceKm }));
    },
    async setStanding(standing) {
      const values = { enabled: standing.enabled, shopOwner: standing.shopOwner, sequence: standing.sequence };
      // ON CONFLICT DO UPDATE ... WHERE is atomic on PostgreSQL: a concurrent insert of the same user waits for the
      // other's commit and then evaluates the WHERE against the row that committed, so a lower sequence never
      // overwrites a higher one. No row comes back when the WHERE kept the stored standing.
      const rows = await tx
        .insert(userStandings)
        .values({ userId: standing.userId, ...values })
        .onConflictDoUpdate({ target: userStandings.userId, set: values, setWhere: lt(userStandings.sequence, standing.sequence) })
        .returning({ userId: userStandings.userId });
      return rows.length > 0;
    },
    async forceStanding(standing) {
      const values = { enabled: standing.enabled, shopOwner: standing.shopOwner, sequence: standing.sequence };
      await tx
        .insert(userStandings)
        .values({ userId: standing.userId, ...values })
        .onConflictDoUpdate({ target: userStandings.userId, set: values });
    },
  };
}

function addressByIdQuery(db: Db) {
  return db
    .select()
    .from(addresses)
    .where(and(eq(addresses.id, sql.placeholder("id")), eq(addresses.ownerId, sql.placeholder("ownerId"))))
    .limit(1)
    .prepare("address_by_id");
}

/**
 * ListAddresses in one statement: the count is one row and the page joins it laterally, so an empty page still
 * brings the total. `byKind` and `paged` say which optional conditions the statement has.
 */
function listPageQuery(db: Db, byKind: boolean, paged: boolean) {
  const owned = and(eq(addresses.ownerId, sql.placeholder("ownerId")), byKind ? eq(addresses.kind, sql.placeholder("kind")) : undefined);
  const after = paged
    ? sql`(${addresses.createTime}, ${addresses.id}) > (${sql.placeholder("afterTime")}::timestamptz, ${sql.placeholder("afterId")}::uuid)`
    : undefined;
  const total = db.select({ n: count().as("n") }).from(addresses).where(owned).as("total");
  const page = db
    .select()
    .from(addresses)
    .where(and(owned, after))
    .orderBy(asc(addresses.createTime), asc(addresses.id))
    .limit(sql.placeholder("limit"))
    .as("page");
  return db
    .select({ n: total.n, row: page._.selectedFields })
    .from(total)
    .leftJoinLateral(page, sql`true`)
    .orderBy(asc(page.createTime), asc(page.id))
    .prepare(`address_list_page_${byKind ? "kind" : "all"}_${paged ? "after" : "first"}`);
}

/**
 * FindNearbyShops, prepared: its shape depends on how many longitude ranges the bounding box has (none when it
 * spans every longitude, two when it crosses the antimeridian) and on whether a page cursor is given.
 */
function nearbyShopsQuery(db: Db, longitudeRanges: number, paged: boolean) {
  const distance = distanceKmSql({ latitude: sql.placeholder("latitude"), longitude: sql.placeholder("longitude") });
  const ranges = Array.from({ length: longitudeRanges }, (_, i) =>
    between(addresses.longitude, sql.placeholder(`minLongitude${i}`), sql.placeholder(`maxLongitude${i}`)),
  );
  return db
    .select({ row: addresses, distanceKm: distance.mapWith(Number) })
    .from(addresses)
    .where(
      and(
        eq(addresses.kind, "shop"),
        // Identity reports standings as they change; an owner it never reported on is listed.
        sql`not exists (select 1 from ${userStandings} where ${userStandings.userId} = ${addresses.ownerId} and not (${userStandings.enabled} and ${userStandings.shopOwner}))`,
        between(addresses.latitude, sql.placeholder("minLatitude"), sql.placeholder("maxLatitude")),
        ranges.length > 0 ? or(...ranges) : undefined,
        sql`${distance} <= ${sql.placeholder("radiusKm")}::float8`,
        paged ? sql`(${distance}, ${addresses.id}) > (${sql.placeholder("afterDistanceKm")}::float8, ${sql.placeholder("afterId")}::uuid)` : undefined,
      ),
    )
    .orderBy(distance, asc(addresses.id))
    .limit(sql.placeholder("limit"))
    .prepare(`address_nearby_shops_${longitudeRanges}_${paged ? "after" : "first"}`);
}

/** The drizzle-backed AddressStore over the service's database handle. */
export function createAddressStore(db: Db): AddressStore {
  return transactionBoundary(db, createTx);
}

/**
 * Haversine great-circle distance in kilometres from `center` to a row's location, in plain SQL (no PostGIS or
 * earthdistance, so it runs on PGlite too). `least(1, …)` keeps rounding from pushing asin out of its domain.
 */
function distanceKmSql(center: { latitude: Placeholder; longitude: Placeholder }): SQL<number> {
  const lat = sql`${center.latitude}::float8`;
  const lng = sql`${center.longitude}::float8`;
  return sql<number>`(2 * ${earthRadiusKm}::float8 * asin(least(1::float8, sqrt(
    power(sin(radians(${addresses.latitude} - ${lat}) / 2), 2)
    + cos(radians(${lat})) * cos(radians(${addresses.latitude})) * power(sin(radians(${addresses.longitude} - ${lng}) / 2), 2)))))`;
}

type Columns = Omit<AddressRow, "id" | "ownerId" | "isDefault" | "version" | "createTime" | "updateTime">;

/** The writable fields as columns: the location is two of them. */
function toColumns(f: AddressFields): Columns {
  const { location, ...text } = addressFieldsOf(f);
  return { ...text, latitude: location?.latitude ?? null, longitude: location?.longitude ?? null };
}

function toRow(a: Address): AddressRow {
  return { ...toColumns(a), id: a.id, ownerId: a.ownerId, isDefault: a.isDefault, version: a.version, createTime: a.createTime, updateTime: a.updateTime };
}

function toAddress(row: AddressRow): Address {
  const { latitude, longitude, ...rest } = row;
  return { ...rest, location: latitude !== null && longitude !== null ? { latitude, longitude } : null };
}

/** A row `returning()` must have produced; its absence is a bug, not a client error. */
function must<T>(row: T | undefined): T {
  if (row === undefined) throw new Error("statement returned no row");
  return row;
}
