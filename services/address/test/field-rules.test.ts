/**
 * Address's buf.validate rules over the wire: a request breaking rules declared in address.proto /
 * address_service.proto answers INVALID_ARGUMENT naming every wrong field by proto path in one
 * google.rpc.BadRequest — on gRPC (connect-node, and @grpc/grpc-js through the unary fast path), gRPC-web and
 * Connect — before the handler runs, so nothing is stored or changed.
 */
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { fromBinary } from "@bufbuild/protobuf";
import { anyUnpack } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import type { ServiceError } from "@grpc/grpc-js";
import { BadRequestSchema } from "@local-e-grocery/gen/google/rpc/error_details_pb.js";
import { StatusSchema } from "@local-e-grocery/gen/google/rpc/status_pb.js";
import { AddressKind } from "@local-e-grocery/gen/grocery/address/v1/address_pb.js";
import { AddressService } from "@local-e-grocery/gen/grocery/address/v1/address_service_pb.js";
import { badRequestFields, errorOf, grpcJsClient, type Protocol } from "../../../test/clients.js";
import { registerAndLogin, type TestUser } from "../../../test/harness.js";
import { sharedTestPlatform, type SharedTestPlatform } from "../../../test/shared-platform.js";
import { addressClient, home } from "./support.js";

/** A CreateAddress request breaking four rules at once: a control character, E.164, the country code, latitude. */
const badAddress = home({ label: "Home\u0007", phoneNumber: "98765 43210", countryCode: "IND", location: { latitude: 91, longitude: 0 } });
const badAddressFields = ["address.label", "address.phone_number", "address.country_code", "address.location.latitude"];

describe("address field rules over the wire (pglite)", () => {
  let tp: SharedTestPlatform;
  let user: TestUser;
  let addressId: string;
  before(async () => {
    tp = await sharedTestPlatform("pglite");
    user = await registerAndLogin(tp.url);
    addressId = (await addressClient(tp.url, user.accessToken).createAddress({ address: home() })).address!.id;
  });

  /** The book as stored: the rejected calls must leave its one address at version 1 and add none. */
  async function assertNothingStored(): Promise<void> {
    const client = addressClient(tp.url, user.accessToken);
    const list = await client.listAddresses({});
    assert.deepEqual(
      list.addresses.map((a) => [a.id, a.version, a.label]),
      [[addressId, 1n, "Home"]],
    );
  }

  for (const protocol of ["grpc", "grpc-web", "connect"] as Protocol[]) {
    it(`${protocol}: every broken rule of one request is named, by proto path, and nothing is stored`, async () => {
      const client = addressClient(tp.url, user.accessToken, protocol);
      assert.deepEqual(badRequestFields(await errorOf(client.createAddress({ address: badAddress }))), badAddressFields);
      assert.deepEqual(badRequestFields(await errorOf(client.createAddress({}))), ["address"]);
      const update = client.updateAddress({ address: { id: addressId, kind: 42 as AddressKind, label: "x".repeat(51) }, expectedVersion: -1n });
      assert.deepEqual(badRequestFields(await errorOf(update)), ["address.kind", "address.label", "expected_version"]);
      const nearby = client.findNearbyShops({ radiusKm: Number.NaN, pageSize: -1 });
      assert.deepEqual(badRequestFields(await errorOf(nearby)), ["location", "radius_km", "page_size"]);
      const outOfRange = client.findNearbyShops({ location: { latitude: 0, longitude: Number.POSITIVE_INFINITY }, radiusKm: -1 });
      assert.deepEqual(badRequestFields(await errorOf(outOfRange)), ["location.longitude", "radius_km"]);
      assert.deepEqual(badRequestFields(await errorOf(client.listAddresses({ kind: 9 as AddressKind }))), ["kind"]);
      assert.deepEqual(badRequestFields(await errorOf(client.deleteAddress({ addressId: "" }))), ["address_id"]);
      await assertNothingStored();
    });

    it(`${protocol}: the requests' own rules on the shared Address are named by its field, and nothing is stored`, async () => {
      const client = addressClient(tp.url, user.accessToken, protocol);
      const kindless = client.createAddress({ address: home({ kind: AddressKind.UNSPECIFIED, label: "Home\u0007" }) });
      assert.deepEqual(badRequestFields(await errorOf(kindless)), ["address.label", "address.kind"]);
      assert.deepEqual(badRequestFields(await errorOf(client.updateAddress({ address: { line1: "Elsewhere" }, updateMask: { paths: ["line1"] } }))), ["address.id"]);
      for (const paths of [["kind"], ["*"], ["line1", "kind"]]) {
        const update = client.updateAddress({ address: { id: addressId, line1: "Elsewhere" }, updateMask: { paths } });
        assert.deepEqual(badRequestFields(await errorOf(update)), ["address.kind"], paths.join());
      }
      await assertNothingStored();
    });
  }

  it("an update whose mask leaves kind out needs none", async () => {
    const client = addressClient(tp.url, user.accessToken, "connect");
    const updated = (await client.updateAddress({ address: { id: addressId, label: "Home" }, updateMask: { paths: ["label"] } })).address!;
    assert.equal(updated.kind, AddressKind.HOME);
    await assertNothingStored();
  });

  it("@grpc/grpc-js (the unary fast path) gets the same google.rpc.Status in grpc-status-details-bin", async () => {
    const client = grpcJsClient(tp.url);
    try {
      const err = await errorOf(client.unary(AddressService.method.createAddress, { address: badAddress }, { authorization: `Bearer ${user.accessToken}` }));
      assert.equal(err.code, Code.InvalidArgument);
      const [bin] = (err.cause as ServiceError).metadata.get("grpc-status-details-bin");
      assert.ok(Buffer.isBuffer(bin), "grpc-status-details-bin is present");
      const status = fromBinary(StatusSchema, bin);
      assert.equal(status.details.length, 1);
      const badRequest = anyUnpack(status.details[0]!, BadRequestSchema);
      assert.deepEqual([...new Set(badRequest?.fieldViolations.map((v) => v.field))], badAddressFields);
    } finally {
      client.close();
    }
    await assertNothingStored();
  });

  it("runs after auth: an anonymous malformed call is UNAUTHENTICATED and learns nothing about the rules", async () => {
    const err = await errorOf(addressClient(tp.url, undefined).createAddress({ address: badAddress }));
    assert.equal(err.code, Code.Unauthenticated);
    assert.equal(err.findDetails(BadRequestSchema).length, 0);
  });

  it("lets through what the rules admit and the service normalises: surrounding spaces, a lower-case country", async () => {
    const client = addressClient(tp.url, user.accessToken, "connect");
    const created = (await client.createAddress({ address: home({ countryCode: " in ", phoneNumber: " +919876543210 ", label: " Work ", kind: AddressKind.WORK }) })).address!;
    assert.equal(created.countryCode, "IN");
    assert.equal(created.phoneNumber, "+919876543210");
    assert.equal(created.label, "Work");
    await client.deleteAddress({ addressId: created.id });
    await assertNothingStored();
  });
});
