import { randomUUID } from "node:crypto";
import { and, asc, between, count, desc, eq, gt, lt, ne, or, sql, type SQL } from "drizzle-orm";
import type { Db } from "../../platform/src/db.js";
import { notFound, permissionDenied, resourceExhausted } from "../../platform/src/errors.js";
import { checkExpectedVersion } from "../../platform/src/expected-version.js";
import type { Clock, UserStanding } from "../../platform/src/service-module.js";
import { boundingBox, earthRadiusKm } from "./geo.js";
import type { Address, AddressFields, AddressKind, LatLng, NearbyShop } from "./model.js";
import { addresses, purgeTombstones, userStandings, type AddressRow } from "./schema.js";

export interface AddressStoreOptions {
  db: Db;
  clock: Clock;
  /** New address ids; random UUIDs unless a test passes its own. */
  newId?: () => string;
  /** How long purgeOwner's tombstone refuses the owner's writes, in ms (PURGE_TOMBSTONE_TTL; default 15 minutes). */
  purgeTombstoneTtlMs?: number;
}

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
 * The address tables. Every write runs in one explicit transaction that first takes the owner's advisory lock,
 * so count limits and the one-default rule hold under concurrent calls from any number of replicas; the partial
 * unique index is the database's backstop for the latter. Owner mismatches look exactly like missing rows.
 * Under that same lock every write first checks the owner's purge tombstone: PERMISSION_DENIED while it is live.
 */
export interface AddressStore {
  /** Inserts an address, default when it is the owner's first. RESOURCE_EXHAUSTED when the owner has `maxPerOwner`. */
  create(ownerId: string, fields: AddressFields, maxPerOwner: number): Promise<Address>;
  get(ownerId: string, id: string): Promise<Address | undefined>;
  /** A page of the owner's addresses in creation order, and how many match in all. */
  list(query: ListQuery): Promise<{ addresses: Address[]; totalSize: number }>;
  /**
   * Replaces the fields of an address with what `change` makes of the current ones (it may throw to refuse).
   * NOT_FOUND when missing, ABORTED when `expectedVersion` is given and stale. Bumps the version only when a
   * field actually changes.
   */
  update(ownerId: string, id: string, expectedVersion: bigint | undefined, change: (current: Address) => AddressFields): Promise<Address>;
  /**
   * Deletes an address; when it was the default, promotes the owner's most recently updated remaining address
   * and returns it. NOT_FOUND when missing, ABORTED when `expectedVersion` is given and stale.
   */
  delete(ownerId: string, id: string, expectedVersion: bigint | undefined): Promise<{ promoted: Address | undefined }>;
  /** Moves the owner's default flag to `id` in one transaction; NOT_FOUND when missing. */
  setDefault(ownerId: string, id: string): Promise<Address>;
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
  /**
   * Deletes every address of an owner (account deletion) and, in the same transaction, records a tombstone that
   * refuses the owner's writes for `purgeTombstoneTtlMs` (expired tombstones of anyone are pruned); returns how
   * many addresses went. Idempotent: a repeat answers 0 and extends the tombstone. The owner's standing becomes
   * disabled, not a shop owner, at the largest sequence (see purgeOwner below).
   */
  purgeOwner(ownerId: string): Promise<number>;
}

