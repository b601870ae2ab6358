/**
 * Structured field errors: an INVALID_ARGUMENT from a domain check names the wrong fields in a
 * google.rpc.BadRequest in the error details, on gRPC (the unary fast path and connect-node's own handler, read
 * by connect-node and by @grpc/grpc-js), gRPC-web and Connect, so a client can show each message next to its
 * input without parsing the message text.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { fromBinary } from "@bufbuild/protobuf";
import { anyIs, anyUnpack } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type ConnectRouter } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import type { ServiceError } from "@grpc/grpc-js";
import { BadRequestSchema } from "@local-e-grocery/gen/google/rpc/error_details_pb.js";
import { StatusSchema, type Status } from "@local-e-grocery/gen/google/rpc/status_pb.js";
import { AddressKind } from "@local-e-grocery/gen/grocery/address/v1/address_pb.js";
import { AddressService } from "@local-e-grocery/gen/grocery/address/v1/address_service_pb.js";
import { CartService } from "@local-e-grocery/gen/grocery/cart/v1/cart_service_pb.js";
import { AuthService } from "@local-e-grocery/gen/grocery/identity/v1/auth_service_pb.js";
import { Health } from "@local-e-grocery/gen/grpc/health/v1/health_pb.js";
import { bearer, clientFor, errorOf, grpcJsClient, type Protocol } from "../../../test/clients.js";
import { registerAndLogin, uniqueName, type TestUser } from "../../../test/harness.js";
import { sharedTestPlatform, type SharedTestPlatform } from "../../../test/shared-platform.js";
import { DomainError, invalidArgument, invalidArguments, notFound, toConnectError, type FieldViolation } from "../src/errors.js";
import { createErrorInterceptor } from "../src/interceptors.js";
import { createLogger } from "../src/logger.js";
import { createRpcServer, type RpcServer } from "../src/server.js";

/** The field violations a rejected call carries; fails unless it is INVALID_ARGUMENT with exactly one BadRequest. */
async function violationsOf(call: Promise<unknown>): Promise<FieldViolation[]> {
  const err = await errorOf(call);
  assert.equal(err.code, Code.InvalidArgument, err.message);
  const found = err.findDetails(BadRequestSchema);
  assert.equal(found.length, 1, "one google.rpc.BadRequest in the details");
  const violations = found[0]!.fieldViolations.map(({ field, description }) => ({ field, description }));
  // The message stays what it was before the details existed: each field, then what is wrong with it.
  assert.equal(err.rawMessage, violations.map((v) => `${v.field}: ${v.description}`).join("; "));
  return violations;
}

/**
 * The google.rpc.Status a @grpc/grpc-js call failed with, decoded from the grpc-status-details-bin trailer as
 * grpc-js hands it over (test/clients.ts keeps grpc-js's error as the cause), without connect's help.
 */
async function grpcJsStatusOf(call: Promise<unknown>) {
  const err = await errorOf(call);
  assert.equal(err.code, Code.InvalidArgument, err.message);
  const [bin, ...more] = (err.cause as ServiceError).metadata.get("grpc-status-details-bin");
  assert.equal(more.length, 0);
  assert.ok(Buffer.isBuffer(bin), "grpc-status-details-bin is present");
  return fromBinary(StatusSchema, bin);
}

/** The fields of the single google.rpc.BadRequest in a decoded Status. */
function badRequestFieldsOf(status: Status): string[] {
  assert.equal(status.code, Code.InvalidArgument);
  assert.equal(status.details.length, 1);
  const detail = status.details[0]!;
  assert.equal(detail.typeUrl, "type.googleapis.com/google.rpc.BadRequest");
  assert.ok(anyIs(detail, BadRequestSchema));
  return fieldsOf(anyUnpack(detail, BadRequestSchema)?.fieldViolations ?? []);
}

const fieldsOf = (violations: readonly FieldViolation[]) => violations.map((v) => v.field);

