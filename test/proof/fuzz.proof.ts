/**
 * Fuzzing: every RPC found in gen/ (standard health and reflection included), over gRPC, gRPC-web, Connect JSON and
 * Connect binary, called by a CUSTOMER, a SHOP_OWNER, an ADMIN and an anonymous caller with messages generated from
 * the request's descriptor (boundary lengths, any code point, NUL, lone surrogates, injection strings, huge repeated
 * fields, int64 edges, NaN/±Inf, unknown enum values, out-of-range timestamps), half-plausible ones made from the
 * callers' real ids, and with bodies that are not messages at all (random and mutated protobuf bytes, invalid UTF-8,
 * broken JSON). Properties, for every case:
 *   1. never INTERNAL or UNKNOWN, and never HTTP 500;
 *   2. only the codes the service documents (see `answers` below);
 *   3. a rejected call changes no stored row of anybody's, and no call changes rows of users it has no say over;
 *   4. valid text that looks like an attack (SQL, markup, `${jndi:…}`, paths, emoji, RTL marks…) is stored and
 *      returned verbatim;
 *   5. a body that does not parse is INVALID_ARGUMENT, and an unknown method UNIMPLEMENTED, on every protocol.
 *
 * Seeded and reproducible: FUZZ_SEED=<n> replays a run (each property derives its own seed from it and its name);
 * a failure names the seed. FUZZ_RUNS (default 4) sets the runs per RPC and protocol, FUZZ_SHRINK=1 shrinks a
 * counterexample (slow: the platform is stateful, so a shrunk case runs against later state), FUZZ_ONLY=<text> runs
 * only the properties whose label contains it (the label is in every failure).
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import http from "node:http";
import type http2 from "node:http2";
import { gzipSync } from "node:zlib";
import { after, afterEach, before, describe, it } from "node:test";
import {
  create,
  fromBinary,
  fromJson,
  ScalarType,
  toBinary,
  toJsonString,
  type DescField,
  type DescMessage,
  type DescMethod,
  type DescService,
  type Message,
} from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type CallOptions, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { sql } from "drizzle-orm";
import fc from "fast-check";
import { AddressKind } from "@local-e-grocery/gen/grocery/address/v1/address_pb.js";
import { AddressService } from "@local-e-grocery/gen/grocery/address/v1/address_service_pb.js";
import { Role } from "@local-e-grocery/gen/grocery/auth/v1/auth_pb.js";
import { CartService } from "@local-e-grocery/gen/grocery/cart/v1/cart_service_pb.js";
import { Health } from "@local-e-grocery/gen/grpc/health/v1/health_pb.js";
import { UserService } from "@local-e-grocery/gen/grocery/identity/v1/user_service_pb.js";
import { accessPolicyOf } from "@local-e-grocery/platform/auth/access-interceptor.js";
import { rowsOf } from "@local-e-grocery/platform/db.js";
import { codeName } from "@local-e-grocery/platform/errors.js";
import { bearer, transportFor } from "../clients.js";
import { generatedServices } from "../generated-services.js";
import { callJson, registerAndLogin, startTestPlatform, type TestPlatform } from "../harness.js";
import { grpcFrame, h2Call, h2Session } from "../hostile-peers.js";
import { proofReport } from "./report.js";

const seed = process.env["FUZZ_SEED"] ? Number(process.env["FUZZ_SEED"]) : Math.floor(Math.random() * 2 ** 31);
const runs = Number(process.env["FUZZ_RUNS"] ?? 4);
const shrink = process.env["FUZZ_SHRINK"] === "1";
const only = process.env["FUZZ_ONLY"];
const report = proofReport("fuzzing");

// ---------------------------------------------------------------------------------------------------------------
// What each service may answer, whatever it is sent (DESIGN "Errors and bad input"). UNAVAILABLE is absent: the
// database is up for the whole run. DEADLINE_EXCEEDED is allowed only on the streaming calls, the only ones given a
// deadline here. UNIMPLEMENTED is the answer to unknown methods, a property of its own.
// ---------------------------------------------------------------------------------------------------------------

/** Every service: success, bad input, no such thing, no token, wrong role, message or rate limits. */
const everyService = [Code.InvalidArgument, Code.NotFound, Code.Unauthenticated, Code.PermissionDenied, Code.ResourceExhausted];
const answers: Record<string, readonly Code[]> = {
  // Register: the name or address is taken.
  "grocery.identity.v1.AuthService": [...everyService, Code.AlreadyExists],
  // UpdateMe: the new email is taken; CreateServiceAccount: the name is; FAILED_PRECONDITION: the last enabled
  // administrator cannot be demoted, disabled or deleted.
  "grocery.identity.v1.UserService": [...everyService, Code.AlreadyExists, Code.FailedPrecondition],
  // ALREADY_EXISTS: a cart name the owner already uses; FAILED_PRECONDITION: another currency, a line beyond its
  // quantity or a total beyond int64; ABORTED: a stale expected_version.
  "grocery.cart.v1.CartService": [...everyService, Code.AlreadyExists, Code.FailedPrecondition, Code.Aborted],
  // FAILED_PRECONDITION: a kind changed to or from SHOP; ABORTED: a stale expected_version.
  "grocery.address.v1.AddressService": [...everyService, Code.FailedPrecondition, Code.Aborted],
  // PurgeUser and SetUserStanding: SERVICE tokens only (PERMISSION_DENIED for every fuzzing caller, UNAUTHENTICATED
  // for the anonymous one), a user id that is a UUID and, for SetUserStanding, a sequence > 0 (INVALID_ARGUMENT).
  "grocery.userdata.v1.UserDataService": everyService,
  // Check: NOT_FOUND for a service name nobody serves.
  "grpc.health.v1.Health": [Code.InvalidArgument, Code.NotFound, Code.ResourceExhausted],
  // Errors about a requested symbol travel inside the stream's messages; the call itself only fails on its input.
  "grpc.reflection.v1.ServerReflection": [Code.InvalidArgument, Code.ResourceExhausted],
  "grpc.reflection.v1alpha.ServerReflection": [Code.InvalidArgument, Code.ResourceExhausted],
};

/** 0 is success; otherwise a Connect code. */
type Status = 0 | Code;
const statusName = (s: Status) => (s === 0 ? "OK" : Code[s]);

function allowed(method: DescMethod): Set<Status> {
  const codes = answers[method.parent.typeName];
  assert.ok(codes, `${method.parent.typeName} has no documented answers in fuzz.proof.ts: add them`);
  return new Set<Status>([0, ...codes, ...(method.methodKind === "unary" ? [] : [Code.DeadlineExceeded])]);
}

/**
 * Bugs this suite finds in the serving core before they are fixed: a case that fails exactly as one `matches` is
 * counted under it instead of as a new violation, and the counts are printed. The ones found so far (a long name
 * echoed into a Health trailer; an HTTP/1.1 connection kept alive over an unread body) are fixed, and each has a
 * regression test at the end of this suite.
 */
const knownIssues: { id: string; summary: string; matches?: (method: DescMethod, protocol: string, outcome: Outcome) => boolean }[] = [];
const knownHits = new Map<string, number>();

// ---------------------------------------------------------------------------------------------------------------
// Callers
// ---------------------------------------------------------------------------------------------------------------

type CallerName = "customer" | "shop_owner" | "admin" | "anonymous";
const callerNames: readonly CallerName[] = ["customer", "shop_owner", "admin", "anonymous"];
const roleOf: Record<CallerName, Role | undefined> = { customer: Role.CUSTOMER, shop_owner: Role.SHOP_OWNER, admin: Role.ADMIN, anonymous: undefined };

interface Caller {
  name: CallerName;
  userId: string;
  login: string;
  password: string;
  token: string;
  sessionId: string;
}

