import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { hashRefreshToken, newRefreshToken, openSuccessor, sealSuccessor } from "./refresh-tokens.js";

describe("sealed refresh-token successors", () => {
  it("open only with the spent token, on the row they were sealed for", () => {
    const spent = newRefreshToken();
    const successor = newRefreshToken().token;
    const sealed = sealSuccessor(spent.token, spent.hash, successor);
    assert.equal(openSuccessor(spent.token, spent.hash, sealed), successor);
    // The stored hash is no key: a copy of the database opens nothing.
    assert.equal(openSuccessor(spent.hash, spent.hash, sealed), undefined);
    assert.equal(openSuccessor(newRefreshToken().token, spent.hash, sealed), undefined);
    // Moved to another row, it does not open either.
    assert.equal(openSuccessor(spent.token, hashRefreshToken("another token"), sealed), undefined);
    assert.ok(!sealed.includes(successor));
  });

  it("refuse tampered or truncated seals", () => {
    const spent = newRefreshToken();
    const raw = Buffer.from(sealSuccessor(spent.token, spent.hash, "successor"), "base64url");
    raw[14] = (raw[14] ?? 0) ^ 1;
    assert.equal(openSuccessor(spent.token, spent.hash, raw.toString("base64url")), undefined);
    assert.equal(openSuccessor(spent.token, spent.hash, ""), undefined);
    assert.equal(openSuccessor(spent.token, spent.hash, "AAAA"), undefined);
  });
});
