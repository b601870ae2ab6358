import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { canonicalUuid, isUuid } from "./ids.js";

describe("ids", () => {
  it("read a UUID in any case and give its lowercase form", () => {
    assert.equal(canonicalUuid("0F8FAD5B-D9CB-469F-a165-70867728950E"), "0f8fad5b-d9cb-469f-a165-70867728950e");
    assert.equal(canonicalUuid("018f4a3c-8b7e-7a10-9c2d-3e4f5a6b7c8d"), "018f4a3c-8b7e-7a10-9c2d-3e4f5a6b7c8d");
    assert.ok(isUuid("0F8FAD5B-D9CB-469F-A165-70867728950E"));
  });

  it("refuse anything else", () => {
    for (const value of ["", "nope", "0f8fad5bd9cb469fa16570867728950e", "{0f8fad5b-d9cb-469f-a165-70867728950e}", " 0f8fad5b-d9cb-469f-a165-70867728950e", "0f8fad5b-d9cb-469f-a165-70867728950e\n", "0f8fad5b-d9cb-469f-a165-70867728950g"]) {
      assert.equal(canonicalUuid(value), undefined, JSON.stringify(value));
      assert.equal(isUuid(value), false, JSON.stringify(value));
    }
  });
});