/** A complete, valid home address in Bengaluru with the given postal code. */
const addressWithPostalCode = (postalCode: string) => ({
  kind: AddressKind.HOME,
  label: "Home",
  recipientName: "Asha Rao",
  line1: "12 MG Road",
  city: "Bengaluru",
  state: "Karnataka",
  postalCode,
  countryCode: "IN",
});

describe("toConnectError and field violations", () => {
  it("gives an invalidArgument one BadRequest field violation and keeps its message", () => {
    const { error } = toConnectError(invalidArgument("address.postal_code", "not a valid postal code for IN"));
    assert.equal(error.code, Code.InvalidArgument);
    assert.equal(error.rawMessage, "address.postal_code: not a valid postal code for IN");
    const [badRequest, ...rest] = error.findDetails(BadRequestSchema);
    assert.equal(rest.length, 0);
    assert.deepEqual(
      badRequest?.fieldViolations.map(({ field, description }) => ({ field, description })),
      [{ field: "address.postal_code", description: "not a valid postal code for IN" }],
    );
  });

  it("reports every violation of a check that finds several, in one BadRequest", () => {
    const e = invalidArguments([
      { field: "address.line1", description: "required" },
      { field: "address.city", description: "required" },
    ]);
    assert.equal(e.field, "address.line1");
    const { error } = toConnectError(e);
    assert.equal(error.rawMessage, "address.line1: required; address.city: required");
    assert.deepEqual(fieldsOf(error.findDetails(BadRequestSchema)[0]?.fieldViolations ?? []), ["address.line1", "address.city"]);
  });

  it("takes a DomainError's own field when it lists no violations, and adds nothing when it has no field", () => {
    const withField = toConnectError(new DomainError(Code.InvalidArgument, "must be positive", "quantity")).error;
    assert.deepEqual(fieldsOf(withField.findDetails(BadRequestSchema)[0]?.fieldViolations ?? []), ["quantity"]);
    assert.equal(toConnectError(notFound("cart")).error.details.length, 0);
  });
});

