import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { generatedServices } from "../../../test/generated-services.js";
import { accessPolicyOf } from "../src/auth/access-interceptor.js";

describe("access policies", () => {
  it("every RPC in gen/ declares a usable (grocery.auth.v1.access) policy", async () => {
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
});