export function createAddressStore(options: AddressStoreOptions): AddressStore {
  const { db, clock } = options;
  const newId = options.newId ?? randomUUID;
  const tombstoneTtlMs = options.purgeTombstoneTtlMs ?? 15 * 60_000;
  const now = () => new Date(clock());
  const owned = (ownerId: string, id: string) => and(eq(addresses.id, id), eq(addresses.ownerId, ownerId));

  /** Serialises the owner's writes until the transaction ends (two-key form: its own key space). */
  const lockOwner = (tx: Db, ownerId: string) =>
    tx.execute(sql`select pg_advisory_xact_lock(hashtext('address.owner'), hashtext(${ownerId}))`);

  /**
   * The owner lock, then PERMISSION_DENIED while the owner's purge tombstone is live: the account was deleted and
   * its still-valid access tokens may not write again (PERMISSION_DENIED, not FAILED_PRECONDITION: it is about
   * the caller, and nothing the caller can change lifts it). The purge takes the same lock, so a write either
   * commits before the purge starts (and is purged) or reads the tombstone the purge committed: the lock's wait
   * ends after that commit, and under READ COMMITTED the next statement sees it.
   */
  const lockLiveOwner = async (tx: Db, ownerId: string) => {
    await lockOwner(tx, ownerId);
    const live = await tx
      .select({ userId: purgeTombstones.userId })
      .from(purgeTombstones)
      .where(and(eq(purgeTombstones.userId, ownerId), gt(purgeTombstones.until, now())))
      .limit(1);
    if (live.length > 0) throw permissionDenied("this account has been deleted");
  };

  const selectOwned = async (tx: Db, ownerId: string, id: string) => {
    const [row] = await tx.select().from(addresses).where(owned(ownerId, id)).limit(1);
    return row;
  };

  // Compared as bigint: the wire's int64 is, and an expected version beyond any number is then merely stale.
  const checkVersion = (row: AddressRow, expectedVersion: bigint | undefined) => checkExpectedVersion(expectedVersion, BigInt(row.version), "address");

  return {
    create: (ownerId, fields, maxPerOwner) =>
      db.transaction(async (tx) => {
        await lockLiveOwner(tx, ownerId);
        const [stats] = await tx
          .select({ n: count(), defaults: sql<number>`count(*) filter (where ${addresses.isDefault})`.mapWith(Number) })
          .from(addresses)
          .where(eq(addresses.ownerId, ownerId));
        if ((stats?.n ?? 0) >= maxPerOwner) throw resourceExhausted(`an address book holds at most ${maxPerOwner} addresses`);
        const time = now();
        const [row] = await tx
          .insert(addresses)
          .values({ ...toColumns(fields), id: newId(), ownerId, isDefault: (stats?.defaults ?? 0) === 0, version: 1, createTime: time, updateTime: time })
          .returning();
        return toAddress(must(row));
      }),

    get: async (ownerId, id) => {
      const row = await selectOwned(db, ownerId, id);
      return row && toAddress(row);
    },

    list: (query) =>
      db.transaction(
        async (tx) => {
          const matching = and(eq(addresses.ownerId, query.ownerId), query.kind ? eq(addresses.kind, query.kind) : undefined);
          const after = query.after
            ? sql`(${addresses.createTime}, ${addresses.id}) > (${query.after.createTime.toISOString()}::timestamptz, ${query.after.id}::uuid)`
            : undefined;
          const rows = await tx
            .select()
            .from(addresses)
            .where(and(matching, after))
            .orderBy(asc(addresses.createTime), asc(addresses.id))
            .limit(query.limit);
          const [total] = await tx.select({ n: count() }).from(addresses).where(matching);
          return { addresses: rows.map(toAddress), totalSize: total?.n ?? 0 };
        },
        { isolationLevel: "repeatable read", accessMode: "read only" },
      ),

    update: (ownerId, id, expectedVersion, change) =>
      db.transaction(async (tx) => {
        await lockLiveOwner(tx, ownerId);
        const row = await selectOwned(tx, ownerId, id);
        if (!row) throw notFound("address");
        checkVersion(row, expectedVersion);
        const current = toAddress(row);
        const next = toColumns(change(current));
        if (sameColumns(toColumns(current), next)) return current;
        const [updated] = await tx
          .update(addresses)
          .set({ ...next, version: row.version + 1, updateTime: now() })
          .where(owned(ownerId, id))
          .returning();
        return toAddress(must(updated));
      }),

    delete: (ownerId, id, expectedVersion) =>
      db.transaction(async (tx) => {
        await lockLiveOwner(tx, ownerId);
        const row = await selectOwned(tx, ownerId, id);
        if (!row) throw notFound("address");
        checkVersion(row, expectedVersion);
        await tx.delete(addresses).where(owned(ownerId, id));
        if (!row.isDefault) return { promoted: undefined };
        const [heir] = await tx
          .select({ id: addresses.id })
          .from(addresses)
          .where(eq(addresses.ownerId, ownerId))
          .orderBy(desc(addresses.updateTime), desc(addresses.createTime), desc(addresses.id))
          .limit(1);
        if (!heir) return { promoted: undefined };
        const [promoted] = await tx
          .update(addresses)
          .set({ isDefault: true, version: sql`${addresses.version} + 1`, updateTime: now() })
          .where(owned(ownerId, heir.id))
          .returning();
        return { promoted: toAddress(must(promoted)) };
      }),

    setDefault: (ownerId, id) =>
      db.transaction(async (tx) => {
        await lockLiveOwner(tx, ownerId);
        const row = await selectOwned(tx, ownerId, id);
        if (!row) throw notFound("address");
        if (row.isDefault) return toAddress(row);
        const time = now();
        // Clear first: the partial unique index is checked per statement, not at commit.
        await tx
          .update(addresses)
          .set({ isDefault: false, version: sql`${addresses.version} + 1`, updateTime: time })
          .where(and(eq(addresses.ownerId, ownerId), eq(addresses.isDefault, true), ne(addresses.id, id)));
        const [updated] = await tx
          .update(addresses)
          .set({ isDefault: true, version: sql`${addresses.version} + 1`, updateTime: time })
          .where(owned(ownerId, id))
          .returning();
        return toAddress(must(updated));
      }),

    findNearbyShops: async (query) => {
      const distance = distanceKmSql(query.center);
      const box = boundingBox(query.center, query.radiusKm);
      const lngRanges = box.longitudeRanges.filter(([min, max]) => min > -180 || max < 180);
      const rows = await db
        .select({ row: addresses, distanceKm: distance.mapWith(Number) })
        .from(addresses)
        .where(
          and(
            eq(addresses.kind, "shop"),
            // Identity reports standings as they change; an owner it never reported on is listed.
            sql`not exists (select 1 from ${userStandings} where ${userStandings.userId} = ${addresses.ownerId} and not (${userStandings.enabled} and ${userStandings.shopOwner}))`,
            between(addresses.latitude, box.minLatitude, box.maxLatitude),
            lngRanges.length > 0 ? or(...lngRanges.map(([min, max]) => between(addresses.longitude, min, max))) : undefined,
            sql`${distance} <= ${query.radiusKm}::float8`,
            query.after ? sql`(${distance}, ${addresses.id}) > (${query.after.distanceKm}::float8, ${query.after.id}::uuid)` : undefined,
          ),
        )
        .orderBy(distance, asc(addresses.id))
        .limit(query.limit);
      return rows.map((r) => ({ address: toAddress(r.row), distanceKm: r.distanceKm }));
    },

    purgeOwner: (ownerId) =>
      db.transaction(async (tx) => {
        await lockOwner(tx, ownerId);
        const time = now();
        await tx.delete(purgeTombstones).where(lt(purgeTombstones.until, time));
        const until = new Date(time.getTime() + tombstoneTtlMs);
        await tx
          .insert(purgeTombstones)
          .values({ userId: ownerId, until })
          .onConflictDoUpdate({ target: purgeTombstones.userId, set: { until: sql`greatest(${purgeTombstones.until}, excluded.until)` } });
        // The standing is kept, not deleted: it becomes "disabled, no shop owner" at the largest sequence, which no
        // report can overtake. The purge deletes the shops anyway and the tombstone refuses new ones while the
        // user's tokens live; this row makes sure besides that nothing of a deleted owner is ever listed again,
        // and that a standing report delivered after the purge (identity's events may arrive in any order) is
        // answered applied=false instead of recording a deleted user anew. It holds the user id and two flags,
        // like the tombstone, and is not counted as a deleted row.
        await tx
          .insert(userStandings)
          .values({ userId: ownerId, ...purgedStanding })
          .onConflictDoUpdate({ target: userStandings.userId, set: purgedStanding });
        const gone = await tx.delete(addresses).where(eq(addresses.ownerId, ownerId)).returning({ id: addresses.id });
        return gone.length;
      }),

    setStanding: async (standing) => {
      const values = { enabled: standing.enabled, shopOwner: standing.shopOwner, sequence: standing.sequence };
      // ON CONFLICT DO UPDATE ... WHERE is atomic on PostgreSQL: a concurrent insert of the same user waits for the
      // other's commit and then evaluates the WHERE against the row that committed, so a lower sequence never
      // overwrites a higher one. No row comes back when the WHERE kept the stored standing.
      const rows = await db
        .insert(userStandings)
        .values({ userId: standing.userId, ...values })
        .onConflictDoUpdate({ target: userStandings.userId, set: values, setWhere: lt(userStandings.sequence, standing.sequence) })
        .returning({ userId: userStandings.userId });
      return rows.length > 0;
    },
  };
}

