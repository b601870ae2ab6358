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

/** The point `km` away from `from` on initial bearing `bearingDeg` (the standard destination-point formula). */
export function destination(from: { latitude: number; longitude: number }, km: number, bearingDeg: number): { latitude: number; longitude: number } {
  const R = 6371.0088;
  const rad = Math.PI / 180;
  const d = km / R;
  const b = bearingDeg * rad;
  const lat1 = from.latitude * rad;
  const lng1 = from.longitude * rad;
  const lat2 = Math.asin(Math.sin(lat1) * Math.cos(d) + Math.cos(lat1) * Math.sin(d) * Math.cos(b));
  const lng2 = lng1 + Math.atan2(Math.sin(b) * Math.sin(d) * Math.cos(lat1), Math.cos(d) - Math.sin(lat1) * Math.sin(lat2));
  return { latitude: lat2 / rad, longitude: ((lng2 / rad + 540) % 360) - 180 };
}

export type { LatLng };
