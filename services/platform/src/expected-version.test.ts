import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Code } from "@connectrpc/connect";
import { DomainError } from "./errors.js";
import { checkExpectedVersion } from "./expected-version.js";

describe("checkExpectedVersion", () => {
  it("passes when no version is expected or the expected one is current", () => {
    checkExpectedVersion(undefined, 3n, "cart");
    checkExpectedVersion(3n, 3n, "cart");
    checkExpectedVersion(2n ** 62n, 2n ** 62n, "cart");
  });

  it("answers ABORTED for any other version, the ones no resource has included", () => {
    for (const expected of [2n, 4n, 0n, -1n, 2n ** 63n - 1n]) {
      assert.throws(
        () => checkExpectedVersion(expected, 3n, "address"),
        (e: unknown) => e instanceof DomainError && e.code === Code.Aborted && e.violations.length === 0 && e.message.includes("address is at version 3"),
        String(expected),
      );
    }
  });
});
