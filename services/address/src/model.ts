/** The address service's own vocabulary, free of protobuf types; routes.ts converts to and from the wire. */

export const addressKinds = ["home", "work", "other", "shop"] as const;
export type AddressKind = (typeof addressKinds)[number];

export interface LatLng {
  readonly latitude: number;
  readonly longitude: number;
}

/** The fields an owner writes. Strings are trimmed; empty means absent. */
export interface AddressFields {
  kind: AddressKind;
  label: string;
  recipientName: string;
  phoneNumber: string;
  line1: string;
  line2: string;
  landmark: string;
  city: string;
  district: string;
  state: string;
  postalCode: string;
  countryCode: string;
  location: LatLng | null;
  shopName: string;
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

/** The proto field name of each writable field, for error messages and update masks. */
export const protoFieldNames: Readonly<Record<keyof AddressFields, string>> = {
  kind: "kind",
  label: "label",
  recipientName: "recipient_name",
  phoneNumber: "phone_number",
  line1: "line1",
  line2: "line2",
  landmark: "landmark",
  city: "city",
  district: "district",
  state: "state",
  postalCode: "postal_code",
  countryCode: "country_code",
  location: "location",
  shopName: "shop_name",
};