const admin = { username: "fuzz_admin", email: "fuzz-admin@grocery.example", password: "turnips under the counter" };

/** The session id (`sid`) of an access token, which RevokeSession takes: a real one is worth fuzzing with. */
function sessionOf(token: string): string {
  const payload = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString()) as { sid?: string };
  return payload.sid ?? "";
}

// ---------------------------------------------------------------------------------------------------------------
// Generated messages, from the descriptor alone
// ---------------------------------------------------------------------------------------------------------------

/**
 * A string the case fills in when it runs from the real ids in the database (carts, lines, addresses, sessions,
 * users, service accounts), of the kind the field's name suggests (`cart_id` a cart's) when there are any.
 */
class HintRef {
  constructor(
    readonly n: number,
    readonly kind: string,
  ) {}
  toString() {
    return `hint(${this.kind}#${this.n})`;
  }
}

/** Ids by kind: the kinds snapshot() collects, and "any". */
type Hints = ReadonlyMap<string, readonly string[]>;

/** The kind of id a string field holds, from its name: `cart_id` → cart, `Address.id` → address, `owner_id` → user. */
function hintKind(field: DescField, parent: DescMessage): string {
  const base = field.name === "id" ? parent.name.toLowerCase() : field.name.replace(/_ids?$/, "");
  return base === "owner" ? "user" : base;
}

const injections = [
  "'; drop table x; --",
  "Robert'); DROP TABLE cart.carts;--",
  '" OR 1=1 --',
  "<script>alert(1)</script>",
  "<img src=x onerror=alert(1)>",
  "%00",
  "%s%n%x%d",
  "${jndi:ldap://127.0.0.1/a}",
  "{{7*7}}",
  "../../etc/passwd",
  "..\\..\\windows\\win.ini",
  "$(rm -rf /)",
  "`id`",
  "\\u0000",
  "\\x00",
  "NULL",
  "undefined",
  "🧅🥕",
  "👩‍👩‍👧‍👦",
  "🇩🇪",
  "\u202Eevil\u202C",
  "\u200F\u05E9\u05DC\u05D5\u05DD",
  "مرحبا بالعالم",
  "Ａｐｐｌｅ",
  "ﬁ",
];
/** NUL and other control characters, lone surrogates, direction marks, BOM, whitespace only. */
const oddText = ["", " ", "\u0000", "a\u0000b", "\ud800", "\udfff", "a\udc00b", "\u202e", "\u200f", "\ufeff", "\t\n", "\r\n", "\u0085", "\u2028", "\u00a0"];
const boundaryLengths = [1, 2, 3, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 99, 100, 101, 127, 128, 129, 199, 200, 201, 253, 254, 255, 256, 1024, 1025];

/**
 * How values are drawn: `hostile` of every ten are hostile and the rest plausible; `big` allows huge ones (a 1 MiB
 * string or bytes, 30,000 list entries), beyond the server's message limit.
 */
interface Mode {
  hostile: number;
  big: boolean;
}

/**
 * What a well-behaved client sends in a field of this name, in any service: with real ids (hints), these make
 * requests that reach the handlers' logic, where one hostile value among them does the damage if any.
 */
const plausibleByName: Record<string, readonly string[]> = {
  currency_code: ["INR", "EUR"],
  country_code: ["DE", "IN"],
  postal_code: ["10115", "560001"],
  email: ["fuzz-user@example.com", "fuzz-admin@grocery.example"],
  login: ["fuzz_user", "fuzz_admin"],
  username: ["fuzz_user"],
  password: ["correct horse battery"],
  new_password: ["correct horse battery"],
  current_password: ["correct horse battery"],
  phone_number: ["+4915112345678", "+919876543210"],
  language_code: ["en-GB", "hi-IN"],
  name: ["Milk", "Weekly shop"],
  display_name: ["Asha"],
  product_id: ["sku-1", "sku-2"],
  shop_id: ["shop-1"],
  city: ["Berlin"],
  line1: ["1 Main Road"],
  shop_name: ["Corner Shop"],
  page_token: [""],
};
const plausibleWords = ["Weekly shop", "Milk", "apple", "Berlin", "x@example.com"];

function weighted<T>(mode: Mode, plausible: fc.Arbitrary<T>, hostile: fc.Arbitrary<T>, huge?: fc.Arbitrary<T>): fc.Arbitrary<T> {
  return fc.oneof(
    { weight: 10 - mode.hostile, arbitrary: plausible },
    { weight: mode.hostile, arbitrary: hostile },
    { weight: mode.big && huge ? 1 : 0, arbitrary: huge ?? hostile },
  );
}

const hostileString = fc.oneof(
  fc.tuple(fc.constantFrom(...boundaryLengths), fc.constantFrom("a", "é", "😀", "字", " ", "Z")).map(([n, c]) => c.repeat(n)),
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.string({ unit: "grapheme", maxLength: 20 }),
  fc.constantFrom(...injections),
  fc.constantFrom(...oddText),
  fc.uuid().map((u) => u.toUpperCase()),
  fc.constantFrom("0", "-1", "9223372036854775808", "1e309", "NaN", "true", "null"),
);

function stringArb(mode: Mode, kind = "any", name = ""): fc.Arbitrary<string | HintRef> {
  const words = plausibleByName[name] ?? plausibleWords;
  const plausible = fc.oneof(
    { weight: 3, arbitrary: fc.nat().map((n) => new HintRef(n, kind)) },
    { weight: 3, arbitrary: fc.constantFrom(...words) },
    { weight: 1, arbitrary: fc.uuid() },
    { weight: 1, arbitrary: fc.constant("") },
  );
  return weighted<string | HintRef>(mode, plausible, hostileString, fc.constantFrom(70_000, 1_100_000).map((n) => "x".repeat(n)));
}

const int32Edges = fc.oneof(fc.constantFrom(0, -1, 100, 999, 1000, 1001, 2 ** 31 - 1, -(2 ** 31)), fc.integer());
const int64Edges = fc.oneof(
  fc.constantFrom(0n, -1n, 2n ** 63n - 1n, -(2n ** 63n), 2n ** 53n, 2n ** 53n + 1n, -(2n ** 53n) - 1n, 10n ** 18n),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }),
);
const doubleEdges = fc.oneof(
  fc.constantFrom(NaN, Infinity, -Infinity, -0, 5e-324, -5e-324, 1e-170, Number.MAX_VALUE, -Number.MAX_VALUE, 90.0000001, -180.0000001, 1e9),
  fc.double(),
);

function scalarArb(type: ScalarType, mode: Mode, kind?: string, name?: string): fc.Arbitrary<unknown> {
  switch (type) {
    case ScalarType.STRING:
      return stringArb(mode, kind, name);
    case ScalarType.BYTES:
      return weighted(mode, fc.uint8Array({ maxLength: 16 }), fc.uint8Array({ maxLength: 256 }), fc.constant(new Uint8Array(1_100_000)));
    case ScalarType.BOOL:
      return fc.boolean();
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return weighted(mode, fc.integer({ min: 0, max: 5 }), int32Edges);
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return weighted(mode, fc.integer({ min: 0, max: 5 }), fc.oneof(fc.constant(2 ** 32 - 1), fc.integer({ min: 0, max: 2 ** 32 - 1 })));
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return weighted(mode, fc.oneof(fc.bigInt({ min: 0n, max: 5n }), fc.bigInt({ min: 100n, max: 10_000n })), int64Edges);
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return weighted(mode, fc.bigInt({ min: 0n, max: 5n }), fc.oneof(fc.constant(2n ** 64n - 1n), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n })));
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return weighted(mode, fc.constantFrom(52.52, 13.405, 12.97, 77.59, 0, 1, 10, 50), doubleEdges);
  }
}

