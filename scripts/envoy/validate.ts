/**
 * Checks an Envoy bootstrap (envoy.yaml) the way Envoy checks it at load time, short of running Envoy:
 *
 * 1. Strict parsing into `envoy.config.bootstrap.v3.Bootstrap`: every key must be a field of its message, every
 *    `@type` a message of Envoy's API, every enum value defined, every scalar of its type, every Duration and
 *    wrapper in proto3 JSON form. A walk over the YAML names the spot of each problem; `fromJson` with the
 *    registry then parses the whole (it resolves each `typed_config`).
 * 2. The protoc-gen-validate rules (`validate.rules`, `validate.required` on oneofs) that Envoy evaluates on
 *    every message, including those inside `typed_config`, for the rule kinds Envoy's API uses; and no
 *    deprecated field set.
 * 3. Cross-references Envoy resolves at load time and the schema cannot express (see crossCheck).
 *
 * Every problem is reported as `<path>: <what>`, the path in the YAML's own terms
 * (`static_resources.clusters[1].connect_timeout`).
 */
import { create, fromJson, getOption, hasOption, toJson, type DescEnum, type DescExtension, type DescField, type DescMessage, type FileRegistry, type JsonValue, type Message } from "@bufbuild/protobuf";
import { anyUnpack, type Any, type Duration } from "@bufbuild/protobuf/wkt";
import { isReflectList, isReflectMap, isReflectMessage, reflect, type ReflectMessage } from "@bufbuild/protobuf/reflect";
import { parse } from "yaml";
import type { EnvoyApi } from "./descriptors.js";

const bootstrapType = "envoy.config.bootstrap.v3.Bootstrap";
const typeUrlPrefix = "type.googleapis.com/";

