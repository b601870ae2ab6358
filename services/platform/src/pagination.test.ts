import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Code } from "@connectrpc/connect";
import { DomainError } from "./errors.js";
import { decodePageToken, decodeScopedPageToken, encodePageToken, encodeScopedPageToken, pageOf, resolvePageSize } from "./pagination.js";

/** The field of the INVALID_ARGUMENT that `fn` throws. */
function invalidField(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof DomainError);
    assert.equal(e.code, Code.InvalidArgument);
    assert.ok(e.message.startsWith(`${e.field}: `), e.message);
    return e.field;
  }
  assert.fail("expected INVALID_ARGUMENT, nothing was thrown");
}

const any = (v: Record<string, unknown>) => v;

describe("resolvePageSize", () => {
  const sizes = { defaultSize: 20, maxSize: 100 };
  it("uses the default for 0, keeps sizes up to the maximum and caps larger ones", () => {
    assert.equal(resolvePageSize(0, sizes), 20);
    assert.equal(resolvePageSize(0, { defaultSize: 50, maxSize: 100 }), 50);
    assert.equal(resolvePageSize(1, sizes), 1);
    assert.equal(resolvePageSize(7, sizes), 7);
    assert.equal(resolvePageSize(100, sizes), 100);
    assert.equal(resolvePageSize(101, sizes), 100);
    assert.equal(resolvePageSize(5000, sizes), 100);
    assert.equal(resolvePageSize(2 ** 31 - 1, sizes), 100);
  });
  it("refuses negative and fractional sizes as INVALID_ARGUMENT naming page_size, or the given field", () => {
    for (const size of [-1, -100, -(2 ** 31), 1.5, Number.NaN]) assert.equal(invalidField(() => resolvePageSize(size, sizes)), "page_size", String(size));
    assert.equal(invalidField(() => resolvePageSize(-1, { ...sizes, field: "shops.page_size" })), "shops.page_size");
  });
});

describe("encodePageToken / decodePageToken", () => {
  it("round-trips a payload through an opaque URL-safe token", () => {
    const payload = { m: "list", t: 1_764_000_000_123, i: "0f8fad5b-d9cb-469f-a165-70867728950e", k: ["a", 1] };
    const token = encodePageToken(payload);
    assert.match(token, /^[A-Za-z0-9_-]+$/);
    assert.deepEqual(decodePageToken(token, any), payload);
    assert.equal(decodePageToken(token, (v) => (v["m"] === "list" ? v["t"] : undefined)), 1_764_000_000_123);
  });
  it("reads the empty token as the first page, without calling the parser", () => {
    assert.equal(decodePageToken("", () => assert.fail("parser called")), undefined);
  });
  it("refuses a payload the parser does not accept", () => {
    const token = encodePageToken({ m: "list", i: "x" });
    assert.equal(invalidField(() => decodePageToken(token, () => undefined)), "page_token");
    assert.equal(invalidField(() => decodePageToken(token, (v) => (v["m"] === "nearby" ? v : undefined))), "page_token");
  });
  it("refuses what is not base64url of a JSON object", () => {
    const list = (v: Record<string, unknown>) => (v["m"] === "list" ? v : undefined);
    const b64 = (s: string) => Buffer.from(s).toString("base64url");
    for (const bad of [
      "x",
      "%%%",
      "!!!",
      "garbage",
      "bm90IGpzb24", // "not json"
      encodePageToken({}).slice(1),
      encodePageToken({ m: "list" }).slice(1),
      encodePageToken({ m: "list" }).slice(0, -3),
      `${encodePageToken({ m: "list" })}=`,
      `${encodePageToken({ m: "list" }).slice(0, 4)}+${encodePageToken({ m: "list" }).slice(4)}`,
      b64("[]"),
      b64('["list"]'),
      b64("null"),
      b64("1"),
      b64('"list"'),
      "x".repeat(2000),
    ]) {
      assert.equal(invalidField(() => decodePageToken(bad, list)), "page_token", bad);
    }
  });
  it("refuses tokens longer than maxLength (1024 unless said) before reading them", () => {
    const long = encodePageToken({ m: "list", pad: "p".repeat(800) });
    assert.ok(long.length > 1024);
    assert.equal(invalidField(() => decodePageToken(long, any)), "page_token");
    const medium = encodePageToken({ m: "list", pad: "p".repeat(250) });
    assert.ok(medium.length > 256 && medium.length <= 1024);
    assert.deepEqual(decodePageToken(medium, any), { m: "list", pad: "p".repeat(250) });
    assert.equal(invalidField(() => decodePageToken(medium, any, { maxLength: 256 })), "page_token");
    assert.equal(invalidField(() => decodePageToken(medium, () => assert.fail("parser called"), { maxLength: 256 })), "page_token");
  });
  it("names the given field", () => {
    assert.equal(invalidField(() => decodePageToken("!!!", any, { field: "shops.page_token" })), "shops.page_token");
  });
});