/** The field paths an update mask of this request could name: the fields of its other message fields. */
function maskPaths(parent: DescMessage): string[] {
  const paths = new Set<string>();
  for (const f of parent.fields) {
    if (f.fieldKind !== "message" || f.message.typeName.startsWith("google.protobuf.")) continue;
    for (const g of f.message.fields) {
      paths.add(g.name);
      if (g.fieldKind === "message" && !g.message.typeName.startsWith("google.protobuf.")) for (const h of g.message.fields) paths.add(`${g.name}.${h.name}`);
    }
  }
  return [...paths];
}

type Init = Record<string, unknown>;

/** Any message of type `desc` as an init object: each field present or not, each value plausible or hostile. */
function messageArb(desc: DescMessage, mode: Mode, depth = 0, parent?: DescMessage): fc.Arbitrary<Init> {
  if (depth > 3) return fc.constant({});
  if (desc.typeName === "google.protobuf.Timestamp") {
    // Mostly valid (0001–9999), so JSON can carry them.
    return fc.record(
      {
        seconds: weighted(mode, fc.bigInt({ min: -62135596800n, max: 253402300799n }), int64Edges),
        nanos: weighted(mode, fc.integer({ min: 0, max: 999_999_999 }), int32Edges),
      },
      { requiredKeys: [] },
    );
  }
  if (desc.typeName === "google.protobuf.FieldMask") {
    const known = parent ? maskPaths(parent) : [];
    const path = known.length > 0 ? weighted(mode, fc.constantFrom(...known), stringArb(mode)) : stringArb(mode);
    return fc.record({ paths: listArb(path, mode) }, { requiredKeys: [] });
  }
  const model: Record<string, fc.Arbitrary<unknown>> = {};
  for (const field of desc.fields) {
    if (!field.oneof) model[field.localName] = fieldArb(field, mode, depth, desc);
  }
  for (const oneof of desc.oneofs) {
    model[oneof.localName] = fc.oneof(...oneof.fields.map((f) => fieldArb(f, mode, depth, desc).map((value) => ({ case: f.localName, value }))));
  }
  return fc.record(model, { requiredKeys: [] });
}

/** A few entries; in big mode sometimes 1,000 or 30,000 (of values that are not huge themselves). */
function listArb<T>(element: fc.Arbitrary<T>, mode: Mode): fc.Arbitrary<T[]> {
  const huge = fc.tuple(fc.constantFrom(1000, 30_000), element).map(([n, v]) => Array.from({ length: n }, () => v));
  return fc.oneof({ weight: 9, arbitrary: fc.array(element, { maxLength: 4 }) }, { weight: mode.big ? 1 : 0, arbitrary: huge });
}

function enumArb(values: readonly { number: number }[], mode: Mode): fc.Arbitrary<number> {
  // Open enums: a number no value has (99, -1, int32 max) is a valid message too.
  return weighted(mode, fc.constantFrom(...values.map((v) => v.number)), fc.constantFrom(0, -1, 99, 2 ** 31 - 1));
}

function fieldArb(field: DescField, mode: Mode, depth: number, parent: DescMessage): fc.Arbitrary<unknown> {
  // Entries of a list are never huge themselves: a huge list of huge strings would not fit in memory.
  const entry = { ...mode, big: false };
  switch (field.fieldKind) {
    case "scalar":
      return scalarArb(field.scalar, mode, hintKind(field, parent), field.name);
    case "enum":
      return enumArb(field.enum.values, mode);
    case "message":
      return messageArb(field.message, mode, depth + 1, parent);
    case "list":
      switch (field.listKind) {
        case "scalar":
          return listArb(scalarArb(field.scalar, entry, hintKind(field, parent), field.name), mode);
        case "enum":
          return listArb(enumArb(field.enum.values, entry), mode);
        case "message":
          return listArb(messageArb(field.message, entry, depth + 1, parent), mode);
      }
      break;
    case "map": {
      const key = field.mapKey === ScalarType.STRING ? fc.string({ maxLength: 8 }) : field.mapKey === ScalarType.BOOL ? fc.constantFrom("true", "false") : fc.integer().map(String);
      const value =
        field.mapKind === "scalar" ? scalarArb(field.scalar, entry) : field.mapKind === "enum" ? enumArb(field.enum.values, entry) : messageArb(field.message, entry, depth + 1, parent);
      return fc.dictionary(key, value, { maxKeys: 4 });
    }
  }
}

/** A plausible request with a hostile value or two; a wild one, half hostile; or one allowed to be huge. */
function requestArb(desc: DescMessage): fc.Arbitrary<Init> {
  return fc.oneof(
    { weight: 4, arbitrary: messageArb(desc, { hostile: 1, big: false }) },
    { weight: 3, arbitrary: messageArb(desc, { hostile: 5, big: false }) },
    { weight: 1, arbitrary: messageArb(desc, { hostile: 5, big: true }) },
  );
}

/** Replaces each HintRef with an id of its kind, or of any kind when there is none of its own. */
function resolve(value: unknown, hints: Hints): unknown {
  if (value instanceof HintRef) {
    const pool = hints.get(value.kind) ?? hints.get("any") ?? [];
    return pool.length === 0 ? "" : pool[value.n % pool.length];
  }
  if (Array.isArray(value)) return value.map((v) => resolve(v, hints));
  if (value !== null && typeof value === "object" && !(value instanceof Uint8Array)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolve(v, hints)]));
  }
  return value;
}

/** The request as JSON, or undefined when JSON cannot carry it (a timestamp past 9999, a mask path in camelCase…). */
function jsonOf(desc: DescMessage, message: Message): string | undefined {
  try {
    return toJsonString(desc, message);
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Bodies that are not messages
// ---------------------------------------------------------------------------------------------------------------

/** Paths of field numbers from the request down to each string field (at most three levels), for invalid UTF-8. */
function stringFieldPaths(desc: DescMessage, depth = 0): number[][] {
  if (depth > 2) return [];
  const paths: number[][] = [];
  for (const f of desc.fields) {
    if ((f.fieldKind === "scalar" || f.fieldKind === "list") && f.scalar === ScalarType.STRING) paths.push([f.number]);
    if ((f.fieldKind === "message" || (f.fieldKind === "list" && f.listKind === "message")) && f.message) {
      for (const p of stringFieldPaths(f.message, depth + 1)) paths.push([f.number, ...p]);
    }
  }
  return paths;
}

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return out;
}

/** A length-delimited field `path[0]` holding, nested down the path, `payload`. */
function nested(path: readonly number[], payload: Uint8Array): Uint8Array {
  let inner = payload;
  for (const number of [...path].reverse()) inner = Uint8Array.from([...varint((number << 3) | 2), ...varint(inner.length), ...inner]);
  return inner;
}

const invalidUtf8 = [[0xff], [0x61, 0xfe, 0x62], [0xc0, 0x80], [0xc3], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82], [0xf8, 0x88, 0x80, 0x80, 0x80]].map((b) =>
  Uint8Array.from(b),
);

type Mutation =
  | { kind: "flip"; at: number; bits: number }
  | { kind: "truncate"; at: number }
  | { kind: "insert"; at: number; bytes: Uint8Array }
  | { kind: "utf8"; path: number; bytes: Uint8Array }
  | { kind: "varint"; number: number }
  | { kind: "overlong"; number: number }
  | { kind: "wiretype"; number: number; wire: number };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), bits: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  fc.record({ kind: fc.constant("utf8" as const), path: fc.nat(), bytes: fc.constantFrom(...invalidUtf8) }),
  fc.record({ kind: fc.constant("varint" as const), number: fc.integer({ min: 1, max: 20 }) }),
  fc.record({ kind: fc.constant("overlong" as const), number: fc.integer({ min: 1, max: 20 }) }),
  fc.record({ kind: fc.constant("wiretype" as const), number: fc.integer({ min: 1, max: 20 }), wire: fc.constantFrom(3, 4, 6, 7) }),
);