export interface EnvoyCheckResult {
  /** `<path>: <problem>` for every problem found; empty when the config would load. */
  readonly errors: string[];
  /** The parsed bootstrap, when parsing succeeded (rules and cross-references may still have failed). */
  readonly bootstrap?: Message;
  /** The bootstrap as proto3 JSON with proto field names (anchors and aliases resolved), when parsed. */
  readonly json?: Record<string, unknown>;
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

const join = (path: string, key: string) => (path ? `${path}.${key}` : key);

// ---- 1. strict shape ------------------------------------------------------------------------------------------

/** Well-known types whose JSON form is not an object of their fields. */
const specialJson = new Set([
  "google.protobuf.Duration",
  "google.protobuf.Timestamp",
  "google.protobuf.FieldMask",
  "google.protobuf.Struct",
  "google.protobuf.Value",
  "google.protobuf.ListValue",
  "google.protobuf.Empty",
  "google.protobuf.DoubleValue",
  "google.protobuf.FloatValue",
  "google.protobuf.Int64Value",
  "google.protobuf.UInt64Value",
  "google.protobuf.Int32Value",
  "google.protobuf.UInt32Value",
  "google.protobuf.BoolValue",
  "google.protobuf.StringValue",
  "google.protobuf.BytesValue",
]);

const int32Range: Record<string, [number, number]> = {
  int32: [-2147483648, 2147483647],
  sint32: [-2147483648, 2147483647],
  sfixed32: [-2147483648, 2147483647],
  uint32: [0, 4294967295],
  fixed32: [0, 4294967295],
};

/** The scalar type name of a field (`uint32`, `string`…), from its descriptor. */
function scalarName(field: { scalar?: number }): string {
  const names: Record<number, string> = {
    1: "double",
    2: "float",
    3: "int64",
    4: "uint64",
    5: "int32",
    6: "fixed64",
    7: "fixed32",
    8: "bool",
    9: "string",
    12: "bytes",
    13: "uint32",
    15: "sfixed32",
    16: "sfixed64",
    17: "sint32",
    18: "sint64",
  };
  return names[field.scalar ?? 0] ?? "unknown";
}

function checkScalar(type: string, value: unknown, path: string, errors: string[]): void {
  const bad = (want: string) => errors.push(`${path}: expected ${want}, got ${JSON.stringify(value)}`);
  switch (type) {
    case "string":
      if (typeof value !== "string") bad("a string");
      return;
    case "bool":
      if (typeof value !== "boolean") bad("true or false");
      return;
    case "bytes":
      if (typeof value !== "string" || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(value)) bad("base64 bytes");
      return;
    case "double":
    case "float":
      if (typeof value === "number" || (typeof value === "string" && (/^(NaN|-?Infinity)$/.test(value) || (value.trim() !== "" && Number.isFinite(Number(value)))))) return;
      bad("a number");
      return;
    default: {
      const text = typeof value === "number" ? String(value) : typeof value === "string" ? value : undefined;
      if (text === undefined || !/^-?\d+$/.test(text)) {
        bad(`an integer (${type})`);
        return;
      }
      const n = BigInt(text);
      const range = int32Range[type];
      const unsigned = type.startsWith("uint") || type.startsWith("fixed");
      if (range && (n < BigInt(range[0]) || n > BigInt(range[1]))) bad(`a ${type} in [${range[0]}, ${range[1]}]`);
      else if (!range && unsigned && n < 0n) bad(`a non-negative ${type}`);
    }
  }
}

function checkEnum(desc: DescEnum, value: unknown, path: string, errors: string[]): void {
  if (desc.typeName === "google.protobuf.NullValue" && value === null) return;
  if (typeof value === "number" && Number.isInteger(value) && desc.values.some((v) => v.number === value)) return;
  if (typeof value === "string" && desc.values.some((v) => v.name === value)) return;
  errors.push(`${path}: ${JSON.stringify(value)} is not a value of ${desc.typeName} (${desc.values.map((v) => v.name).join(", ")})`);
}

function checkMessageJson(desc: DescMessage, value: unknown, path: string, registry: FileRegistry, errors: string[]): void {
  if (desc.typeName === "google.protobuf.Any") {
    checkAnyJson(value, path, registry, errors);
    return;
  }
  if (specialJson.has(desc.typeName)) {
    try {
      fromJson(desc, value as JsonValue, { registry });
    } catch (e) {
      errors.push(`${path}: not a valid ${desc.typeName} (${JSON.stringify(value)}): ${(e as Error).message}`);
    }
    return;
  }
  if (!isObj(value)) {
    errors.push(`${path}: expected a ${desc.typeName} (a map), got ${JSON.stringify(value)}`);
    return;
  }
  const seenOneofs = new Map<string, string>();
  for (const [key, v] of Object.entries(value)) {
    const field = desc.fields.find((f) => f.name === key || f.jsonName === key);
    const at = join(path, key);
    if (!field) {
      errors.push(`${at}: unknown field of ${desc.typeName}`);
      continue;
    }
    if (v === null && field.message?.typeName !== "google.protobuf.Value") continue;
    if (field.oneof) {
      const other = seenOneofs.get(field.oneof.name);
      if (other !== undefined) errors.push(`${at}: ${field.oneof.name} is a oneof and ${other} is already set`);
      seenOneofs.set(field.oneof.name, key);
    }
    checkFieldJson(field, v, at, registry, errors);
  }
}

function checkFieldJson(field: DescField, v: unknown, at: string, registry: FileRegistry, errors: string[]): void {
  const one = (item: unknown, where: string) => {
    if (field.message) checkMessageJson(field.message, item, where, registry, errors);
    else if (field.enum) checkEnum(field.enum, item, where, errors);
    else checkScalar(scalarName(field), item, where, errors);
  };
  if (field.fieldKind === "list") {
    if (!Array.isArray(v)) errors.push(`${at}: expected a list, got ${JSON.stringify(v)}`);
    else v.forEach((item, i) => one(item, `${at}[${i}]`));
  } else if (field.fieldKind === "map") {
    if (!isObj(v)) errors.push(`${at}: expected a map, got ${JSON.stringify(v)}`);
    else for (const [k, item] of Object.entries(v)) one(item, `${at}.${k}`);
  } else {
    one(v, at);
  }
}

function checkAnyJson(value: unknown, path: string, registry: FileRegistry, errors: string[]): void {
  if (!isObj(value)) {
    errors.push(`${path}: expected a map with "@type", got ${JSON.stringify(value)}`);
    return;
  }
  const typeUrl = value["@type"];
  const at = `${path}["@type"]`;
  if (typeof typeUrl !== "string") {
    errors.push(`${at}: missing`);
    return;
  }
  if (!typeUrl.startsWith(typeUrlPrefix)) {
    errors.push(`${at}: ${typeUrl} does not start with ${typeUrlPrefix}`);
    return;
  }
  const desc = registry.getMessage(typeUrl.slice(typeUrlPrefix.length));
  if (!desc) {
    errors.push(`${at}: ${typeUrl} is not a message of Envoy's API`);
    return;
  }
  const { ["@type"]: _type, ...rest } = value;
  if (specialJson.has(desc.typeName) || desc.typeName === "google.protobuf.Any") checkMessageJson(desc, rest["value"], join(path, "value"), registry, errors);
  else checkMessageJson(desc, rest, path, registry, errors);
}

// ---- 2. protoc-gen-validate rules ----------------------------------------------------------------------------

interface RuleExtensions {
  field: DescExtension;
  oneofRequired?: DescExtension;
  messageDisabled?: DescExtension;
  messageIgnored?: DescExtension;
  fieldRules: DescMessage;
}

function ruleExtensions(registry: FileRegistry): RuleExtensions {
  const field = registry.getExtension("validate.rules");
  const fieldRules = registry.getMessage("validate.FieldRules");
  if (!field || !fieldRules) throw new Error("validate.proto is not in the descriptor set");
  return {
    field,
    fieldRules,
    oneofRequired: registry.getExtension("validate.required"),
    messageDisabled: registry.getExtension("validate.disabled"),
    messageIgnored: registry.getExtension("validate.ignored"),
  };
}

/** Nanoseconds of a Duration, or of a rule's Duration in proto3 JSON ("1.5s"). */
function durationNanos(d: Duration | string): bigint {
  if (typeof d === "string") {
    const m = /^(-)?(\d+)(?:\.(\d{1,9}))?s$/.exec(d);
    if (!m) throw new Error(`bad duration ${d}`);
    const n = BigInt(m[2] ?? "0") * 1_000_000_000n + BigInt((m[3] ?? "").padEnd(9, "0"));
    return m[1] ? -n : n;
  }
  return BigInt(d.seconds) * 1_000_000_000n + BigInt(d.nanos);
}

const showDuration = (n: bigint) => `${Number(n) / 1e9}s`;

/** `lt`/`lte`/`gt`/`gte`/`const`/`in`/`not_in` over comparable values (numbers as bigint or number). */
function checkRange(rules: Obj, value: number | bigint, toValue: (r: unknown) => number | bigint, show: (v: number | bigint) => string): string[] {
  const out: string[] = [];
  const get = (k: string) => (rules[k] === undefined ? undefined : toValue(rules[k]));
  const [lt, lte, gt, gte, eq] = [get("lt"), get("lte"), get("gt"), get("gte"), get("const")];
  if (eq !== undefined && value !== eq) out.push(`must equal ${show(eq)}`);
  // protoc-gen-validate: gt > lt (or gte > lte) means "outside the range".
  const lower = gt !== undefined ? value > gt : gte !== undefined ? value >= gte : true;
  const upper = lt !== undefined ? value < lt : lte !== undefined ? value <= lte : true;
  const lowerBound = gt ?? gte;
  const upperBound = lt ?? lte;
  const exclusive = lowerBound !== undefined && upperBound !== undefined && lowerBound > upperBound;
  const ok = exclusive ? lower || upper : lower && upper;
  if (!ok) {
    const parts = [gt !== undefined ? `> ${show(gt)}` : gte !== undefined ? `>= ${show(gte)}` : "", lt !== undefined ? `< ${show(lt)}` : lte !== undefined ? `<= ${show(lte)}` : ""].filter(Boolean);
    out.push(`must be ${parts.join(exclusive ? " or " : " and ")}, got ${show(value)}`);
  }
  const inList = Array.isArray(rules["in"]) ? (rules["in"] as unknown[]).map(toValue) : [];
  if (inList.length > 0 && !inList.includes(value)) out.push(`must be one of ${inList.map(show).join(", ")}`);
  const notIn = Array.isArray(rules["not_in"]) ? (rules["not_in"] as unknown[]).map(toValue) : [];
  if (notIn.includes(value)) out.push(`must not be ${show(value)}`);
  return out;
}

const headerName = /^:?[0-9a-zA-Z!#$%&'*+\-.^_|~`]+$/;
// eslint-disable-next-line no-control-regex
const headerValueStrict = /^[^\u0000-\u0008\u000A-\u001F\u007F]*$/;
// eslint-disable-next-line no-control-regex
const headerValueLoose = /^[^\u0000\u000A\u000D]*$/;
const hostnameRe = /^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;
const ipv4Re = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const isIpv6 = (s: string) => /^[0-9A-Fa-f:.]+$/.test(s) && s.includes(":") && s.split("::").length <= 2;

function checkString(rules: Obj, value: string): string[] {
  if (rules["ignore_empty"] === true && value === "") return [];
  const out: string[] = [];
  const len = [...value].length;
  const bytes = Buffer.byteLength(value, "utf8");
  const num = (k: string) => (rules[k] === undefined ? undefined : Number(rules[k]));
  const [minLen, maxLen, exactLen, minBytes, maxBytes] = [num("min_len"), num("max_len"), num("len"), num("min_bytes"), num("max_bytes")];
  if (minLen !== undefined && len < minLen) out.push(`must be at least ${minLen} characters, got ${len}`);
  if (maxLen !== undefined && len > maxLen) out.push(`must be at most ${maxLen} characters, got ${len}`);
  if (exactLen !== undefined && len !== exactLen) out.push(`must be exactly ${exactLen} characters`);
  if (minBytes !== undefined && bytes < minBytes) out.push(`must be at least ${minBytes} bytes`);
  if (maxBytes !== undefined && bytes > maxBytes) out.push(`must be at most ${maxBytes} bytes`);
  if (typeof rules["const"] === "string" && value !== rules["const"]) out.push(`must equal ${JSON.stringify(rules["const"])}`);
  if (typeof rules["prefix"] === "string" && !value.startsWith(rules["prefix"])) out.push(`must start with ${JSON.stringify(rules["prefix"])}`);
  if (typeof rules["suffix"] === "string" && !value.endsWith(rules["suffix"])) out.push(`must end with ${JSON.stringify(rules["suffix"])}`);
  if (typeof rules["contains"] === "string" && !value.includes(rules["contains"])) out.push(`must contain ${JSON.stringify(rules["contains"])}`);
  if (typeof rules["not_contains"] === "string" && value.includes(rules["not_contains"])) out.push(`must not contain ${JSON.stringify(rules["not_contains"])}`);
  if (Array.isArray(rules["in"]) && rules["in"].length > 0 && !rules["in"].includes(value)) out.push(`must be one of ${rules["in"].join(", ")}`);
  if (Array.isArray(rules["not_in"]) && rules["not_in"].includes(value)) out.push(`must not be ${JSON.stringify(value)}`);
  if (typeof rules["pattern"] === "string") {
    let re: RegExp | undefined;
    try {
      re = new RegExp(rules["pattern"], "u");
    } catch {
      re = undefined; // an RE2 construct JavaScript lacks; Envoy's API uses none on fields we set
    }
    if (re && !re.test(value)) out.push(`must match ${rules["pattern"]}`);
  }
  const known = rules["well_known_regex"];
  // strict: false relaxes both header regexes to "no NUL, CR or LF" (which admits "").
  if (known === "HTTP_HEADER_NAME" && !(rules["strict"] === false ? headerValueLoose : headerName).test(value)) out.push("must be an HTTP header name");
  if (known === "HTTP_HEADER_VALUE" && !(rules["strict"] === false ? headerValueLoose : headerValueStrict).test(value)) out.push("must be an HTTP header value");
  if (rules["hostname"] === true && !hostnameRe.test(value)) out.push("must be a hostname");
  if (rules["ipv4"] === true && !ipv4Re.test(value)) out.push("must be an IPv4 address");
  if (rules["ipv6"] === true && !isIpv6(value)) out.push("must be an IPv6 address");
  if (rules["ip"] === true && !ipv4Re.test(value) && !isIpv6(value)) out.push("must be an IP address");
  if (rules["address"] === true && !hostnameRe.test(value) && !ipv4Re.test(value) && !isIpv6(value)) out.push("must be a hostname or an IP address");
  if (rules["uri"] === true && !URL.canParse(value)) out.push("must be an absolute URI");
  return out;
}

const numericRuleKinds = ["float", "double", "int32", "int64", "uint32", "uint64", "sint32", "sint64", "fixed32", "fixed64", "sfixed32", "sfixed64"];

/** The problems one value has under one FieldRules (as proto3 JSON with proto names). */
function checkValue(rules: Obj, value: unknown, field: DescField, ctx: Walk, path: string): void {
  const report = (problems: string[]) => {
    for (const p of problems) ctx.errors.push(`${path}: ${p} (validate.rules)`);
  };
  for (const kind of numericRuleKinds) {
    const r = rules[kind];
    if (!isObj(r)) continue;
    const n = typeof value === "bigint" ? value : typeof value === "number" ? value : Number(value);
    if (r["ignore_empty"] === true && (n === 0 || n === 0n)) continue;
    const big = typeof n === "bigint";
    report(checkRange(r, n, (x) => (big ? BigInt(String(x)) : Number(x)), String));
  }
  if (isObj(rules["bool"]) && typeof rules["bool"]["const"] === "boolean" && value !== rules["bool"]["const"]) report([`must be ${String(rules["bool"]["const"])}`]);
  if (isObj(rules["string"]) && typeof value === "string") report(checkString(rules["string"], value));
  if (isObj(rules["bytes"]) && value instanceof Uint8Array) {
    const b = rules["bytes"];
    if (b["min_len"] !== undefined && value.length < Number(b["min_len"])) report([`must be at least ${String(b["min_len"])} bytes`]);
    if (b["max_len"] !== undefined && value.length > Number(b["max_len"])) report([`must be at most ${String(b["max_len"])} bytes`]);
  }
  if (isObj(rules["enum"]) && typeof value === "number" && field.enum) {
    const e = rules["enum"];
    const enumDesc = field.enum;
    const toNum = (x: unknown) => (typeof x === "number" ? x : (enumDesc.values.find((v) => v.name === x)?.number ?? Number.NaN));
    if (e["defined_only"] === true && !enumDesc.values.some((v) => v.number === value)) report([`${value} is not a defined ${enumDesc.typeName}`]);
    report(checkRange(e, value, toNum, (v) => enumDesc.values.find((x) => x.number === v)?.name ?? String(v)));
  }
}

interface Walk {
  registry: FileRegistry;
  ext: RuleExtensions;
  errors: string[];
  /** Visitor for cross-checks that need typed messages (format strings). */
  visit?: (message: ReflectMessage, path: string) => void;
}

function fieldRules(field: DescField, ctx: Walk): Obj | undefined {
  if (!hasOption(field, ctx.ext.field)) return undefined;
  const rules = getOption(field, ctx.ext.field) as Message;
  return toJson(ctx.ext.fieldRules, rules, { useProtoFieldName: true }) as Obj;
}

const wrapperTypes = new Set(["google.protobuf.DoubleValue", "google.protobuf.FloatValue", "google.protobuf.Int64Value", "google.protobuf.UInt64Value", "google.protobuf.Int32Value", "google.protobuf.UInt32Value", "google.protobuf.BoolValue", "google.protobuf.StringValue", "google.protobuf.BytesValue"]);

function checkMessageValue(rules: Obj | undefined, msg: ReflectMessage, field: DescField, ctx: Walk, path: string): void {
  const typeName = msg.desc.typeName;
  if (rules && wrapperTypes.has(typeName)) {
    const valueField = msg.desc.fields[0];
    if (valueField) checkValue(rules, msg.get(valueField), field, ctx, path);
  }
  if (rules && typeName === "google.protobuf.Duration" && isObj(rules["duration"])) {
    const d = rules["duration"];
    const n = durationNanos(msg.message as Duration);
    for (const p of checkRange(d, n, (x) => durationNanos(String(x)), (v) => showDuration(BigInt(v)))) ctx.errors.push(`${path}: ${p} (validate.rules)`);
  }
  if (rules && typeName === "google.protobuf.Any" && isObj(rules["any"])) {
    const typeUrl = (msg.message as Any).typeUrl;
    const a = rules["any"];
    if (Array.isArray(a["in"]) && a["in"].length > 0 && !a["in"].includes(typeUrl)) ctx.errors.push(`${path}: @type must be one of ${a["in"].join(", ")} (validate.rules)`);
  }
  if (isObj(rules?.["message"]) && rules["message"]["skip"] === true) return;
  walkMessage(msg, ctx, path);
}

/** Evaluates the rules of every field of a message, recursing into set messages and unpacked Anys. */
function walkMessage(msg: ReflectMessage, ctx: Walk, path: string): void {
  const desc = msg.desc;
  if (ctx.ext.messageDisabled && hasOption(desc, ctx.ext.messageDisabled) && getOption(desc, ctx.ext.messageDisabled) === true) return;
  if (ctx.ext.messageIgnored && hasOption(desc, ctx.ext.messageIgnored) && getOption(desc, ctx.ext.messageIgnored) === true) return;
  ctx.visit?.(msg, path);
  if (desc.typeName === "google.protobuf.Any") {
    const any = msg.message as Any;
    const inner = anyUnpack(any, ctx.registry);
    const innerDesc = ctx.registry.getMessage(any.typeUrl.slice(typeUrlPrefix.length));
    if (inner && innerDesc) walkMessage(reflect(innerDesc, inner), ctx, path);
    return;
  }
  for (const oneof of desc.oneofs) {
    if (ctx.ext.oneofRequired && hasOption(oneof, ctx.ext.oneofRequired) && getOption(oneof, ctx.ext.oneofRequired) === true) {
      if (!oneof.fields.some((f) => msg.isSet(f))) ctx.errors.push(`${path || "(root)"}: one of ${oneof.fields.map((f) => f.name).join(", ")} is required (validate.required)`);
    }
  }
  for (const field of desc.fields) {
    const at = join(path, field.name);
    const rules = fieldRules(field, ctx);
    const set = msg.isSet(field);
    // Envoy warns about deprecated fields and refuses them once they are removed: none in this config.
    if (set && field.deprecated) ctx.errors.push(`${at}: ${desc.typeName}.${field.name} is deprecated`);
    // Rules on a oneof member apply only when it is the member set; a message field's only when it is set,
    // except `required`.
    if (!set && field.oneof !== undefined) continue;
    if (!set && field.fieldKind === "message") {
      if (isObj(rules?.["message"]) && rules["message"]["required"] === true) ctx.errors.push(`${at}: is required (validate.rules)`);
      else if (field.fieldKind === "message" && rules && ["duration", "timestamp", "any"].some((k) => isObj(rules[k]) && rules[k]["required"] === true)) {
        ctx.errors.push(`${at}: is required (validate.rules)`);
      }
      continue;
    }
    if (field.fieldKind === "list") {
      const list = msg.get(field);
      if (!isReflectList(list)) continue;
      const r = isObj(rules?.["repeated"]) ? rules["repeated"] : undefined;
      if (r && !(r["ignore_empty"] === true && list.size === 0)) {
        if (r["min_items"] !== undefined && list.size < Number(r["min_items"])) ctx.errors.push(`${at}: needs at least ${String(r["min_items"])} items, has ${list.size} (validate.rules)`);
        if (r["max_items"] !== undefined && list.size > Number(r["max_items"])) ctx.errors.push(`${at}: takes at most ${String(r["max_items"])} items, has ${list.size} (validate.rules)`);
        if (r["unique"] === true) {
          const seen = new Set<string>();
          for (const item of list) {
            const key = String(item);
            if (seen.has(key)) ctx.errors.push(`${at}: items must be unique, ${key} repeats (validate.rules)`);
            seen.add(key);
          }
        }
      }
      const items = isObj(r?.["items"]) ? (r["items"] as Obj) : undefined;
      let i = 0;
      for (const item of list) {
        const where = `${at}[${i++}]`;
        if (isReflectMessage(item)) checkMessageValue(items, item, field, ctx, where);
        else if (items) checkValue(items, item, field, ctx, where);
      }
      continue;
    }
    if (field.fieldKind === "map") {
      const map = msg.get(field);
      if (!isReflectMap(map)) continue;
      const r = isObj(rules?.["map"]) ? rules["map"] : undefined;
      if (r && !(r["ignore_empty"] === true && map.size === 0)) {
        if (r["min_pairs"] !== undefined && map.size < Number(r["min_pairs"])) ctx.errors.push(`${at}: needs at least ${String(r["min_pairs"])} entries (validate.rules)`);
        if (r["max_pairs"] !== undefined && map.size > Number(r["max_pairs"])) ctx.errors.push(`${at}: takes at most ${String(r["max_pairs"])} entries (validate.rules)`);
      }
      const keys = isObj(r?.["keys"]) ? (r["keys"] as Obj) : undefined;
      const values = isObj(r?.["values"]) ? (r["values"] as Obj) : undefined;
      for (const [k, v] of map) {
        const where = `${at}.${String(k)}`;
        if (keys) checkValue(keys, k, field, ctx, `${where} (key)`);
        if (isReflectMessage(v)) checkMessageValue(values, v, field, ctx, where);
        else if (values) checkValue(values, v, field, ctx, where);
      }
      continue;
    }
    const value = msg.get(field);
    if (isReflectMessage(value)) checkMessageValue(rules, value, field, ctx, at);
    else if (rules) checkValue(rules, value, field, ctx, at);
  }
}

// ---- 3. cross-references --------------------------------------------------------------------------------------

/** Envoy's built-in access-log / local-reply format commands (substitution formatter), Envoy 1.32. */
export const formatCommands = new Set(
  `START_TIME START_TIME_LOCAL EMIT_TIME EMIT_TIME_LOCAL REQUEST_HEADERS_BYTES BYTES_RECEIVED BYTES_RETRANSMITTED
  PACKETS_RETRANSMITTED UPSTREAM_WIRE_BYTES_RECEIVED UPSTREAM_HEADER_BYTES_RECEIVED DOWNSTREAM_WIRE_BYTES_RECEIVED
  DOWNSTREAM_HEADER_BYTES_RECEIVED PROTOCOL UPSTREAM_PROTOCOL RESPONSE_CODE RESPONSE_CODE_DETAILS
  CONNECTION_TERMINATION_DETAILS RESPONSE_HEADERS_BYTES RESPONSE_TRAILERS_BYTES BYTES_SENT UPSTREAM_WIRE_BYTES_SENT
  UPSTREAM_HEADER_BYTES_SENT DOWNSTREAM_WIRE_BYTES_SENT DOWNSTREAM_HEADER_BYTES_SENT DURATION REQUEST_DURATION
  REQUEST_TX_DURATION RESPONSE_DURATION RESPONSE_TX_DURATION DOWNSTREAM_HANDSHAKE_DURATION ROUNDTRIP_DURATION
  UPSTREAM_CONNECTION_POOL_READY_DURATION COMMON_DURATION RESPONSE_FLAGS RESPONSE_FLAGS_LONG UPSTREAM_HOST
  UPSTREAM_HOST_NAME UPSTREAM_HOST_NAME_WITHOUT_PORT UPSTREAM_CLUSTER UPSTREAM_CLUSTER_RAW UPSTREAM_LOCAL_ADDRESS
  UPSTREAM_LOCAL_ADDRESS_WITHOUT_PORT UPSTREAM_LOCAL_PORT UPSTREAM_REMOTE_ADDRESS UPSTREAM_REMOTE_ADDRESS_WITHOUT_PORT
  UPSTREAM_REMOTE_PORT UPSTREAM_REQUEST_ATTEMPT_COUNT UPSTREAM_TRANSPORT_FAILURE_REASON UPSTREAM_TLS_CIPHER
  UPSTREAM_TLS_VERSION UPSTREAM_TLS_SESSION_ID UPSTREAM_PEER_ISSUER UPSTREAM_PEER_CERT UPSTREAM_PEER_SUBJECT
  UPSTREAM_PEER_URI_SAN UPSTREAM_LOCAL_URI_SAN UPSTREAM_LOCAL_SUBJECT UPSTREAM_PEER_CERT_V_START UPSTREAM_PEER_CERT_V_END
  UPSTREAM_FILTER_STATE UPSTREAM_METADATA UPSTREAM_CONNECTION_ID DOWNSTREAM_REMOTE_ADDRESS
  DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT DOWNSTREAM_REMOTE_PORT DOWNSTREAM_DIRECT_REMOTE_ADDRESS
  DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT DOWNSTREAM_DIRECT_REMOTE_PORT DOWNSTREAM_LOCAL_ADDRESS
  DOWNSTREAM_LOCAL_ADDRESS_WITHOUT_PORT DOWNSTREAM_LOCAL_PORT DOWNSTREAM_DIRECT_LOCAL_ADDRESS
  DOWNSTREAM_DIRECT_LOCAL_ADDRESS_WITHOUT_PORT DOWNSTREAM_DIRECT_LOCAL_PORT DOWNSTREAM_LOCAL_URI_SAN
  DOWNSTREAM_PEER_URI_SAN DOWNSTREAM_LOCAL_DNS_SAN DOWNSTREAM_PEER_DNS_SAN DOWNSTREAM_LOCAL_IP_SAN DOWNSTREAM_PEER_IP_SAN
  DOWNSTREAM_LOCAL_SUBJECT DOWNSTREAM_PEER_SUBJECT DOWNSTREAM_PEER_ISSUER DOWNSTREAM_TLS_SESSION_ID DOWNSTREAM_TLS_CIPHER
  DOWNSTREAM_TLS_VERSION DOWNSTREAM_PEER_FINGERPRINT_256 DOWNSTREAM_PEER_FINGERPRINT_1 DOWNSTREAM_PEER_SERIAL
  DOWNSTREAM_PEER_CERT DOWNSTREAM_PEER_CERT_V_START DOWNSTREAM_PEER_CERT_V_END DOWNSTREAM_TRANSPORT_FAILURE_REASON
  CONNECTION_ID REQUESTED_SERVER_NAME ROUTE_NAME VIRTUAL_CLUSTER_NAME REQ RESP TRAILER DYNAMIC_METADATA
  CLUSTER_METADATA FILTER_STATE GRPC_STATUS GRPC_STATUS_NUMBER HOSTNAME LOCAL_REPLY_BODY FILTER_CHAIN_NAME
  ACCESS_LOG_TYPE STREAM_ID UNIQUE_ID ENVIRONMENT CUSTOM_FLAGS TRACE_ID UPSTREAM_DETECTED_CLOSE_TYPE
  DOWNSTREAM_DETECTED_CLOSE_TYPE`.split(/\s+/).filter(Boolean),
);

/** The commands used in a format string: `%NAME%`, `%NAME(arg)%`, `%NAME(arg):len%`; `%%` is a literal. */
export function formatCommandsIn(format: string): string[] {
  const out: string[] = [];
  const re = /%%|%([A-Z0-9_]+)(\([^)]*\))?(:\d+)?%/g;
  let last = 0;
  for (const m of format.matchAll(re)) {
    if (m[0] !== "%%") out.push(m[1] ?? "");
    last = (m.index ?? 0) + m[0].length;
  }
  // A lone % left over is an unterminated command, which Envoy rejects.
  const rest = format.replace(re, "");
  if (rest.includes("%")) out.push(`unterminated command in ${JSON.stringify(format.slice(last))}`);
  return out;
}

function at(obj: unknown, ...keys: (string | number)[]): unknown {
  let v: unknown = obj;
  for (const k of keys) {
    if (typeof k === "number") v = Array.isArray(v) ? v[k] : undefined;
    else v = isObj(v) ? v[k] : undefined;
  }
  return v;
}
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
const objs = (v: unknown): Obj[] => arr(v).filter(isObj);

/** Every HttpConnectionManager in the static listeners, with its path. */
export function connectionManagers(json: Obj): { path: string; hcm: Obj }[] {
  const out: { path: string; hcm: Obj }[] = [];
  objs(at(json, "static_resources", "listeners")).forEach((listener, li) => {
    objs(listener["filter_chains"]).forEach((chain, ci) => {
      objs(chain["filters"]).forEach((filter, fi) => {
        const config = filter["typed_config"];
        if (isObj(config) && String(config["@type"]).endsWith(".HttpConnectionManager")) {
          out.push({ path: `static_resources.listeners[${li}].filter_chains[${ci}].filters[${fi}].typed_config`, hcm: config });
        }
      });
    });
  });
  return out;
}

const routerType = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";
const jwtType = "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication";
const localRateLimitType = "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit";

function checkRequirement(req: unknown, providers: Obj, requirementMap: Obj, path: string, errors: string[]): void {
  if (!isObj(req)) return;
  const provider = req["provider_name"] ?? at(req, "provider_and_audiences", "provider_name");
  if (typeof provider === "string" && providers[provider] === undefined) errors.push(`${path}: requires provider "${provider}", which is not in providers (${Object.keys(providers).join(", ")})`);
  for (const key of ["requires_any", "requires_all"]) {
    objs(at(req, key, "requirements")).forEach((r, i) => checkRequirement(r, providers, requirementMap, `${path}.${key}.requirements[${i}]`, errors));
  }
}

/** Nanoseconds of a proto3 JSON duration, or undefined. */
function nanosOf(v: unknown): bigint | undefined {
  try {
    return typeof v === "string" ? durationNanos(v) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Checks Envoy makes at load time that the schema cannot: cluster and listener names unique; every route,
 * JWKS fetch and health-checked cluster reference names a static cluster; every jwt_authn `requires` names a
 * provider and every `requirement_name` a requirement; each HCM's router is its last HTTP filter (and the only
 * terminal one); per-route filter configs name a filter of the chain; local rate-limit descriptor buckets refill
 * at a multiple of their route's bucket; gRPC health checks only on HTTP/2 clusters.
 */
export function crossCheck(json: Obj): string[] {
  const errors: string[] = [];
  const clusters = objs(at(json, "static_resources", "clusters"));
  const clusterNames = new Map<string, number>();
  clusters.forEach((c, i) => {
    const name = String(c["name"]);
    if (clusterNames.has(name)) errors.push(`static_resources.clusters[${i}].name: cluster "${name}" is also static_resources.clusters[${clusterNames.get(name)}]`);
    else clusterNames.set(name, i);
    const http2 = at(c, "typed_extension_protocol_options", "envoy.extensions.upstreams.http.v3.HttpProtocolOptions", "explicit_http_config", "http2_protocol_options") !== undefined;
    objs(c["health_checks"]).forEach((hc, h) => {
      if (hc["grpc_health_check"] !== undefined && !http2) errors.push(`static_resources.clusters[${i}].health_checks[${h}].grpc_health_check: cluster "${name}" does not speak HTTP/2 upstream`);
    });
  });
  const clusterExists = (name: unknown, path: string) => {
    if (typeof name === "string" && !clusterNames.has(name)) errors.push(`${path}: cluster "${name}" does not exist (clusters: ${[...clusterNames.keys()].join(", ")})`);
  };
  const listenerNames = new Map<string, number>();
  objs(at(json, "static_resources", "listeners")).forEach((l, i) => {
    const name = String(l["name"]);
    if (listenerNames.has(name)) errors.push(`static_resources.listeners[${i}].name: listener "${name}" is also static_resources.listeners[${listenerNames.get(name)}]`);
    else listenerNames.set(name, i);
  });

  for (const { path, hcm } of connectionManagers(json)) {
    const filters = objs(hcm["http_filters"]);
    const filterNames = new Set(filters.map((f) => String(f["name"])));
    filters.forEach((f, i) => {
      const type = at(f, "typed_config", "@type");
      const last = i === filters.length - 1;
      if (type === routerType && !last) errors.push(`${path}.http_filters[${i}]: the router (${String(f["name"])}) must be the last HTTP filter`);
      if (last && type !== routerType) errors.push(`${path}.http_filters[${i}]: the last HTTP filter must be the router, not ${String(f["name"])}`);
    });
    const jwtFilter = filters.find((f) => at(f, "typed_config", "@type") === jwtType);
    const jwtIndex = jwtFilter ? filters.indexOf(jwtFilter) : -1;
    const jwt = isObj(jwtFilter?.["typed_config"]) ? jwtFilter["typed_config"] : undefined;
    const providers = isObj(jwt?.["providers"]) ? jwt["providers"] : {};
    const requirementMap = isObj(jwt?.["requirement_map"]) ? jwt["requirement_map"] : {};
    if (jwt) {
      const jwtPath = `${path}.http_filters[${jwtIndex}].typed_config`;
      for (const [name, provider] of Object.entries(providers)) {
        clusterExists(at(provider, "remote_jwks", "http_uri", "cluster"), `${jwtPath}.providers.${name}.remote_jwks.http_uri.cluster`);
      }
      objs(jwt["rules"]).forEach((rule, i) => {
        checkRequirement(rule["requires"], providers, requirementMap, `${jwtPath}.rules[${i}].requires`, errors);
        const rn = rule["requirement_name"];
        if (typeof rn === "string" && requirementMap[rn] === undefined) errors.push(`${jwtPath}.rules[${i}].requirement_name: "${rn}" is not in requirement_map`);
      });
      for (const [name, req] of Object.entries(requirementMap)) checkRequirement(req, providers, requirementMap, `${jwtPath}.requirement_map.${name}`, errors);
    }
    const checkPerFilter = (holder: Obj, where: string) => {
      const per = holder["typed_per_filter_config"];
      if (!isObj(per)) return;
      for (const [name, config] of Object.entries(per)) {
        if (!filterNames.has(name) && at(config, "is_optional") !== true) errors.push(`${where}.typed_per_filter_config.${name}: no HTTP filter of that name in ${path}.http_filters`);
        if (isObj(config) && config["@type"] === localRateLimitType) {
          const base = nanosOf(at(config, "token_bucket", "fill_interval"));
          objs(config["descriptors"]).forEach((d, i) => {
            const own = nanosOf(at(d, "token_bucket", "fill_interval"));
            if (base === undefined) errors.push(`${where}.typed_per_filter_config.${name}.token_bucket: descriptors need the route's token_bucket`);
            else if (own !== undefined && own % base !== 0n) {
              errors.push(`${where}.typed_per_filter_config.${name}.descriptors[${i}].token_bucket.fill_interval: not a multiple of the route's fill_interval`);
            }
          });
        }
        if (name === String(jwtFilter?.["name"]) && isObj(config)) {
          const rn = config["requirement_name"];
          if (typeof rn === "string" && requirementMap[rn] === undefined) errors.push(`${where}.typed_per_filter_config.${name}.requirement_name: "${rn}" is not in requirement_map`);
        }
      }
    };
    const routeConfig = isObj(hcm["route_config"]) ? hcm["route_config"] : {};
    objs(routeConfig["virtual_hosts"]).forEach((vh, v) => {
      const vhPath = `${path}.route_config.virtual_hosts[${v}]`;
      checkPerFilter(vh, vhPath);
      objs(vh["routes"]).forEach((route, r) => {
        const routePath = `${vhPath}.routes[${r}]`;
        checkPerFilter(route, routePath);
        const action = isObj(route["route"]) ? route["route"] : undefined;
        if (!action) return;
        clusterExists(action["cluster"], `${routePath}.route.cluster`);
        objs(at(action, "weighted_clusters", "clusters")).forEach((wc, w) => clusterExists(wc["name"], `${routePath}.route.weighted_clusters.clusters[${w}].name`));
        objs(action["request_mirror_policies"]).forEach((m, i) => clusterExists(m["cluster"], `${routePath}.route.request_mirror_policies[${i}].cluster`));
      });
    });
  }
  return errors;
}

// ---- putting it together -------------------------------------------------------------------------------------

/** Every SubstitutionFormatString's format commands must be ones Envoy knows. */
function formatVisitor(errors: string[]) {
  return (msg: ReflectMessage, path: string) => {
    if (msg.desc.typeName !== "envoy.config.core.v3.SubstitutionFormatString") return;
    const json = toJson(msg.desc, msg.message, { useProtoFieldName: true }) as Obj;
    const formats: [string, string][] = [];
    if (typeof json["text_format"] === "string") formats.push([`${path}.text_format`, json["text_format"]]);
    const inline = at(json, "text_format_source", "inline_string");
    if (typeof inline === "string") formats.push([`${path}.text_format_source.inline_string`, inline]);
    const walkJson = (v: unknown, where: string) => {
      if (typeof v === "string") formats.push([where, v]);
      else if (isObj(v)) for (const [k, x] of Object.entries(v)) walkJson(x, `${where}.${k}`);
    };
    walkJson(json["json_format"], `${path}.json_format`);
    for (const [where, format] of formats) {
      for (const command of formatCommandsIn(format)) {
        if (!formatCommands.has(command)) errors.push(`${where}: unknown format command %${command}%`);
      }
    }
  };
}

/** Parses and checks a bootstrap given as YAML text. Never throws for a bad config; reports it in errors. */
export function checkEnvoyYaml(text: string, api: EnvoyApi): EnvoyCheckResult {
  let doc: unknown;
  try {
    doc = parse(text, { merge: true, uniqueKeys: true, maxAliasCount: 1000 });
  } catch (e) {
    return { errors: [`(yaml): ${(e as Error).message}`] };
  }
  return checkEnvoyJson(doc, api);
}

/** As checkEnvoyYaml, for an already-parsed document. */
export function checkEnvoyJson(doc: unknown, api: EnvoyApi): EnvoyCheckResult {
  const { registry } = api;
  const desc = registry.getMessage(bootstrapType);
  if (!desc) throw new Error(`${bootstrapType} is not in the descriptor set`);
  const errors: string[] = [];
  // JSON round trip: YAML anchors become plain copies, so a problem is reported at each place it lands.
  const plain = JSON.parse(JSON.stringify(doc ?? null)) as unknown;
  checkMessageJson(desc, plain, "", registry, errors);
  if (errors.length > 0) return { errors };
  let bootstrap: Message;
  try {
    bootstrap = fromJson(desc, plain as JsonValue, { registry });
  } catch (e) {
    return { errors: [`(root): ${(e as Error).message}`] };
  }
  const ctx: Walk = { registry, ext: ruleExtensions(registry), errors, visit: formatVisitor(errors) };
  walkMessage(reflect(desc, bootstrap), ctx, "");
  const json = toJson(desc, bootstrap, { registry, useProtoFieldName: true }) as Obj;
  errors.push(...crossCheck(json));
  return { errors, bootstrap, json };
}

/** An empty bootstrap, for tests that want a known-good starting point. */
export function emptyBootstrap(api: EnvoyApi): Message {
  const desc = api.registry.getMessage(bootstrapType);
  if (!desc) throw new Error(`${bootstrapType} is not in the descriptor set`);
  return create(desc);
}
