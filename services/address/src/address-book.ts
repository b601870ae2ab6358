import { failedPrecondition, notFound, permissionDenied, resourceExhausted } from "@local-e-grocery/platform/errors.js";
import { checkExpectedVersion } from "@local-e-grocery/platform/expected-version.js";
import { canonicalUuid } from "@local-e-grocery/platform/ids.js";
import { cursorId, cursorNumber, decodeScopedPageToken, decodeTimeCursor, encodeScopedPageToken, encodeTimeCursor, pageOf, resolvePageSize, type Page, type PageSizeOptions } from "@local-e-grocery/platform/pagination.js";
import type { Clock, UserStanding } from "@local-e-grocery/platform/service-module.js";
import { accountDeleted } from "@local-e-grocery/platform/tombstones.js";
import type { AddressConfig } from "./config.js";
import { addressFieldNames, type Address, type AddressFields, type AddressKind, type LatLng, type NearbyShop } from "./model.js";
import type { AddressStore, AddressTx } from "./store.js";
import { normaliseLatLng, validateAddress } from "./validation.js";

/** Who is asking, as the address rules see it. */
export interface Caller {
  /** The access token's subject: owner of every address the caller touches. */
  readonly ownerId: string;
  /** Holds ROLE_SHOP_OWNER, so may manage SHOP addresses. */
  readonly isShopOwner: boolean;
}

/** Address fields as a request carries them: the kind may be missing (ADDRESS_KIND_UNSPECIFIED). */
export type AddressInput = Omit<AddressFields, "kind"> & { kind: AddressKind | undefined };

export interface ListRequest {
  pageSize: number;
  pageToken: string;
  kind: AddressKind | undefined;
}

export interface UpdateRequest {
  id: string;
  input: AddressInput;
  /** The fields to overwrite, as the update mask resolved them; the others keep their stored values. */
  fields: ReadonlySet<keyof AddressFields>;
  expectedVersion: bigint | undefined;
}

export interface NearbyRequest {
  location: LatLng;
  radiusKm: number;
  pageSize: number;
  pageToken: string;
}

/**
 * The address book rules on top of the store, for requests whose shape the schema's buf.validate rules have
 * already accepted (validation.ts lists what is left to the code). Every method throws DomainErrors:
 * INVALID_ARGUMENT naming the field, NOT_FOUND for unknown, malformed or foreign ids, PERMISSION_DENIED for SHOP
 * addresses without ROLE_SHOP_OWNER, FAILED_PRECONDITION for kind changes to or from SHOP, ABORTED for stale
 * versions, RESOURCE_EXHAUSTED for a full book, PERMISSION_DENIED for any write by a user purged less than
 * PURGE_TOMBSTONE_TTL ago. Bad input is refused before anything is written.
 */
export interface AddressBook {
  create(caller: Caller, input: AddressInput): Promise<Address>;
  get(caller: Caller, id: string): Promise<Address>;
  list(caller: Caller, request: ListRequest): Promise<Page<Address> & { totalSize: number }>;
  update(caller: Caller, request: UpdateRequest): Promise<Address>;
  delete(caller: Caller, id: string, expectedVersion: bigint | undefined): Promise<{ promoted: Address | undefined }>;
  setDefault(caller: Caller, id: string): Promise<Address>;
  findNearbyShops(request: NearbyRequest): Promise<Page<NearbyShop> & { radiusKm: number }>;
  /**
   * Account deletion (UserDataService/PurgeUser): every address of `ownerId` goes, and a tombstone stays; so does
   * a standing that keeps the owner's shops unlisted for good.
   */
  purgeUser(ownerId: string): Promise<number>;
  /**
   * UserDataService/SetUserStanding: the owner's shops are listed while the latest standing (highest sequence) is
   * enabled and shop owner. Answers false when a standing with an equal or higher sequence is already recorded.
   */
  setUserStanding(standing: UserStanding): Promise<boolean>;
}

export interface AddressBookOptions {
  store: AddressStore;
  config: AddressConfig;
  clock: Clock;
  /** New address ids (random UUIDs in the service). */
  newId: () => string;
}

/** Address lists hold 20 items unless asked for fewer, and 100 at most (AIP-158). */
export const addressPageSizes: PageSizeOptions = { defaultSize: 20, maxSize: 100 };

