import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Code } from "@connectrpc/connect";
import { DomainError } from "./errors.js";
import {
  cursorId,
  cursorNumber,
  cursorText,
  cursorTime,
  cursorTimeRange,
  decodePageToken,
  decodeScopedPageToken,
  encodePageToken,
  encodeScopedPageToken,
  pageOf,
  resolvePageSize,
} from "./pagination.js";

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

describe("key readers", () => {
  /** A key as a hand-made token carries it: through JSON, which reads 1e999 as Infinity. */
  const viaJson = (json: string): unknown => JSON.parse(json);

  it("cursorTime reads whole milliseconds from 1970 to the end of year 9999 as a Date", () => {
    assert.equal(cursorTimeRange.min, 0);
    assert.equal(new Date(cursorTimeRange.max).toISOString(), "9999-12-31T23:59:59.999Z");
    for (const ms of [0, 1, 1_764_000_000_123, cursorTimeRange.max]) assert.equal(cursorTime(ms)?.getTime(), ms, String(ms));
    // Every time it accepts prints as the four-digit-year ISO form that PostgreSQL's timestamptz input takes.
    for (const ms of [cursorTimeRange.min, cursorTimeRange.max]) assert.match(cursorTime(ms)?.toISOString() ?? "", /^\d{4}-\d\d-\d\dT/);
  });
  it("cursorTime refuses times PostgreSQL or JS dates cannot hold, times before 1970, and non-integers", () => {
    for (const value of [
      cursorTimeRange.max + 1, // "+010000-01-01T…": timestamptz refuses it
      Date.UTC(294277, 0, 1), // beyond PostgreSQL's last year, 294276 AD
      8.64e15, // the last JS Date
      8.64e15 + 1, // an Invalid Date
      -8.64e15,
      Date.UTC(-4714, 0, 1), // before PostgreSQL's 4713 BC
      Date.parse("0000-06-01T00:00:00.000Z"), // year 0, which PostgreSQL does not have
      -1,
      1.5,
      Number.MAX_SAFE_INTEGER + 1,
      viaJson("1e999"),
      viaJson("-1e999"),
      Number.NaN,
      "1764000000123",
      "2026-01-01T00:00:00.000Z",
      null,
      undefined,
      [1],
      { t: 1 },
    ]) {
      assert.equal(cursorTime(value), undefined, String(value));
    }
  });
  it("cursorId reads lowercase UUIDs only", () => {
    const id = "0f8fad5b-d9cb-469f-a165-70867728950e";
    assert.equal(cursorId(id), id);
    assert.equal(cursorId("018f4a3c-8b7e-7a10-9c2d-3e4f5a6b7c8d"), "018f4a3c-8b7e-7a10-9c2d-3e4f5a6b7c8d");
    for (const value of [id.toUpperCase(), `${id} `, ` ${id}`, `${id}\n`, id.replaceAll("-", ""), `{${id}}`, id.slice(1), "not-a-uuid", "1; drop table carts", "", 7, null, undefined, [id]]) {
      assert.equal(cursorId(value), undefined, String(value));
    }
  });
  it("cursorNumber reads finite numbers within the range, both ends included", () => {
    const range = { min: 0, max: 50 };
    for (const n of [0, 0.3, 12.345678901234567, 50]) assert.equal(cursorNumber(n, range), n, String(n));
    assert.equal(cursorNumber(-5, { min: -10, max: 10 }), -5);
    for (const value of [-1e-9, -1, 50.000001, 1e308, Number.MAX_VALUE, viaJson("1e999"), viaJson("-1e999"), Number.NaN, Infinity, "1", null, undefined, [1]]) {
      assert.equal(cursorNumber(value, range), undefined, String(value));
    }
    // Even the widest range holds no infinity.
    assert.equal(cursorNumber(Infinity, { min: -Infinity, max: Infinity }), undefined);
  });
  it("cursorText reads strings up to the length, without NUL", () => {
    assert.equal(cursorText("bob", 254), "bob");
    assert.equal(cursorText("", 254), "");
    assert.equal(cursorText("a".repeat(254), 254), "a".repeat(254));
    for (const value of ["a".repeat(255), "a\u0000", "\u0000", 1, null, undefined, ["bob"]]) assert.equal(cursorText(value, 254), undefined, String(value));
  });
  it("let decodePageToken refuse a token whose keys they do not accept", () => {
    const parse = ({ t, i }: Record<string, unknown>) => {
      const time = cursorTime(t);
      const id = cursorId(i);
      return time && id ? { time, id } : undefined;
    };
    const id = "0f8fad5b-d9cb-469f-a165-70867728950e";
    assert.deepEqual(decodePageToken(encodePageToken({ t: 1, i: id }), parse), { time: new Date(1), id });
    assert.equal(invalidField(() => decodePageToken(encodePageToken({ t: cursorTimeRange.max + 1, i: id }), parse)), "page_token");
    assert.equal(invalidField(() => decodePageToken(Buffer.from(`{"t":1e999,"i":"${id}"}`).toString("base64url"), parse)), "page_token");
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