function mutate(bytes: Uint8Array, mutations: readonly Mutation[], desc: DescMessage): Uint8Array {
  let out = bytes;
  const strings = stringFieldPaths(desc);
  for (const m of mutations) {
    const at = (n: number) => n % (out.length + 1);
    switch (m.kind) {
      case "flip":
        if (out.length > 0) {
          out = Uint8Array.from(out);
          const i = m.at % out.length;
          out[i] = out[i]! ^ m.bits;
        }
        break;
      case "truncate":
        out = out.subarray(0, at(m.at));
        break;
      case "insert":
        out = Uint8Array.from([...out.subarray(0, at(m.at)), ...m.bytes, ...out.subarray(at(m.at))]);
        break;
      case "utf8": {
        // A repeated occurrence of a string field (valid protobuf, the last one wins) whose bytes are not UTF-8.
        const path = strings[m.path % Math.max(1, strings.length)];
        if (path) out = Uint8Array.from([...out, ...nested(path, Uint8Array.from([0x61, ...m.bytes, 0x7a]))]);
        break;
      }
      case "varint":
        // Eleven continuation bytes: longer than any varint may be.
        out = Uint8Array.from([...out, ...varint(m.number << 3), ...new Array<number>(11).fill(0xff), 0x01]);
        break;
      case "overlong":
        // A length-delimited field that claims more bytes than follow.
        out = Uint8Array.from([...out, ...varint((m.number << 3) | 2), ...varint(1_000_000), 0x61]);
        break;
      case "wiretype":
        // Group markers and the wire types that do not exist.
        out = Uint8Array.from([...out, ...varint((m.number << 3) | m.wire), 0x00]);
        break;
    }
  }
  return out;
}

/** Random bytes, or a generated request's encoding with one to three mutations. */
function rawBodyArb(desc: DescMessage): fc.Arbitrary<{ init?: Init; mutations?: Mutation[]; random?: Uint8Array }> {
  return fc.oneof(
    fc.record({ random: fc.uint8Array({ maxLength: 256 }) }),
    fc.record({ init: messageArb(desc, { hostile: 2, big: false }), mutations: fc.array(mutationArb, { minLength: 1, maxLength: 3 }) }),
  );
}

type JsonBreak =
  | { kind: "truncate"; at: number }
  | { kind: "insert"; at: number; text: string }
  | { kind: "utf8"; at: number; bytes: Uint8Array }
  | { kind: "retype"; key: number; value: string }
  | { kind: "unknown" }
  | { kind: "duplicate"; key: number }
  | { kind: "bom" }
  | { kind: "nest"; depth: number }
  | { kind: "surrogate" }
  | { kind: "literal"; text: string };

const jsonBreakArb: fc.Arbitrary<JsonBreak> = fc.oneof(
  fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), text: fc.constantFrom('"', "{", "}", "[", "]", ",", ":", "\\", "x", "\u0000", "\u0007", "//", "NaN") }),
  fc.record({ kind: fc.constant("utf8" as const), at: fc.nat(), bytes: fc.constantFrom(...invalidUtf8) }),
  fc.record({
    kind: fc.constant("retype" as const),
    key: fc.nat(),
    value: fc.constantFrom("[]", "{}", '"x"', "1e400", "-0", "true", "null", "12345678901234567890", '"NaN"', '"\\ud800"', '[1,"x",{}]', "1.5", '" 1"', '"1e3"', '"-Infinity"'),
  }),
  fc.record({ kind: fc.constant("unknown" as const) }),
  fc.record({ kind: fc.constant("duplicate" as const), key: fc.nat() }),
  fc.record({ kind: fc.constant("bom" as const) }),
  fc.record({ kind: fc.constant("nest" as const), depth: fc.constantFrom(100, 10_000, 100_000) }),
  fc.record({ kind: fc.constant("surrogate" as const) }),
  fc.record({ kind: fc.constant("literal" as const), text: fc.constantFrom("", " ", "null", "[]", "1", '"x"', "{", "}", '{"a":', "{,}", "{'a':1}", "{}{}", "\ufeff{}") }),
);