/**
 * The standing a purge leaves: hidden, at int64's largest sequence, which no SetUserStanding can exceed. The standing
 * is kept, not deleted, when the user is purged: the purge deletes the shops anyway and the tombstone refuses new
 * ones while the user's tokens live, and this row makes sure besides that nothing of a deleted owner is ever listed
 * again, and that a standing report delivered after the purge (identity's events may arrive in any order) is
 * answered applied=false instead of recording a deleted user anew. It holds the user id and two flags, like the
 * tombstone, and is not counted among the rows the purge deleted.
 */
const purgedStanding = { enabled: false, shopOwner: false, sequence: 2n ** 63n - 1n };

export function createAddressBook({ store, config, clock, newId }: AddressBookOptions): AddressBook {
  /**
   * A well-formed id, lower-cased, or NOT_FOUND: a malformed id names no address, like someone else's, which is
   * why this is not a field rule (the schema only makes the id fields required).
   */
  const addressId = (id: string): string => {
    const canonical = canonicalUuid(id);
    if (canonical === undefined) throw notFound("address");
    return canonical;
  };

  const requireShopOwner = (caller: Caller, kind: AddressKind) => {
    if (kind === "shop" && !caller.isShopOwner) throw permissionDenied("only shop owners manage SHOP addresses");
  };

  /**
   * Every write starts here: the owner lock, then PERMISSION_DENIED while the owner's purge tombstone is live (the
   * account was deleted and its still-valid access tokens may not write again). The purge takes the same lock, so
   * a write either commits before the purge starts (and is purged) or reads the tombstone the purge committed: the
   * lock's wait ends after that commit, and under READ COMMITTED the next statement sees it.
   */
  const lockLiveOwner = async (tx: AddressTx, ownerId: string) => {
    await tx.lockOwner(ownerId);
    if (await tx.isPurged(ownerId, clock())) throw accountDeleted();
  };

  /** The owner's address, NOT_FOUND when absent, ABORTED when `expectedVersion` is given and stale. */
  const findCurrent = async (tx: AddressTx, ownerId: string, id: string, expectedVersion?: bigint) => {
    const found = await tx.findAddress(ownerId, id);
    if (!found) throw notFound("address");
    // Compared as bigint: the wire's int64 is, and an expected version beyond any number is then merely stale.
    checkExpectedVersion(expectedVersion, BigInt(found.version), "address");
    return found;
  };

  return {
    async create(caller, input) {
      const kind = input.kind;
      // CreateAddressRequest's rules require the kind; a call without one reaching here is a bug, not bad input.
      if (kind === undefined) throw new Error("create: address.kind is required by the schema");
      requireShopOwner(caller, kind);
      const fields = validateAddress({ ...input, kind });
      return store.write(async (tx) => {
        await lockLiveOwner(tx, caller.ownerId);
        const book = await tx.bookStats(caller.ownerId);
        if (book.count >= config.maxPerOwner) throw resourceExhausted(`an address book holds at most ${config.maxPerOwner} addresses`);
        const time = new Date(clock());
        // A book without a default (the owner's first address) takes this one as its default.
        const address: Address = { ...fields, id: newId(), ownerId: caller.ownerId, isDefault: !book.hasDefault, version: 1, createTime: time, updateTime: time };
        await tx.insertAddress(address);
        return address;
      });
    },

    async get(caller, id) {
      const found = await store.readOne((tx) => tx.findAddress(caller.ownerId, addressId(id)));
      if (!found) throw notFound("address");
      return found;
    },

    async list(caller, request) {
      const limit = resolvePageSize(request.pageSize, addressPageSizes);
      const kind = request.kind ?? "";
      // Tokens are bound to the caller and the kind filter, as every list's are (AIP-158).
      const scope = `grocery.address.v1.AddressService/ListAddresses:${caller.ownerId}:${kind}`;
      const after = decodeTimeCursor(request.pageToken, scope);
      const { addresses, totalSize } = await store.readOne((tx) => tx.listPage({ ownerId: caller.ownerId, kind: request.kind, after, limit: limit + 1 }));
      const page = pageOf(addresses, limit, (last) => encodeTimeCursor(scope, last));
      return { ...page, totalSize };
    },

    async update(caller, request) {
      // UpdateAddressRequest's rules require the id, and a kind when the mask names it.
      const { fields } = request;
      const id = addressId(request.id);
      return store.write(async (tx) => {
        await lockLiveOwner(tx, caller.ownerId);
        const current = await findCurrent(tx, caller.ownerId, id, request.expectedVersion);
        const merged: AddressInput = { ...current };
        for (const f of fields) copyField(merged, request.input, f);
        const kind = merged.kind ?? current.kind;
        // A SHOP address is a public listing: turning a private address into one (or back) by an update would
        // publish or hide it as a side effect, so that takes a delete and a create.
        if (kind !== current.kind && (kind === "shop" || current.kind === "shop")) {
          throw failedPrecondition("an address cannot change to or from ADDRESS_KIND_SHOP; create a new address instead");
        }
        requireShopOwner(caller, kind);
        const next = validateAddress({ ...merged, kind });
        // The version counts changes: an update that changes no field leaves the address as it is.
        if (sameFields(current, next)) return current;
        return tx.updateAddress(caller.ownerId, id, { fields: next, version: current.version + 1, updateTime: new Date(clock()) });
      });
    },

    async delete(caller, id, expectedVersion) {
      const target = addressId(id);
      return store.write(async (tx) => {
        await lockLiveOwner(tx, caller.ownerId);
        const gone = await findCurrent(tx, caller.ownerId, target, expectedVersion);
        await tx.deleteAddress(caller.ownerId, gone.id);
        if (!gone.isDefault) return { promoted: undefined };
        // The default went: the most recently updated remaining address becomes the default.
        const heir = await tx.latestAddress(caller.ownerId);
        if (!heir) return { promoted: undefined };
        return { promoted: await tx.setDefaultFlag(caller.ownerId, heir.id, true, new Date(clock())) };
      });
    },

    async setDefault(caller, id) {
      const target = addressId(id);
      return store.write(async (tx) => {
        await lockLiveOwner(tx, caller.ownerId);
        const chosen = await findCurrent(tx, caller.ownerId, target);
        if (chosen.isDefault) return chosen;
        const time = new Date(clock());
        // Clear first: the one-default unique index is checked per statement, not at commit.
        await tx.clearOtherDefaults(caller.ownerId, chosen.id, time);
        return tx.setDefaultFlag(caller.ownerId, chosen.id, true, time);
      });
    },

    async findNearbyShops(request) {
      const center = normaliseLatLng(request.location);
      const radiusKm = request.radiusKm === 0 ? config.defaultRadiusKm : Math.min(request.radiusKm, config.maxRadiusKm);
      const limit = resolvePageSize(request.pageSize, addressPageSizes);
      // Bound to the searched point and radius: a token replayed with others is INVALID_ARGUMENT.
      const scope = `grocery.address.v1.AddressService/FindNearbyShops:${center.latitude},${center.longitude},${radiusKm}`;
      const after = decodeScopedPageToken(request.pageToken, scope, (key) => {
        if (!Array.isArray(key) || key.length !== 2) return undefined;
        const [distance, lastId]: unknown[] = key;
        // Every shop on a page lies within the radius, so a distance beyond it (or 1e999, read as Infinity) was
        // never issued.
        const distanceKm = cursorNumber(distance, { min: 0, max: radiusKm });
        const id = cursorId(lastId);
        return distanceKm !== undefined && id ? { distanceKm, id } : undefined;
      });
      const shops = await store.readOne((tx) => tx.findNearbyShops({ center, radiusKm, after, limit: limit + 1 }));
      const page = pageOf(shops, limit, (last) => encodeScopedPageToken(scope, [last.distanceKm, last.address.id]));
      return { ...page, radiusKm };
    },

    purgeUser: (ownerId) =>
      store.write(async (tx) => {
        // The owner lock orders the purge against every write, which takes it first too (lockLiveOwner).
        await tx.lockOwner(ownerId);
        const now = clock();
        await tx.leaveTombstone(ownerId, now + config.purgeTombstoneTtlMs, now);
        await tx.forceStanding({ userId: ownerId, ...purgedStanding });
        return tx.deleteOwnerAddresses(ownerId);
      }),

    setUserStanding: (standing) => store.write((tx) => tx.setStanding(standing)),
  };
}

function copyField<K extends keyof AddressFields>(target: AddressInput, source: AddressInput, field: K): void {
  (target as Record<K, unknown>)[field] = source[field];
}

/** True when `next` holds the same writable fields as `current`. */
function sameFields(current: AddressFields, next: AddressFields): boolean {
  return addressFieldNames.every((f) =>
    f === "location"
      ? current.location?.latitude === next.location?.latitude && current.location?.longitude === next.location?.longitude
      : current[f] === next[f],
  );
}