describe("scoped page tokens", () => {
  const keys = (k: unknown) => (Array.isArray(k) && k.length === 2 && Number.isSafeInteger(k[0]) && typeof k[1] === "string" ? { t: k[0] as number, i: k[1] } : undefined);
  it("round-trips the key for the same scope", () => {
    const token = encodeScopedPageToken("sessions:u1", [1_764_000_000_123, "abc"]);
    assert.match(token, /^[A-Za-z0-9_-]+$/);
    assert.deepEqual(decodeScopedPageToken(token, "sessions:u1", keys), { t: 1_764_000_000_123, i: "abc" });
    assert.equal(decodeScopedPageToken("", "sessions:u1", keys), undefined);
  });
  it("does not show the scope in the token", () => {
    const token = encodeScopedPageToken("users:secret-prefix:ROLE_ADMIN", ["bob"]);
    assert.doesNotMatch(Buffer.from(token, "base64url").toString("utf8"), /secret|ROLE_ADMIN/);
  });
  it("refuses a token of another scope, a bad key, or a token without a scope", () => {
    const token = encodeScopedPageToken("sessions:u1", [1, "abc"]);
    assert.equal(invalidField(() => decodeScopedPageToken(token, "sessions:u2", keys)), "page_token");
    assert.equal(invalidField(() => decodeScopedPageToken(token, "activity:u1", keys)), "page_token");
    assert.equal(invalidField(() => decodeScopedPageToken(encodeScopedPageToken("sessions:u1", [1]), "sessions:u1", keys)), "page_token");
    assert.equal(invalidField(() => decodeScopedPageToken(encodeScopedPageToken("sessions:u1", ["1", "abc"]), "sessions:u1", keys)), "page_token");
    assert.equal(invalidField(() => decodeScopedPageToken(encodePageToken({ k: [1, "abc"] }), "sessions:u1", keys)), "page_token");
    assert.equal(invalidField(() => decodeScopedPageToken("!!!", "sessions:u1", keys)), "page_token");
    assert.equal(invalidField(() => decodeScopedPageToken(token, "sessions:u2", keys, { field: "other_token" })), "other_token");
  });
});

describe("pageOf", () => {
  const token = (last: number) => `after-${last}`;
  it("returns the first pageSize rows and a token after the last of them when a row is left over", () => {
    assert.deepEqual(pageOf([1, 2, 3], 2, token), { items: [1, 2], nextPageToken: "after-2" });
  });
  it("gives the last page an empty token", () => {
    assert.deepEqual(pageOf([1, 2], 2, token), { items: [1, 2], nextPageToken: "" });
    assert.deepEqual(pageOf([1], 2, token), { items: [1], nextPageToken: "" });
    assert.deepEqual(pageOf([], 2, token), { items: [], nextPageToken: "" });
  });
});