/** The standing a purge leaves: hidden for good, at int64's largest value, which no SetUserStanding can exceed. */
const purgedStanding = { enabled: false, shopOwner: false, sequence: 2n ** 63n - 1n };

/**
 * Haversine great-circle distance in kilometres from `center` to a row's location, in plain SQL (no PostGIS or
 * earthdistance, so it runs on PGlite too). `least(1, …)` keeps rounding from pushing asin out of its domain.
 */
function distanceKmSql(center: LatLng): SQL<number> {
  const lat = sql`${center.latitude}::float8`;
  const lng = sql`${center.longitude}::float8`;
  return sql<number>`(2 * ${earthRadiusKm}::float8 * asin(least(1::float8, sqrt(
    power(sin(radians(${addresses.latitude} - ${lat}) / 2), 2)
    + cos(radians(${lat})) * cos(radians(${addresses.latitude})) * power(sin(radians(${addresses.longitude} - ${lng}) / 2), 2)))))`;
}

type Columns = Omit<AddressRow, "id" | "ownerId" | "isDefault" | "version" | "createTime" | "updateTime">;

function toColumns(f: AddressFields): Columns {
  return {
    kind: f.kind,
    label: f.label,
    recipientName: f.recipientName,
    phoneNumber: f.phoneNumber,
    line1: f.line1,
    line2: f.line2,
    landmark: f.landmark,
    city: f.city,
    district: f.district,
    state: f.state,
    postalCode: f.postalCode,
    countryCode: f.countryCode,
    latitude: f.location?.latitude ?? null,
    longitude: f.location?.longitude ?? null,
    shopName: f.shopName,
  };
}

function sameColumns(a: Columns, b: Columns): boolean {
  return (Object.keys(a) as (keyof Columns)[]).every((k) => Object.is(a[k], b[k]));
}

function toAddress(row: AddressRow): Address {
  return {
    id: row.id,
    ownerId: row.ownerId,
    kind: row.kind,
    label: row.label,
    recipientName: row.recipientName,
    phoneNumber: row.phoneNumber,
    line1: row.line1,
    line2: row.line2,
    landmark: row.landmark,
    city: row.city,
    district: row.district,
    state: row.state,
    postalCode: row.postalCode,
    countryCode: row.countryCode,
    location: row.latitude !== null && row.longitude !== null ? { latitude: row.latitude, longitude: row.longitude } : null,
    shopName: row.shopName,
    isDefault: row.isDefault,
    version: row.version,
    createTime: row.createTime,
    updateTime: row.updateTime,
  };
}

/** A row `returning()` must have produced; its absence is a bug, not a client error. */
function must<T>(row: T | undefined): T {
  if (row === undefined) throw new Error("statement returned no row");
  return row;
}
