import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter, HandlerContext } from "@connectrpc/connect";
import {
  AddressKind as ProtoKind,
  AddressSchema,
  LatLngSchema,
  type Address as ProtoAddress,
  type LatLng as ProtoLatLng,
} from "@local-e-grocery/gen/grocery/address/v1/address_pb.js";
import { AddressService, NearbyShopSchema, type NearbyShop as ProtoNearbyShop } from "@local-e-grocery/gen/grocery/address/v1/address_service_pb.js";
import { Role } from "@local-e-grocery/gen/grocery/auth/v1/auth_pb.js";
import { hasRole, requirePrincipal } from "@local-e-grocery/platform/context.js";
import { createUpdateMaskResolver } from "@local-e-grocery/platform/update-mask.js";
import type { AddressBook, AddressInput, Caller } from "./address-book.js";
import {
  addressFieldNames,
  addressTextFields,
  protoFieldName,
  textFieldsOf,
  type Address,
  type AddressFields,
  type AddressKind,
  type LatLng,
  type NearbyShop,
} from "./model.js";

/**
 * Registers AddressService on a router. Handlers only translate between the wire and the address book; the
 * access interceptor has already checked the caller's roles against the proto's access options, and the validate
 * interceptor the request against its buf.validate rules (required messages, defined kinds, ranges, lengths).
 */
export function addressRoutes(book: AddressBook): (router: ConnectRouter) => void {
  return (router) =>
    router.service(AddressService, {
      async createAddress(req, ctx) {
        const address = await book.create(callerOf(ctx), inputFrom(req.address));
        return { address: toProto(address) };
      },
      async getAddress(req, ctx) {
        return { address: toProto(await book.get(callerOf(ctx), req.addressId)) };
      },
      async listAddresses(req, ctx) {
        const page = await book.list(callerOf(ctx), { pageSize: req.pageSize, pageToken: req.pageToken, kind: kindFromProto(req.kind) });
        return { addresses: page.items.map(toProto), nextPageToken: page.nextPageToken, totalSize: page.totalSize };
      },
      async updateAddress(req, ctx) {
        const address = await book.update(callerOf(ctx), {
          id: req.address?.id ?? "",
          input: inputFrom(req.address),
          fields: fieldsToUpdate(req.updateMask?.paths, req.address),
          expectedVersion: req.expectedVersion,
        });
        return { address: toProto(address) };
      },
      async deleteAddress(req, ctx) {
        const { promoted } = await book.delete(callerOf(ctx), req.addressId, req.expectedVersion);
        return { promotedAddress: promoted && toProto(promoted) };
      },
      async setDefaultAddress(req, ctx) {
        return { address: toProto(await book.setDefault(callerOf(ctx), req.addressId)) };
      },
      async findNearbyShops(req) {
        // The schema makes location required; a call without it reaching here is a bug, not bad input.
        if (!req.location) throw new Error("findNearbyShops: location is required by the schema");
        const page = await book.findNearbyShops({
          location: latLngFrom(req.location),
          radiusKm: req.radiusKm,
          pageSize: req.pageSize,
          pageToken: req.pageToken,
        });
        return { shops: page.items.map(nearbyToProto), nextPageToken: page.nextPageToken, radiusKm: page.radiusKm };
      },
    });
}

// The writable fields are the domain's AddressFields; every other Address field is output only. Each must be the
// descriptor's field of that name, with the proto name the domain's error messages use.
for (const field of addressFieldNames) {
  if (AddressSchema.field[field]?.name !== protoFieldName(field)) throw new Error(`Address has no field ${protoFieldName(field)} (${field})`);
}
const fieldByPath = new Map(addressFieldNames.map((field) => [protoFieldName(field), field]));
const addressMask = createUpdateMaskResolver({
  schema: AddressSchema,
  updatable: [...fieldByPath.keys()],
  readOnlyReasons: { is_default: "changes only through SetDefaultAddress" },
});

/**
 * The fields UpdateAddress overwrites (AIP-134): those named in the mask, every field set in `address` when the
 * mask is absent or empty, every writable field for "*". INVALID_ARGUMENT("update_mask") for unknown and
 * output-only paths (is_default included) and for sub-paths of location, which is replaced whole.
 */
export function fieldsToUpdate(paths: readonly string[] | undefined, address: ProtoAddress | undefined): Set<keyof AddressFields> {
  return new Set([...addressMask.resolve(paths, address)].map((path) => fieldByPath.get(path) as keyof AddressFields));
}

function callerOf(ctx: HandlerContext): Caller {
  const principal = requirePrincipal(ctx);
  return { ownerId: principal.subject, isShopOwner: hasRole(principal, Role.SHOP_OWNER) };
}

const kindByProto = new Map<ProtoKind, AddressKind>([
  [ProtoKind.HOME, "home"],
  [ProtoKind.WORK, "work"],
  [ProtoKind.OTHER, "other"],
  [ProtoKind.SHOP, "shop"],
]);
const protoByKind = new Map([...kindByProto].map(([proto, kind]) => [kind, proto]));

/**
 * undefined for ADDRESS_KIND_UNSPECIFIED. Numbers the enum does not define are refused by the schema
 * (defined_only), so one reaching here is a bug.
 */
function kindFromProto(kind: ProtoKind): AddressKind | undefined {
  if (kind === ProtoKind.UNSPECIFIED) return undefined;
  const known = kindByProto.get(kind);
  if (known === undefined) throw new Error(`kindFromProto: ${kind} is not an AddressKind, which the schema refuses`);
  return known;
}

function inputFrom(address: ProtoAddress | undefined): AddressInput {
  // The schema makes address required on CreateAddress and UpdateAddress; a call without it is a bug.
  if (!address) throw new Error("inputFrom: address is required by the schema");
  return { ...textFieldsOf(address), kind: kindFromProto(address.kind), location: address.location ? latLngFrom(address.location) : null };
}

function latLngFrom(p: ProtoLatLng): LatLng {
  return { latitude: p.latitude, longitude: p.longitude };
}

function toProto(a: Address): ProtoAddress {
  return create(AddressSchema, {
    ...textFieldsOf(a),
    id: a.id,
    kind: protoByKind.get(a.kind) ?? ProtoKind.UNSPECIFIED,
    location: a.location ? create(LatLngSchema, a.location) : undefined,
    isDefault: a.isDefault,
    version: BigInt(a.version),
    createTime: timestampFromDate(a.createTime),
    updateTime: timestampFromDate(a.updateTime),
  });
}

/**
 * The text fields a NearbyShop carries, under the same names as in Address: what its descriptor declares is the
 * public part of a SHOP address (not its label or recipient name).
 */
const publicTextFields = addressTextFields.filter((f) => NearbyShopSchema.fields.some((d) => d.localName === f));

/** owner_id stays empty (deprecated): shop owners' user ids are not public. */
function nearbyToProto({ address: a, distanceKm }: NearbyShop): ProtoNearbyShop {
  return create(NearbyShopSchema, {
    ...Object.fromEntries(publicTextFields.map((f) => [f, a[f]])),
    addressId: a.id,
    location: a.location ? create(LatLngSchema, a.location) : undefined,
    distanceKm,
  });
}