function breakJson(text: string, b: JsonBreak): Uint8Array {
  const bytes = (s: string) => new TextEncoder().encode(s);
  const at = (n: number) => n % (text.length + 1);
  switch (b.kind) {
    case "truncate":
      return bytes(text.slice(0, at(b.at)));
    case "insert":
      return bytes(text.slice(0, at(b.at)) + b.text + text.slice(at(b.at)));
    case "utf8": {
      const raw = bytes(text);
      const i = b.at % (raw.length + 1);
      return Uint8Array.from([...raw.subarray(0, i), ...b.bytes, ...raw.subarray(i)]);
    }
    case "retype":
    case "duplicate": {
      const obj = JSON.parse(text) as Record<string, unknown>;
      const keys = Object.keys(obj);
      const key = keys.length > 0 ? keys[b.key % keys.length]! : "name";
      if (b.kind === "duplicate") return bytes(text.replace(/\}$/, `${keys.length > 0 ? "," : ""}${JSON.stringify(key)}:${JSON.stringify(obj[key] ?? 1)}}`));
      delete obj[key];
      const rest = JSON.stringify(obj);
      return bytes(`{${JSON.stringify(key)}:${b.value}${rest === "{}" ? "" : "," + rest.slice(1, -1)}}`);
    }
    case "unknown":
      return bytes(text.replace(/^\{/, text === "{}" ? '{"noSuchField":1' : '{"noSuchField":1,'));
    case "bom":
      return bytes("\ufeff" + text);
    case "nest":
      return bytes(`{"x":${"[".repeat(b.depth)}${"]".repeat(b.depth)}}`);
    case "surrogate":
      // Escapes that JSON allows but that are no Unicode text.
      return bytes(text.replace(/"([^"\\]*)"(?!:)/g, '"$1\\ud800"'));
    case "literal":
      return bytes(b.text);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Senders
// ---------------------------------------------------------------------------------------------------------------

type Protocol = "grpc" | "grpc-web" | "connect-json" | "connect-proto";
const protocols: readonly Protocol[] = ["grpc", "grpc-web", "connect-json", "connect-proto"];

interface Outcome {
  status: Status;
  httpStatus?: number;
  detail: string;
  response?: unknown;
}

function codeFromName(name: unknown): Status | undefined {
  if (typeof name !== "string") return undefined;
  for (let c = 1; c <= 16; c++) if (codeName(c as Code) === name) return c as Code;
  return undefined;
}

/** A copy fetch accepts as a body (its types want an ArrayBuffer-backed view). */
const fetchBody = (bytes: Uint8Array): Uint8Array<ArrayBuffer> => new Uint8Array(bytes);

function outcomeOf(e: unknown): Outcome {
  const error = ConnectError.from(e);
  return { status: error.code, detail: error.rawMessage.slice(0, 300) };
}

// ---------------------------------------------------------------------------------------------------------------
// The suite
// ---------------------------------------------------------------------------------------------------------------

describe("fuzzing", () => {
  let tp: TestPlatform;
  let services: DescService[];
  const callers = new Map<CallerName, Caller | undefined>();
  /** Owners for the round trips, whose carts the other properties never touch (a fuzzed cart name could clash). */
  const roundTripTokens = new Map<CallerName, string>();
  /** Users whose rows are digested: the three callers, and two bystanders the admin may act on. */
  const watched: string[] = [];
  let bystanders: string[] = [];
  const transports = new Map<Protocol, Transport>();
  let agent: http.Agent | undefined;
  /** gRPC-web and Connect over HTTP/1.1 on an agent of their own, made anew (its connections closed) when called. */
  const http1Transports = () => {
    agent?.destroy();
    const nodeOptions = { agent: (agent = new http.Agent({ keepAlive: true })) };
    transports.set("grpc-web", createGrpcWebTransport({ baseUrl: tp.url, httpVersion: "1.1", nodeOptions }));
    transports.set("connect-json", createConnectTransport({ baseUrl: tp.url, httpVersion: "1.1", nodeOptions }));
    transports.set("connect-proto", createConnectTransport({ baseUrl: tp.url, httpVersion: "1.1", useBinaryFormat: true, nodeOptions }));
  };
  let session: http2.ClientHttp2Session | undefined;
  /** The HTTP/2 session for raw calls, opened again when the server has closed it (idle timeout, GOAWAY). */
  const h2 = async () => {
    if (!session || session.closed || session.destroyed) session = await h2Session(tp.url);
    return session;
  };
  const counts = { cases: 0, faults: 0 };

  before(async () => {
    // In every log, so a run that failed anywhere (a flaky neighbour too) can be repeated.
    console.log(`fuzzing: FUZZ_SEED=${seed} FUZZ_RUNS=${runs}`);
    tp = await startTestPlatform({
      backend: "pglite",
      env: {
        ADMIN_USERNAME: admin.username,
        ADMIN_EMAIL: admin.email,
        ADMIN_PASSWORD: admin.password,
        // The fuzzer registers and fails logins by the hundred from one address.
        REGISTER_IP_MAX_ATTEMPTS: "100000",
        LOGIN_MAX_FAILURES: "10000",
        LOGIN_IP_MAX_FAILURES: "100000",
        // A session ended by a fuzzed Logout or RevokeSession is seen at once, so the caller logs in again.
        SESSION_CHECK_CACHE_MS: "0",
        CART_MAX_CARTS: "10000",
        ADDRESS_MAX_PER_OWNER: "1000",
      },
    });
    services = (await generatedServices({ under: "" })).filter((s) => s.methods.length > 0);
    transports.set("grpc", transportFor(tp.url, "grpc"));
    http1Transports();

    for (const name of ["customer", "shop_owner"] as const) {
      const u = await registerAndLogin(tp.url, { role: roleOf[name]! });
      callers.set(name, { name, userId: u.userId, login: u.username, password: u.password, token: u.accessToken, sessionId: sessionOf(u.accessToken) });
    }
    const a = await callJson<{ accessToken: string; user: { id: string } }>(tp.url, "grocery.identity.v1.AuthService/Login", { login: admin.username, password: admin.password });
    callers.set("admin", { name: "admin", userId: a.user.id, login: admin.username, password: admin.password, token: a.accessToken, sessionId: sessionOf(a.accessToken) });
    callers.set("anonymous", undefined);
    for (const name of ["customer", "shop_owner"] as const) roundTripTokens.set(name, (await registerAndLogin(tp.url, { role: roleOf[name]! })).accessToken);
    bystanders = [(await registerAndLogin(tp.url)).userId, (await registerAndLogin(tp.url, { role: Role.SHOP_OWNER })).userId];
    for (const c of callers.values()) if (c) watched.push(c.userId);
    watched.push(...bystanders);

    // Something to aim at: a cart with a line and an address for each owner, a shop for the shop owner.
    for (const name of ["customer", "shop_owner"] as const) {
      const token = callers.get(name)!.token;
      const carts = createClient(CartService, transportFor(tp.url, "connect"));
      const cart = (await carts.createCart({ name: `${name} weekly` }, bearer(token))).cart!;
      await carts.addItem(
        { cartId: cart.id, item: { productId: "sku-1", shopId: "shop-1", name: "Milk", unitPrice: { currencyCode: "INR", amountMinor: 4500n }, quantity: 2 } },
        bearer(token),
      );
      const book = createClient(AddressService, transportFor(tp.url, "connect"));
      await book.createAddress({ address: { kind: AddressKind.HOME, line1: "1 Main Road", city: "Berlin", countryCode: "DE", postalCode: "10115" } }, bearer(token));
      if (name === "shop_owner") {
        await book.createAddress(
          { address: { kind: AddressKind.SHOP, shopName: "Corner Shop", line1: "2 Main Road", city: "Berlin", countryCode: "DE", postalCode: "10115", location: { latitude: 52.52, longitude: 13.405 } } },
          bearer(token),
        );
      }
    }
  });
  after(async () => {
    report.add(counts);
    session?.destroy();
    agent?.destroy();
    await tp?.close();
  });
  afterEach(() => {
    report.add(counts);
    counts.cases = 0;
    counts.faults = 0;
    report.sampleRss();
  });

  /**
   * Every row of the watched users, digested per user, and the ids in them (to aim fuzzed requests at): accounts,
   * sessions, service accounts made, carts, lines, AddItem request ids, addresses, standings. Left out on purpose: activity and
   * the login throttles, which rejected calls write by design (a wrong password is recorded and counted), and reset
   * tokens and the outbox, which RequestPasswordReset writes after it has answered.
   */
  async function snapshot(): Promise<{ digests: Map<string, string>; ids: Map<string, string[]> }> {
    await deliveriesSettled();
    const list = sql.join(
      watched.map((id) => sql`${id}`),
      sql`, `,
    );
    const rows = rowsOf<{ tbl: string; owner: string; id: string; extra: string | null; row: string }>(
      await tp.platform.database.db.execute(sql`
        select 'users' as tbl, t.id::text as owner, t.id::text as id, null as extra, t::text as row from identity.users t where t.id::text in (${list})
        union all select 'sessions', t.user_id::text, t.id::text, null, t::text from identity.sessions t where t.user_id::text in (${list})
        union all select 'service_accounts', t.created_by::text, t.client_id, null, t::text from identity.service_accounts t where t.created_by::text in (${list})
        union all select 'carts', t.owner_id, t.id::text, null, t::text from cart.carts t where t.owner_id in (${list})
        union all select 'cart_items', c.owner_id, i.product_id, i.shop_id, i::text from cart.cart_items i join cart.carts c on c.id = i.cart_id where c.owner_id in (${list})
        union all select 'add_item_requests', t.owner_id, t.request_id::text, null, t::text from cart.add_item_requests t where t.owner_id in (${list})
        union all select 'addresses', t.owner_id, t.id::text, null, t::text from address.addresses t where t.owner_id in (${list})
        union all select 'user_standings', t.user_id, t.user_id, null, t::text from address.user_standings t where t.user_id in (${list})
        order by 1, 2, 5`),
    );
    const hashes = new Map(watched.map((id) => [id, createHash("sha256")]));
    const ids = new Map<string, Set<string>>([["any", new Set(watched)], ["user", new Set(watched)]]);
    const add = (kind: string, id: string) => {
      for (const k of [kind, "any"]) ids.set(k, (ids.get(k) ?? new Set()).add(id));
    };
    const kinds: Record<string, [string, string?]> = {
      sessions: ["session"],
      service_accounts: ["client"],
      carts: ["cart"],
      cart_items: ["product", "shop"],
      add_item_requests: ["request"],
      addresses: ["address"],
    };
    for (const r of rows) {
      hashes.get(r.owner)?.update(`${r.tbl}\u0000${r.row}\u0000`);
      const [kind, extraKind] = kinds[r.tbl] ?? ["user"];
      add(kind, r.id);
      if (r.extra && extraKind) add(extraKind, r.extra);
    }
    return {
      digests: new Map([...hashes].map(([id, h]) => [id, h.digest("hex")])),
      ids: new Map([...ids].map(([k, v]) => [k, [...v].sort()])),
    };
  }

  /**
   * The ids a case may aim at: every watched row's, so a caller tries other owners' carts and addresses too, except
   * that an admin is aimed only at the users it may change, never at the other callers (it could delete them).
   */
  function hintsFor(caller: Caller | undefined, ids: Hints): Hints {
    if (caller?.name !== "admin") return ids;
    const spared = new Set(watched.filter((id) => !mayChange(caller).has(id)));
    return new Map([...ids].map(([k, v]) => [k, v.filter((id) => !spared.has(id))]));
  }

  /** Users a call by `caller` may change: its own rows; an admin's also the bystanders' (it administers them). */
  function mayChange(caller: Caller | undefined): Set<string> {
    if (!caller) return new Set();
    return new Set(caller.name === "admin" ? [caller.userId, ...bystanders] : [caller.userId]);
  }

  /** Answers per method and status, printed when FUZZ_STATS=1 to see how deep the cases reach. */
  const stats = new Map<string, Map<string, number>>();
  after(() => {
    for (const [id, n] of knownHits) console.log(`fuzzing: known issue ${id} hit ${n} time(s): ${knownIssues.find((k) => k.id === id)?.summary}`);
    if (process.env["FUZZ_STATS"] !== "1") return;
    for (const [method, byStatus] of [...stats].sort()) console.log(method.padEnd(60), [...byStatus].map(([k, v]) => `${k}=${v}`).join(" "));
  });

  /** The case judged last, named in a failure: a connection it left broken shows up in the next one. */
  let previous = "(none)";

  interface Case {
    label: string;
    method: DescMethod;
    protocol: string;
    caller: Caller | undefined;
    outcome: Outcome;
    before: Map<string, string>;
    after: Map<string, string>;
    /** The one status this case must answer (INVALID_ARGUMENT for a body that does not parse). */
    expect?: Status;
  }

  /** Properties 1–3 for one answered case; throws with what went wrong. */
  function judge(c: Case) {
    const { outcome } = c;
    const tally = stats.get(c.label.split(" ")[0]!) ?? new Map<string, number>();
    tally.set(statusName(outcome.status), (tally.get(statusName(outcome.status)) ?? 0) + 1);
    stats.set(c.label.split(" ")[0]!, tally);
    const what = `${c.label} as ${c.caller?.name ?? "anonymous"}: ${statusName(outcome.status)} (HTTP ${outcome.httpStatus ?? "-"}) ${outcome.detail} [case before: ${previous}]`;
    previous = `${c.label} as ${c.caller?.name ?? "anonymous"}: ${statusName(outcome.status)}`;
    const known = knownIssues.find((k) => k.matches?.(c.method, c.protocol, outcome));
    if (known) {
      knownHits.set(known.id, (knownHits.get(known.id) ?? 0) + 1);
    } else {
      assert.notEqual(outcome.httpStatus, 500, what);
      assert.ok(outcome.status !== Code.Internal && outcome.status !== Code.Unknown, what);
      if (c.expect !== undefined) assert.equal(statusName(outcome.status), statusName(c.expect), what);
      assert.ok(allowed(c.method).has(outcome.status), `${what}: not an answer ${c.method.parent.typeName} documents`);
    }
    const free = outcome.status === 0 ? mayChange(c.caller) : new Set<string>();
    for (const [user, digest] of c.before) {
      if (!free.has(user)) assert.equal(c.after.get(user), digest, `${what}: rows of user ${user} changed${outcome.status === 0 ? "" : " by a rejected call"}`);
    }
  }

  /**
   * Keeps the callers usable after a call that succeeded: a fuzzed Logout or RevokeSession ends the caller's
   * session (log in again); an admin that made a bystander an administrator takes the role back, so the last-admin
   * rule keeps protecting the fuzzing admin from demoting, disabling or deleting itself.
   */
  async function heal(caller: Caller | undefined, method: DescMethod) {
    if (!caller || !method.parent.typeName.startsWith("grocery.identity.")) return;
    try {
      await callJson(tp.url, "grocery.identity.v1.UserService/GetMe", {}, caller.token);
    } catch {
      const login = await callJson<{ accessToken: string }>(tp.url, "grocery.identity.v1.AuthService/Login", { login: caller.login, password: caller.password });
      caller.token = login.accessToken;
      caller.sessionId = sessionOf(login.accessToken);
    }
    if (caller.name !== "admin") return;
    const admins = await callJson<{ users?: { id: string }[] }>(tp.url, "grocery.identity.v1.UserService/ListUsers", { role: "ROLE_ADMIN", pageSize: 100 }, caller.token);
    for (const u of admins.users ?? []) {
      if (u.id !== caller.userId) await callJson(tp.url, "grocery.identity.v1.UserService/UpdateUserRoles", { userId: u.id, roles: ["ROLE_CUSTOMER"] }, caller.token);
    }
  }

  /**
   * Waits until identity owes the other services nothing. An accepted call (DeleteUser, DisableUser, a role
   * change, and heal's own calls) has consequences the dispatcher delivers after the answer: they must land
   * before a case's first snapshot, or that case would see rows change under it. Before its second snapshot, the
   * wait lets whatever a rejected call might have set going land too, so it is judged as well.
   */
  async function deliveriesSettled() {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const [row] = rowsOf<{ n: number }>(
        await tp.platform.database.db.execute(sql`select count(*)::int as n from identity.outbox_deliveries where status = 'pending'`),
      );
      if ((row?.n ?? 0) === 0) return;
      assert.ok(Date.now() < deadline, `${row?.n} deliveries still pending after 10 s`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Callers the method's access policy admits are drawn three times as often as the others. */
  function callerArb(method: DescMethod): fc.Arbitrary<CallerName> {
    const policy = accessPolicyOf(method);
    return fc.oneof(
      ...callerNames.map((name) => {
        const role = roleOf[name];
        const admitted = !policy || policy.public || (role !== undefined && policy.roles.includes(role));
        return { weight: admitted ? 3 : 1, arbitrary: fc.constant(name) };
      }),
    );
  }

  const headersOf = (caller: Caller | undefined): Record<string, string> => (caller ? { authorization: `Bearer ${caller.token}` } : {});

  /** Failed properties of the current test; a failure does not stop the others, so one run reports them all. */
  const failures: string[] = [];

  /** Runs a property with a seed derived from FUZZ_SEED and its label; a failure names both and is kept. */
  async function check<Ts extends [unknown, ...unknown[]]>(label: string, numRuns: number, property: fc.IAsyncPropertyWithHooks<Ts>) {
    if (only && !label.includes(only)) return;
    const derived = Number.parseInt(createHash("sha256").update(`${seed}/${label}`).digest("hex").slice(0, 8), 16) | 0;
    try {
      await fc.assert(property, { seed: derived, numRuns, endOnFailure: !shrink });
    } catch (e) {
      report.add({ violations: 1 });
      // fast-check keeps the property's own assertion as the cause.
      const cause = e instanceof Error && e.cause instanceof Error ? `\n${e.cause.message}` : "";
      const message = (e instanceof Error ? e.message : String(e)) + cause;
      failures.push(`${label}: reproduce with FUZZ_SEED=${seed} (this property's fast-check seed ${derived})\n${message.slice(0, 4000)}`);
    }
  }

  /** Fails the test with every property that failed in it. */
  function verdict() {
    const found = failures.splice(0);
    assert.equal(found.length, 0, `${found.length} propert${found.length === 1 ? "y" : "ies"} failed (FUZZ_SEED=${seed}):\n\n${found.join("\n\n")}`);
  }

  /** A generated message through a connect-node client. */
  async function callGenerated(protocol: Protocol, method: DescMethod, message: Message, caller: Caller | undefined): Promise<Outcome> {
    const client = createClient(method.parent, transports.get(protocol)!) as unknown as Record<string, (req: unknown, o: CallOptions) => unknown>;
    const call = client[method.localName]!;
    const options: CallOptions = { headers: headersOf(caller) };
    let outcome: Outcome | undefined;
    try {
      if (method.methodKind === "unary") return (outcome = { status: 0, detail: "", response: await (call(message, options) as Promise<unknown>) });
      // A deadline ends a stream that has nothing more to say (Health.Watch never ends by itself).
      options.timeoutMs = 1000;
      const input = method.methodKind === "server_streaming" ? message : (async function* () { yield message; })();
      const result = call(input, options);
      if (method.methodKind === "client_streaming") return { status: 0, detail: "", response: await (result as Promise<unknown>) };
      // The first answer is enough: leaving the loop cancels the stream.
      for await (const res of result as AsyncIterable<unknown>) return { status: 0, detail: "", response: res };
      return { status: 0, detail: "" };
    } catch (e) {
      return (outcome = outcomeOf(e));
    } finally {
      // A message refused for its size leaves its HTTP/1.1 connection unusable (known issue
      // h1-unread-body-keep-alive): drop them all.
      if (protocol !== "grpc" && outcome?.status === Code.ResourceExhausted) http1Transports();
    }
  }

  /** Bytes as the body of one call, framed as `protocol` frames it, sent with plain HTTP/2 or fetch. */
  async function callRaw(protocol: Protocol | "grpc-gzip", method: DescMethod, body: Uint8Array, caller: Caller | undefined): Promise<Outcome> {
    const path = `/${method.parent.typeName}/${method.name}`;
    const streaming = method.methodKind !== "unary";
    switch (protocol) {
      case "grpc":
      case "grpc-gzip": {
        // gzip takes connect-node's general path; plain frames the unary fast path.
        const gz = protocol === "grpc-gzip";
        const frame = grpcFrame(gz ? gzipSync(body) : body);
        if (gz) frame[0] = 1;
        const o = await h2Call(await h2(), path, frame, {
          headers: { ...headersOf(caller), ...(gz ? { "grpc-encoding": "gzip" } : {}), ...(streaming ? { "grpc-timeout": "500m" } : {}) },
        });
        return { status: Number(o.grpcStatus || -1) as Status, httpStatus: o.httpStatus, detail: `rst ${o.rstCode}` };
      }
      case "grpc-web": {
        const res = await fetch(tp.url + path, { method: "POST", headers: { "content-type": "application/grpc-web+proto", ...headersOf(caller) }, body: fetchBody(grpcFrame(body)) });
        const bytes = Buffer.from(await res.arrayBuffer());
        let status = res.headers.get("grpc-status");
        for (let i = 0; i + 5 <= bytes.length; i += 5 + bytes.readUInt32BE(i + 1)) {
          if ((bytes[i]! & 0x80) === 0x80) status = /grpc-status:\s*(\d+)/i.exec(bytes.subarray(i + 5, i + 5 + bytes.readUInt32BE(i + 1)).toString("latin1"))?.[1] ?? status;
        }
        return { status: Number(status ?? -1) as Status, httpStatus: res.status, detail: "" };
      }
      case "connect-proto":
      case "connect-json": {
        const contentType = protocol === "connect-json" ? "application/json" : "application/proto";
        const res = await fetch(tp.url + path, { method: "POST", headers: { "content-type": contentType, ...headersOf(caller) }, body: fetchBody(body) });
        const text = await res.text();
        if (res.status === 200) return { status: 0, httpStatus: 200, detail: "" };
        let json: { code?: string; message?: string } = {};
        try {
          json = JSON.parse(text) as typeof json;
        } catch {
          // Not a Connect error body: the status check below reports it.
        }
        return { status: codeFromName(json.code) ?? (-1 as Status), httpStatus: res.status, detail: String(json.message ?? text).slice(0, 300) };
      }
    }
  }

  const unaryMethods = () => services.flatMap((s) => s.methods.filter((m) => m.methodKind === "unary"));
  const streamingMethods = () => services.flatMap((s) => s.methods.filter((m) => m.methodKind !== "unary"));

  it("generated messages, every unary RPC, every protocol, every caller: documented codes only, rejections store nothing", async () => {
    for (const method of unaryMethods()) {
      for (const protocol of protocols) {
        const label = `${method.parent.typeName}/${method.name} over ${protocol}`;
        await check(
          label,
          runs,
          fc.asyncProperty(callerArb(method), requestArb(method.input), async (callerName, init) => {
            const caller = callers.get(callerName);
            const before = await snapshot();
            const message = create(method.input, resolve(init, hintsFor(caller, before.ids)) as never);
            // Values JSON has no form for (a year past 9999, a mask path with capitals) are the binary protocols' to send.
            fc.pre(protocol !== "connect-json" || jsonOf(method.input, message) !== undefined);
            counts.cases++;
            const outcome = await callGenerated(protocol, method, message, caller);
            const after = await snapshot();
            judge({ label, method, protocol, caller, outcome, before: before.digests, after: after.digests });
            if (outcome.status === 0) await heal(caller, method);
          }),
        );
      }
    }
    verdict();
  });

  it("streaming RPCs: generated messages under a deadline answer documented codes only", async () => {
    for (const method of streamingMethods()) {
      // connect-node's HTTP/1.1 transports cannot stream requests: bidi and client streams go over HTTP/2 only.
      for (const protocol of method.methodKind === "server_streaming" ? protocols : (["grpc"] as const)) {
        const label = `${method.parent.typeName}/${method.name} over ${protocol}`;
        await check(
          label,
          Math.max(1, Math.ceil(runs / 2)),
          fc.asyncProperty(callerArb(method), requestArb(method.input), async (callerName, init) => {
            const caller = callers.get(callerName);
            const before = await snapshot();
            const message = create(method.input, resolve(init, hintsFor(caller, before.ids)) as never);
            fc.pre(protocol !== "connect-json" || jsonOf(method.input, message) !== undefined);
            counts.cases++;
            const outcome = await callGenerated(protocol, method, message, caller);
            judge({ label, method, protocol, caller, outcome, before: before.digests, after: (await snapshot()).digests });
          }),
        );
      }
    }
    verdict();
  });

  it("random and mutated protobuf bytes, every RPC, framed as gRPC (plain and gzip), gRPC-web and Connect: INVALID_ARGUMENT when they do not parse", async () => {
    for (const method of [...unaryMethods(), ...streamingMethods()]) {
      // Streams over plain HTTP/2 only, with a deadline: a request that parses opens a stream that may never end.
      const framings = method.methodKind === "unary" ? (["grpc", "grpc-gzip", "grpc-web", "connect-proto"] as const) : (["grpc"] as const);
      for (const framing of framings) {
        const label = `${method.parent.typeName}/${method.name} as raw ${framing}`;
        await check(
          label,
          runs,
          fc.asyncProperty(callerArb(method), rawBodyArb(method.input), async (callerName, raw) => {
            const caller = callers.get(callerName);
            const before = await snapshot();
            const body = raw.random ?? mutate(toBinary(method.input, create(method.input, resolve(raw.init, hintsFor(caller, before.ids)) as never)), raw.mutations ?? [], method.input);
            let parses = true;
            try {
              fromBinary(method.input, body);
            } catch {
              parses = false;
            }
            counts.cases++;
            counts.faults++;
            const outcome = await callRaw(framing, method, body, caller);
            const expect = parses ? undefined : Code.InvalidArgument;
            judge({ label, method, protocol: framing, caller, outcome, before: before.digests, after: (await snapshot()).digests, ...(expect ? { expect } : {}) });
            if (outcome.status === 0) await heal(caller, method);
          }),
        );
      }
    }
    verdict();
  });

  it("broken JSON and invalid UTF-8 over Connect, every unary RPC: INVALID_ARGUMENT when it is no request", async () => {
    const strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
    for (const method of unaryMethods()) {
      const label = `${method.parent.typeName}/${method.name} as broken JSON`;
      await check(
        label,
        runs * 2,
        fc.asyncProperty(callerArb(method), messageArb(method.input, { hostile: 2, big: false }), jsonBreakArb, async (callerName, init, broken) => {
          const caller = callers.get(callerName);
          const before = await snapshot();
          const text = jsonOf(method.input, create(method.input, resolve(init, hintsFor(caller, before.ids)) as never));
          fc.pre(text !== undefined);
          const body = breakJson(text, broken);
          // The server's reading of a Connect JSON body: strict UTF-8 (a BOM is text), JSON, then the message,
          // ignoring fields it does not know.
          let parses = true;
          try {
            fromJson(method.input, JSON.parse(strict.decode(body)) as never, { ignoreUnknownFields: true });
          } catch {
            parses = false;
          }
          counts.cases++;
          counts.faults++;
          const outcome = await callRaw("connect-json", method, body, caller);
          const expect = parses ? undefined : Code.InvalidArgument;
          judge({ label, method, protocol: "connect-json", caller, outcome, before: before.digests, after: (await snapshot()).digests, ...(expect ? { expect } : {}) });
          if (outcome.status === 0) await heal(caller, method);
        }),
      );
    }
    verdict();
  });

  it("unknown methods and services answer UNIMPLEMENTED on every protocol", async () => {
    const known = new Set(services.flatMap((s) => s.methods.map((m) => `/${s.typeName}/${m.name}`)));
    const pathArb = fc
      .tuple(
        fc.oneof(fc.constantFrom(...services.map((s) => s.typeName)), fc.constantFrom("grocery.nope.v1.NopeService", "grocery.cart.v2.CartService", "CartService")),
        fc.oneof(fc.stringMatching(/^[A-Za-z][A-Za-z0-9_]{0,30}$/), fc.constantFrom(...services.flatMap((s) => s.methods.map((m) => m.name.toLowerCase())))),
      )
      .map(([s, m]) => `/${s}/${m}`)
      .filter((p) => !known.has(p));
    for (const protocol of protocols) {
      await check(
        `unknown methods over ${protocol}`,
        runs * 2,
        fc.asyncProperty(pathArb, async (path) => {
          counts.cases++;
          let status: string | null;
          if (protocol === "grpc") {
            status = (await h2Call(await h2(), path, grpcFrame(new Uint8Array()))).grpcStatus;
          } else if (protocol === "grpc-web") {
            const res = await fetch(tp.url + path, { method: "POST", headers: { "content-type": "application/grpc-web+proto" }, body: fetchBody(grpcFrame(new Uint8Array())) });
            await res.arrayBuffer();
            status = res.headers.get("grpc-status");
          } else {
            const res = await fetch(tp.url + path, { method: "POST", headers: { "content-type": protocol === "connect-json" ? "application/json" : "application/proto" }, body: "{}" });
            status = String(codeFromName(((await res.json()) as { code?: string }).code) ?? res.status);
          }
          assert.equal(status, String(Code.Unimplemented), `${path} over ${protocol}`);
        }),
      );
    }
    verdict();
  });

  // ---- Property 4: valid text that looks hostile is stored and returned as sent --------------------------------

  /**
   * Valid text for the fields below: injection strings, emoji, direction marks and any graphemes, joined by spaces,
   * then made what the services accept unchanged: NFC, trimmed, no control characters, at most 48 code points.
   */
  const validTextArb = fc
    .array(fc.oneof(fc.constantFrom(...injections), fc.string({ unit: "grapheme", minLength: 1, maxLength: 6 })), { minLength: 1, maxLength: 4 })
    .map((parts) => {
      let s = parts.join(" ").replace(/\p{Cc}/gu, "").normalize("NFC").trim();
      s = [...s].slice(0, 48).join("").normalize("NFC").trim();
      return s === "" ? "x" : s;
    });
  const ownerArb = fc.constantFrom<CallerName>("customer", "shop_owner");

  it("injection-looking text: a cart name and an item name through CreateCart, AddItem and GetCart, verbatim on every protocol", async () => {
    for (const protocol of protocols) {
      const carts = createClient(CartService, transports.get(protocol)!);
      await check(
        `cart round trip over ${protocol}`,
        runs + 2,
        fc.asyncProperty(ownerArb, validTextArb, async (owner, name) => {
          const auth = bearer(roundTripTokens.get(owner)!);
          counts.cases++;
          const created = (await carts.createCart({ name }, auth)).cart!;
          try {
            assert.equal(created.name, name, "CreateCart answer");
            const item = { productId: "sku-1", shopId: "shop-1", name, unitPrice: { currencyCode: "INR", amountMinor: 100n }, quantity: 1 };
            assert.equal((await carts.addItem({ cartId: created.id, item }, auth)).cart?.items[0]?.name, name, "AddItem answer");
            const read = (await carts.getCart({ cartId: created.id }, auth)).cart;
            assert.equal(read?.name, name, "GetCart answer, cart name");
            assert.equal(read?.items[0]?.name, name, "GetCart answer, item name");
          } finally {
            await carts.deleteCart({ cartId: created.id }, auth);
          }
        }),
      );
    }
    verdict();
  });

  it("injection-looking text: every text field of an address through CreateAddress and GetAddress, verbatim on every protocol", async () => {
    for (const protocol of protocols) {
      const book = createClient(AddressService, transports.get(protocol)!);
      await check(
        `address round trip over ${protocol}`,
        runs + 2,
        fc.asyncProperty(ownerArb, validTextArb, async (owner, text) => {
          const auth = bearer(roundTripTokens.get(owner)!);
          const fields = { label: text, recipientName: text, line1: text, line2: text, landmark: text, city: text, district: text, state: text };
          counts.cases++;
          const created = (await book.createAddress({ address: { kind: AddressKind.OTHER, countryCode: "DE", postalCode: "10115", ...fields } }, auth)).address!;
          try {
            const read = (await book.getAddress({ addressId: created.id }, auth)).address!;
            for (const [key, value] of Object.entries(fields)) {
              assert.equal(created[key as keyof typeof fields], value, `CreateAddress answer, ${key}`);
              assert.equal(read[key as keyof typeof fields], value, `GetAddress answer, ${key}`);
            }
          } finally {
            await book.deleteAddress({ addressId: created.id }, auth);
          }
        }),
      );
    }
    verdict();
  });

  it("injection-looking text: a display name through UpdateMe and GetMe, verbatim on every protocol", async () => {
    for (const protocol of protocols) {
      const users = createClient(UserService, transports.get(protocol)!);
      await check(
        `display name round trip over ${protocol}`,
        runs + 2,
        fc.asyncProperty(fc.constantFrom<CallerName>("customer", "shop_owner", "admin"), validTextArb, async (who, displayName) => {
          const auth = bearer(callers.get(who)!.token);
          counts.cases++;
          const updated = (await users.updateMe({ user: { displayName }, updateMask: { paths: ["display_name"] } }, auth)).user!;
          assert.equal(updated.displayName, displayName, "UpdateMe answer");
          assert.equal((await users.getMe({}, auth)).user?.displayName, displayName, "GetMe answer");
        }),
      );
    }
    verdict();
  });

  // ---- Bugs this suite found, fixed: their focused reproductions stay as regression tests ----

  it("Health.Check for a 70,000-character service name answers NOT_FOUND over gRPC (the name is not echoed into the trailer)", async () => {
    const health = createClient(Health, transports.get("grpc")!);
    let status: Status = 0;
    try {
      await health.check({ service: "x".repeat(70_000) });
    } catch (e) {
      status = ConnectError.from(e).code;
    }
    assert.equal(statusName(status), "NotFound");
  });

  it("a gRPC-web client still gets answers after a message above the size limit (its connection is not reused over the unread body)", async () => {
    const health = createClient(Health, transportFor(tp.url, "grpc-web"));
    await assert.rejects(health.check({ service: "x".repeat(1_100_000) }), (e) => ConnectError.from(e).code === Code.ResourceExhausted);
    // The next call goes out on the same kept-alive connection.
    assert.equal((await health.check({ service: "" }, { timeoutMs: 3000 })).status, 1);
  });

});
