import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import { join, relative } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import type { DescService } from "@bufbuild/protobuf";
import { accessPolicyOf } from "../src/auth/access-interceptor.js";

const genRoot = fileURLToPath(new URL("../../../gen/grocery", import.meta.url));

/** Every service in every generated file under gen/grocery, found by walking the folder. */
async function generatedServices(): Promise<DescService[]> {
  const files: string[] = [];
  const walk = async (dir: string) => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (entry.name.endsWith("_pb.ts")) files.push(path);
    }
  };
  await walk(genRoot);
  const services: DescService[] = [];
  for (const file of files) {
    const mod = (await import(`../../../gen/grocery/${relative(genRoot, file).replace(/\.ts$/, ".js")}`)) as Record<string, unknown>;
    for (const value of Object.values(mod)) {
      if (typeof value === "object" && value !== null && (value as { kind?: unknown }).kind === "service") services.push(value as DescService);
    }
  }
  return services;
}

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
