import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { readIdentityConfig } from "./config.js";
import { createPasswordHasher, owaspPasswordCost } from "./passwords.js";

describe("password hashing cost", () => {
  it("is OWASP's argon2id baseline (19 MiB, 2 passes, 1 lane) unless configured otherwise", async () => {
    const { passwordCost } = readIdentityConfig({});
    assert.deepEqual(passwordCost, owaspPasswordCost);
    const stored = await createPasswordHasher(passwordCost).hash("broad beans in spring");
    assert.match(stored, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
  });

  it("verifies a hash made at another cost, so lowering or raising the cost keeps every account", async () => {
    const strong = createPasswordHasher(owaspPasswordCost);
    const cheap = createPasswordHasher({ memoryKiB: 64, iterations: 1 });
    const stored = await strong.hash("broad beans in spring");
    assert.equal(await cheap.verify(stored, "broad beans in spring"), true);
    assert.equal(await cheap.verify(stored, "broad beans in autumn"), false);
    assert.equal(await cheap.verify(undefined, "broad beans in spring"), false);
  });
});
