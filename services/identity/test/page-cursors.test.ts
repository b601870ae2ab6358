import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Code } from "@connectrpc/connect";
import { DomainError } from "@local-e-grocery/platform/errors.js";
import { encodePageToken, encodeScopedPageToken, resolvePageSize } from "@local-e-grocery/platform/pagination.js";
import { decodeNameCursor, decodeTimeCursor, encodeNameCursor, encodeTimeCursor, identityPageSizes } from "../src/page-cursors.js";

const invalid = (field: string) => (e: unknown) => e instanceof DomainError && e.code === Code.InvalidArgument && e.field === field;
const id = "0f8fad5b-d9cb-469f-a165-70867728950e";

// The rules of page_size are the shared ones (platform/src/pagination.test.ts); these are identity's numbers.
it("identity pages hold 50 items by default and 100 at most", () => {
  assert.deepEqual([resolvePageSize(0, identityPageSizes), resolvePageSize(100_000, identityPageSizes)], [50, 100]);
});

describe("identity page cursors", () => {
  it("round-trip (create_time, id) and names within their scope", () => {
    const cursor = { createTime: new Date(1_764_000_000_123), id };
    assert.deepEqual(decodeTimeCursor(encodeTimeCursor("activity:u1", cursor), "activity:u1"), cursor);
    assert.equal(decodeNameCursor(encodeNameCursor("users::", "bob"), "users::"), "bob");
    assert.equal(decodeTimeCursor("", "activity:u1"), undefined);
    assert.equal(decodeNameCursor("", "users::"), undefined);
  });
  it("refuse tokens of another scope or another list", () => {
    const time = encodeTimeCursor("sessions:u1", { createTime: new Date(1), id });
    assert.throws(() => decodeTimeCursor(time, "sessions:u2"), invalid("page_token"));
    assert.throws(() => decodeTimeCursor(time, "activity:u1"), invalid("page_token"));
    assert.throws(() => decodeNameCursor(time, "sessions:u1"), invalid("page_token"));
    assert.throws(() => decodeNameCursor(encodeNameCursor("users:a:", "bob"), "users:b:"), invalid("page_token"));
    assert.throws(() => decodeTimeCursor(encodeNameCursor("sessions:u1", "bob"), "sessions:u1"), invalid("page_token"));
  });
  it("refuse keys of the wrong shape", () => {
    // Times and ids are read by the shared key readers (platform/src/pagination.test.ts has their bounds).
    const afterYear9999 = Date.UTC(10000, 0, 1);
    for (const key of [[1.5, id], ["1", id], [9e15, id], [-9e15, id], [afterYear9999, id], [-1, id], [1, "not-a-uuid"], [1, id.toUpperCase()], [1], [1, id, 2], { t: 1, i: id }, null]) {
      assert.throws(() => decodeTimeCursor(encodeScopedPageToken("activity:u1", key), "activity:u1"), invalid("page_token"), JSON.stringify(key));
    }
    for (const key of [[1], ["a", "b"], [], "bob", null, ["a\u0000"], ["a".repeat(255)]]) {
      assert.throws(() => decodeNameCursor(encodeScopedPageToken("service-accounts", key), "service-accounts"), invalid("page_token"), JSON.stringify(key));
    }
    assert.throws(() => decodeNameCursor(encodePageToken({ k: ["bob"] }), "service-accounts"), invalid("page_token"));
    assert.throws(() => decodeNameCursor("garbage!", "service-accounts"), invalid("page_token"));
  });
});
