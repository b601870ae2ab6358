/** Shared pieces of the address integration tests: real clients over real sockets, and sample addresses. */
import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type Client } from "@connectrpc/connect";
import { AddressKind, type Address, type AddressSchema, type LatLng } from "@local-e-grocery/gen/grocery/address/v1/address_pb.js";
import { AddressService } from "@local-e-grocery/gen/grocery/address/v1/address_service_pb.js";
import { bearerInterceptor, clientFor, type Protocol } from "../../../test/clients.js";

export type AddressClient = Client<typeof AddressService>;

/** An AddressService client that sends `token` as its bearer token (none when undefined). */
export function addressClient(url: string, token: string | undefined, protocol: Protocol = "grpc"): AddressClient {
  return clientFor(AddressService, url, protocol, token === undefined ? [] : [bearerInterceptor(token)]);
}

/** The INVALID_ARGUMENT field a failing call names (the platform puts it before the colon of the message). */
export async function invalidFieldOf(call: Promise<unknown>): Promise<string> {
  try {
    await call;
  } catch (e) {
    const err = ConnectError.from(e);
    if (err.code !== Code.InvalidArgument) throw new Error(`expected INVALID_ARGUMENT, got ${Code[err.code]}: ${err.rawMessage}`);
    return err.rawMessage.split(":")[0] ?? "";
  }
  throw new Error("expected the call to fail, it succeeded");
}

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

export { destination } from "../../../test/geo.js";

export type { LatLng };
