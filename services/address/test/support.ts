/** Shared pieces of the address integration tests: real clients over real sockets, and sample addresses. */
import { Code, ConnectError, type Client } from "@connectrpc/connect";
import type { LatLng } from "@local-e-grocery/gen/grocery/address/v1/address_pb.js";
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

export { home, shop, type AddressInit } from "../../../test/addresses.js";
export { destination } from "../../../test/geo.js";

export type { LatLng };
