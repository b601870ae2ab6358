/** The address service's own vocabulary, free of protobuf types; routes.ts converts to and from the wire. */

export const addressKinds = ["home", "work", "other", "shop"] as const;
export type AddressKind = (typeof addressKinds)[number];

export interface LatLng {
  readonly latitude: number;
  readonly longitude: number;
}

/**
 * The text fields an owner writes, in the order of the Address message: the one list that validation, the store
 * and the wire mappings walk. The proto names are these in snake_case (`protoFieldName`), which routes.ts checks
 * against the descriptor at start-up.
 */
export const addressTextFields = [
  "label",
  "recipientName",
  "phoneNumber",
  "line1",
  "line2",
  "landmark",
  "city",
  "district",
  "state",
  "postalCode",
  "countryCode",
  "shopName",
] as const;
export type AddressTextField = (typeof addressTextFields)[number];

/** The fields an owner writes. Strings are trimmed; empty means absent. */
export interface AddressFields extends Record<AddressTextField, string> {
  kind: AddressKind;
  location: LatLng | null;
}

/** Every writable field. */
export const addressFieldNames: readonly (keyof AddressFields)[] = ["kind", ...addressTextFields, "location"];

/** The text fields of `source` (an Address, a request message…), and nothing else of it. */
export function textFieldsOf(source: Readonly<Record<AddressTextField, string>>): Record<AddressTextField, string> {
  return Object.fromEntries(addressTextFields.map((f) => [f, source[f]])) as Record<AddressTextField, string>;
}

/** The writable fields of `source`, and nothing else of it (no id, owner or version). */
export function addressFieldsOf(source: AddressFields): AddressFields {
  return { kind: source.kind, ...textFieldsOf(source), location: source.location };
}

/** A stored address. */
export interface Address extends AddressFields {
  readonly id: string;
  readonly ownerId: string;
  readonly isDefault: boolean;
  readonly version: number;
  readonly createTime: Date;
  readonly updateTime: Date;
}

/** A SHOP address found by a nearby search, with its distance from the searched point. */
export interface NearbyShop {
  readonly address: Address;
  readonly distanceKm: number;
}

/** The proto name of a writable field, for error messages and update masks: `recipientName` → `recipient_name`. */
export function protoFieldName(field: keyof AddressFields): string {
  return field.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}
