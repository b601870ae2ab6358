/** Sample addresses for tests and benchmarks: valid ones in Bengaluru, that a test changes field by field. */
import type { MessageInitShape } from "@bufbuild/protobuf";
import { AddressKind, type Address, type AddressSchema } from "@local-e-grocery/gen/grocery/address/v1/address_pb.js";

/** The writable fields of an Address, as plain values (what CreateAddress and UpdateAddress take). */
export type AddressInit = Partial<Omit<MessageInitShape<typeof AddressSchema> & Address, "$typeName" | "$unknown" | "location" | "createTime" | "updateTime">> & {
  location?: { latitude: number; longitude: number } | undefined;
};

/** A valid HOME address in Bengaluru; `overrides` replace fields. */
export function home(overrides: AddressInit = {}): AddressInit {
  return {
    kind: AddressKind.HOME,
    label: "Home",
    recipientName: "Asha Rao",
    phoneNumber: "+919876543210",
    line1: "12 MG Road",
    city: "Bengaluru",
    state: "Karnataka",
    postalCode: "560001",
    countryCode: "IN",
    location: { latitude: 12.9716, longitude: 77.5946 },
    ...overrides,
  };
}

/** A valid SHOP address at `location`. */
export function shop(name: string, location: { latitude: number; longitude: number }, overrides: AddressInit = {}): AddressInit {
  return home({ kind: AddressKind.SHOP, label: name, shopName: name, recipientName: "", location, ...overrides });
}

