/**
 * Who may call CartService and AddressService, over the real stack: carts and address books belong to customers
 * and shop owners only. Every RPC, called with an empty request, answers UNAUTHENTICATED without a token,
 * PERMISSION_DENIED for ADMIN and SERVICE tokens (minted by the real identity service), and for CUSTOMER and
 * SHOP_OWNER the handler's own answer, never INTERNAL.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type CallOptions } from "@connectrpc/connect";
import { AddressService } from "@local-e-grocery/gen/grocery/address/v1/address_service_pb.js";
import { Role } from "@local-e-grocery/gen/grocery/auth/v1/auth_pb.js";
import { CartService } from "@local-e-grocery/gen/grocery/cart/v1/cart_service_pb.js";
import { accessPolicyOf } from "@local-e-grocery/platform/auth/access-interceptor.js";
import { bearer, transportFor } from "./clients.js";
import { backends, callJson, registerAndLogin, startTestPlatform, type TestPlatform } from "./harness.js";

const admin = { username: "roles_admin", email: "roles-admin@grocery.example", password: "parsnips in the pantry" };
const owners = [Role.CUSTOMER, Role.SHOP_OWNER];

for (const backend of backends) {
  describe(`cart and address access by role on ${backend}`, () => {
    let tp: TestPlatform;
    const tokens = new Map<Role, string>();

    before(async () => {
      tp = await startTestPlatform({ backend, env: { ADMIN_USERNAME: admin.username, ADMIN_EMAIL: admin.email, ADMIN_PASSWORD: admin.password } });
      tokens.set(Role.CUSTOMER, (await registerAndLogin(tp.url)).accessToken);
      tokens.set(Role.SHOP_OWNER, (await registerAndLogin(tp.url, { role: Role.SHOP_OWNER })).accessToken);
      const { accessToken: adminToken } = await callJson<{ accessToken: string }>(tp.url, "grocery.identity.v1.AuthService/Login", {
        login: admin.username,
        password: admin.password,
      });
      tokens.set(Role.ADMIN, adminToken);
      const sa = await callJson<{ serviceAccount: { clientId: string }; clientSecret: string }>(
        tp.url,
        "grocery.identity.v1.UserService/CreateServiceAccount",
        { name: "roles-service" },
        adminToken,
      );
      const service = await callJson<{ accessToken: string }>(tp.url, "grocery.identity.v1.AuthService/IssueServiceToken", {
        clientId: sa.serviceAccount.clientId,
        clientSecret: sa.clientSecret,
      });
      tokens.set(Role.SERVICE, service.accessToken);
    });
    after(() => tp?.close());

    for (const service of [CartService, AddressService]) {
      it(`${service.name}: customers and shop owners only`, async () => {
        for (const method of service.methods) {
          const name = `${service.name}.${method.name}`;
          assert.deepEqual(accessPolicyOf(method)?.roles.slice().sort(), owners.slice().sort(), `${name} policy`);
          const client = createClient(service, transportFor(tp.url, "grpc")) as unknown as Record<string, (req: unknown, o?: CallOptions) => Promise<unknown>>;
          const call = async (token: string | undefined): Promise<string> => {
            try {
              await client[method.localName]?.(create(method.input), token ? bearer(token) : {});
              return "OK";
            } catch (e) {
              return Code[ConnectError.from(e).code];
            }
          };
          assert.equal(await call(undefined), "Unauthenticated", name);
          for (const [role, token] of tokens) {
            const outcome = await call(token);
            if (owners.includes(role)) {
              assert.ok(!["Unauthenticated", "PermissionDenied", "Internal", "Unknown"].includes(outcome), `${name} as ${Role[role]}: ${outcome}`);
            } else {
              assert.equal(outcome, "PermissionDenied", `${name} as ${Role[role]}`);
            }
          }
        }
      });
    }
  });
}