describe("field violations over the wire (pglite)", () => {
  let tp: SharedTestPlatform;
  let user: TestUser;
  before(async () => {
    tp = await sharedTestPlatform("pglite");
    user = await registerAndLogin(tp.url);
  });

  for (const protocol of ["grpc", "grpc-web", "connect"] as Protocol[]) {
    describe(`connect-node ${protocol}`, () => {
      it("Register with a too-short username names username", async () => {
        const auth = clientFor(AuthService, tp.url, protocol);
        const username = uniqueName();
        const violations = await violationsOf(auth.register({ username: "ab", email: `${username}@example.com`, password: "sweet potatoes" }));
        assert.deepEqual(fieldsOf(violations), ["username"]);
        assert.notEqual(violations[0]?.description, "");
      });

      it("CreateCart with an empty name names name", async () => {
        const carts = clientFor(CartService, tp.url, protocol);
        assert.deepEqual(fieldsOf(await violationsOf(carts.createCart({ name: "" }, bearer(user.accessToken)))), ["name"]);
      });

      it("CreateAddress with a bad postal code names address.postal_code", async () => {
        const addresses = clientFor(AddressService, tp.url, protocol);
        const call = addresses.createAddress({ address: addressWithPostalCode("ABC") }, bearer(user.accessToken));
        assert.deepEqual(fieldsOf(await violationsOf(call)), ["address.postal_code"]);
      });

      it("an error that is not about the input carries no BadRequest", async () => {
        const carts = clientFor(CartService, tp.url, protocol);
        const err = await errorOf(carts.getCart({ cartId: "00000000-0000-4000-8000-000000000000" }, bearer(user.accessToken)));
        assert.equal(err.code, Code.NotFound);
        assert.equal(err.findDetails(BadRequestSchema).length, 0);
      });
    });
  }

  it("@grpc/grpc-js reads the violations from grpc-status-details-bin as a google.rpc.Status", async () => {
    const client = grpcJsClient(tp.url);
    try {
      const username = uniqueName();
      const registered = await grpcJsStatusOf(
        client.unary(AuthService.method.register, { username: "ab", email: `${username}@example.com`, password: "sweet potatoes" }),
      );
      assert.deepEqual(badRequestFieldsOf(registered), ["username"]);
      assert.match(registered.message, /^username: /);
      const created = await grpcJsStatusOf(
        client.unary(AddressService.method.createAddress, { address: addressWithPostalCode("ABC") }, { authorization: `Bearer ${user.accessToken}` }),
      );
      assert.deepEqual(badRequestFieldsOf(created), ["address.postal_code"]);
    } finally {
      client.close();
    }
  });

  it("plain Connect JSON carries a google.rpc.BadRequest detail with a base64 value", async () => {
    const username = uniqueName();
    const res = await fetch(`${tp.url}/grocery.identity.v1.AuthService/Register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username: "ab", email: `${username}@example.com`, password: "sweet potatoes" }),
    });
    assert.equal(res.status, 400);
    const body = (await res.json()) as { code: string; message: string; details?: { type: string; value: string }[] };
    assert.equal(body.code, "invalid_argument");
    assert.match(body.message, /^username: /);
    assert.equal(body.details?.length, 1);
    assert.equal(body.details[0]?.type, "google.rpc.BadRequest");
    const badRequest = fromBinary(BadRequestSchema, Buffer.from(body.details[0]?.value ?? "", "base64"));
    assert.deepEqual(fieldsOf(badRequest.fieldViolations), ["username"]);
  });
});

describe("the unary gRPC fast path sends the details as connect-node does", () => {
  // A check that finds two wrong fields at once, so both violations must survive the trailer encoding.
  const routes = (router: ConnectRouter) =>
    router.service(Health, {
      check() {
        throw invalidArguments([
          { field: "service", description: "must name a service" },
          { field: "service.name", description: "must not be empty — é/ü" },
        ]);
      },
    });
  const servers: Record<"fast" | "connect-node", { server: RpcServer; url: string }> = {} as never;
  before(async () => {
    for (const [name, unaryFastPath] of [["fast", true], ["connect-node", false]] as const) {
      const server = createRpcServer({ routes, interceptors: [createErrorInterceptor(createLogger({ level: "silent" }))], unaryFastPath });
      const port = await server.listen(0, "127.0.0.1");
      servers[name] = { server, url: `http://127.0.0.1:${port}` };
    }
  });
  after(async () => {
    for (const s of Object.values(servers)) await s.server.close(100);
  });

  /** The raw grpc-status-details-bin trailer and the violations connect-node decodes from it. */
  async function observe(url: string) {
    const health = createClient(Health, createGrpcTransport({ baseUrl: url, idleConnectionTimeoutMs: 500 }));
    const call = health.check({});
    const [violations, trailer] = await Promise.all([
      violationsOf(call),
      call.catch((e: unknown) => ConnectError.from(e).metadata.get("grpc-status-details-bin")),
    ]);
    return { violations, trailer };
  }

  it("writes the same grpc-status-details-bin with both violations", async () => {
    const fast = await observe(servers.fast.url);
    const general = await observe(servers["connect-node"].url);
    assert.deepEqual(fast.violations, [
      { field: "service", description: "must name a service" },
      { field: "service.name", description: "must not be empty — é/ü" },
    ]);
    assert.ok(fast.trailer, "the fast path sent grpc-status-details-bin");
    assert.equal(fast.trailer, general.trailer);
    assert.deepEqual(fast.violations, general.violations);
  });

  it("@grpc/grpc-js gets the details from the fast path too", async () => {
    const client = grpcJsClient(servers.fast.url);
    try {
      assert.deepEqual(badRequestFieldsOf(await grpcJsStatusOf(client.unary(Health.method.check, {}))), ["service", "service.name"]);
    } finally {
      client.close();
    }
  });
});
