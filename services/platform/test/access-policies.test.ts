import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, createFileRegistry, hasOption, setExtension, type DescMethodUnary, type DescService } from "@bufbuild/protobuf";
import {
  file_google_protobuf_descriptor,
  FileDescriptorProtoSchema,
  MethodOptionsSchema,
  ServiceOptionsSchema,
} from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createContextValues } from "@connectrpc/connect";
import { AddressService } from "@local-e-grocery/gen/grocery/address/v1/address_service_pb.js";
import { access, AccessPolicySchema, default_access, file_grocery_auth_v1_auth, Role } from "@local-e-grocery/gen/grocery/auth/v1/auth_pb.js";
import { CartService } from "@local-e-grocery/gen/grocery/cart/v1/cart_service_pb.js";
import { generatedServices } from "../../../test/generated-services.js";
import { accessPolicyOf, createAccessInterceptor } from "../src/auth/access-interceptor.js";

/**
 * A real descriptor, built the way protoc would write it, for the combinations the platform's own protos do not
 * have: a service default overridden by one RPC, and a service with neither kind of policy.
 */
function probeServices(): { withDefault: DescService; withoutDefault: DescService } {
  const serviceOptions = create(ServiceOptionsSchema);
  setExtension(serviceOptions, default_access, create(AccessPolicySchema, { roles: [Role.CUSTOMER] }));
  const overrideOptions = create(MethodOptionsSchema);
  setExtension(overrideOptions, access, create(AccessPolicySchema, { roles: [Role.ADMIN], expensive: true }));
  const method = (name: string, options?: typeof overrideOptions) => ({ name, inputType: ".probe.v1.Empty", outputType: ".probe.v1.Empty", options });
  const file = create(FileDescriptorProtoSchema, {
    name: "probe/v1/probe.proto",
    package: "probe.v1",
    syntax: "proto3",
    dependency: ["google/protobuf/descriptor.proto", "grocery/auth/v1/auth.proto"],
    messageType: [{ name: "Empty" }],
    service: [
      { name: "WithDefaultService", options: serviceOptions, method: [method("Inherits"), method("Overrides", overrideOptions)] },
      { name: "WithoutDefaultService", method: [method("Undeclared")] },
    ],
  });
  const known = new Map([file_google_protobuf_descriptor, file_grocery_auth_v1_auth].map((f) => [f.proto.name, f]));
  const registry = createFileRegistry(file, (name) => known.get(name));
  const service = (name: string) => {
    const s = registry.getService(`probe.v1.${name}`);
    assert.ok(s, name);
    return s;
  };
  return { withDefault: service("WithDefaultService"), withoutDefault: service("WithoutDefaultService") };
}

describe("access policies", () => {
  it("every RPC in gen/ has a usable policy, its own or its service's default", async () => {
    const services = await generatedServices();
    assert.ok(services.some((s) => s.typeName === "grocery.identity.v1.AuthService"), "found the identity services");
    const missing: string[] = [];
    let count = 0;
    for (const service of services) {
      for (const method of service.methods) {
        count++;
        const policy = accessPolicyOf(method);
        if (!policy || (!policy.public && policy.roles.length === 0)) missing.push(`${service.typeName}/${method.name}`);
      }
    }
    assert.ok(count > 5, `found ${count} RPCs`);
    assert.deepEqual(missing, []);
  });

  it("cart and address state their policy once, on the service, and every RPC inherits it", () => {
    for (const service of [CartService, AddressService]) {
      assert.ok(hasOption(service, default_access), `${service.typeName} declares default_access`);
      for (const method of service.methods) {
        // No per-RPC block left: the repetition this option exists to remove has not crept back.
        assert.equal(hasOption(method, access), false, `${service.typeName}/${method.name} repeats the policy`);
        assert.deepEqual(accessPolicyOf(method)?.roles, [Role.CUSTOMER, Role.SHOP_OWNER], `${service.typeName}/${method.name}`);
      }
    }
  });

  it("an RPC's own policy replaces the service default whole; with neither there is no policy", () => {
    const { withDefault, withoutDefault } = probeServices();
    const [inherits, overrides] = withDefault.methods;
    assert.ok(inherits && overrides);
    assert.deepEqual(accessPolicyOf(inherits)?.roles, [Role.CUSTOMER]);
    const own = accessPolicyOf(overrides);
    assert.deepEqual(own?.roles, [Role.ADMIN], "roles are not merged with the default's");
    assert.equal(own?.expensive, true);
    const [undeclared] = withoutDefault.methods;
    assert.ok(undeclared);
    assert.equal(accessPolicyOf(undeclared), undefined);
  });

  it("the access interceptor denies an RPC with neither its own policy nor a service default", async () => {
    const [undeclared] = probeServices().withoutDefault.methods;
    assert.equal(undeclared?.methodKind, "unary");
    const method = undeclared as DescMethodUnary;
    let verified = false;
    const interceptor = createAccessInterceptor({
      verify: () => {
        verified = true;
        return Promise.reject(new Error("no token should be looked at"));
      },
    });
    const handler = interceptor(() => Promise.reject(new Error("the handler must not run")));
    await assert.rejects(
      handler({
        stream: false,
        method,
        service: method.parent,
        requestMethod: "POST",
        url: `http://localhost/probe.v1.WithoutDefaultService/Undeclared`,
        signal: new AbortController().signal,
        header: new Headers({ authorization: "Bearer x.y.z" }),
        contextValues: createContextValues(),
        message: create(method.input),
      }),
      (e) => ConnectError.from(e).code === Code.PermissionDenied,
    );
    assert.equal(verified, false);
  });
});
