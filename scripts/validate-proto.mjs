#!/usr/bin/env node
// Writes buf/validate/validate.proto into .cache/proto-deps/ (git-ignored), rendered back to .proto text from the
// FileDescriptorProto that @bufbuild/protovalidate embeds in its generated code.
//
// Why: our protos import "buf/validate/validate.proto" for their field rules, but no npm package ships that
// file as source, the BSR is out of reach, and third-party source is not committed here. The runtime package
// does carry the complete descriptor (every message, field, oneof, extension range and the predefined-rule
// options), so the schema we compile against is exactly the one the validator evaluates.
//
// Why text rather than a binary image: buf can use a directory as a workspace module (buf.yaml lists
// .cache/proto-deps, excluded from lint), so `buf generate`, `buf lint`, `buf format` and `buf breaking` keep
// working on proto/ as plain sources with no protoc and no image plumbing. The file is written only when its
// content changes, so reruns are cheap and deterministic. protoc-gen-es never generates it: buf.gen.yaml
// excludes the folder, and rewrite_imports points our generated files at the package's own validate_pb.js.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createRegistry, getExtension, isFieldSet, isMessage, ScalarType } from "@bufbuild/protobuf";
import { FieldDescriptorProto_Label, FieldDescriptorProto_Type, FieldDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { reflect } from "@bufbuild/protobuf/reflect";
import { file_buf_validate_validate as validateFile } from "@bufbuild/protovalidate/gen/buf/validate/validate_pb.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, ".cache/proto-deps", validateFile.proto.name);
// The package does not export its package.json; the version is read from the file beside the resolved entry.
const entry = fileURLToPath(import.meta.resolve("@bufbuild/protovalidate"));
const version = JSON.parse(readFileSync(join(entry.slice(0, entry.lastIndexOf("/dist/")), "package.json"), "utf8")).version;

// The registry resolves the extensions stored as unknown fields in the options (buf.validate.predefined).
const registry = createRegistry(validateFile, ...validateFile.dependencies);

/** A string literal in protobuf text format; escapes keep CEL expressions byte-exact. */
function quote(s) {
  return (
    '"' +
    [...Buffer.from(s, "utf8")]
      .map((b) => {
        if (b === 0x22) return '\\"';
        if (b === 0x5c) return "\\\\";
        if (b === 0x0a) return "\\n";
        if (b === 0x0d) return "\\r";
        if (b === 0x09) return "\\t";
        if (b < 0x20 || b >= 0x7f) return "\\" + b.toString(8).padStart(3, "0");
        return String.fromCharCode(b);
      })
      .join("") +
    '"'
  );
}

/** One scalar or enum value as text (a field of an option message, or an option itself). */
function scalarText(field, value) {
  if (field.fieldKind === "enum" || field.enum) return field.enum.values.find((v) => v.number === value)?.name ?? String(value);
  const t = field.scalar;
  if (t === ScalarType.STRING) return quote(value);
  if (t === ScalarType.BYTES) return quote(Buffer.from(value).toString("latin1"));
  return String(value);
}

/** A message value in protobuf text format: `{ a: 1 b: "x" c { … } }`, as used inside option aggregates. */
function messageText(message) {
  const r = reflect(message.$typeName ? registry.getMessage(message.$typeName) : undefined, message);
  const parts = [];
  for (const field of r.fields) {
    if (!r.isSet(field)) continue;
    const value = r.get(field);
    if (field.fieldKind === "list") {
      for (const item of value) parts.push(field.listKind === "message" ? `${field.name} ${messageText(item.message ?? item)}` : `${field.name}: ${scalarText(field, item)}`);
    } else if (field.fieldKind === "message") {
      parts.push(`${field.name} ${messageText(value.message)}`);
    } else {
      parts.push(`${field.name}: ${scalarText(field, value)}`);
    }
  }
  return `{ ${parts.join(" ")} }`;
}

/** The options of an element as `name = value` entries: the standard ones and the extensions among them. */
function optionEntries(options) {
  if (!options) return [];
  const desc = registry.getMessage(options.$typeName);
  const r = reflect(desc, options);
  const entries = [];
  for (const field of r.fields) {
    if (field.name === "uninterpreted_option" || !r.isSet(field)) continue;
    const value = r.get(field);
    if (field.fieldKind === "scalar" || field.fieldKind === "enum") entries.push(`${field.name} = ${scalarText(field, value)}`);
    else throw new Error(`cannot render option ${desc.typeName}.${field.name}`);
  }
  const seen = new Set();
  for (const u of options.$unknown ?? []) {
    if (seen.has(u.no)) continue;
    seen.add(u.no);
    const ext = registry.getExtensionFor(desc, u.no);
    if (!ext) throw new Error(`unknown option ${desc.typeName} #${u.no}`);
    const value = getExtension(options, ext);
    const name = `(${ext.typeName})`;
    if (ext.fieldKind === "message") entries.push(`${name} = ${messageText(value)}`);
    else if (ext.fieldKind === "list") for (const v of value) entries.push(`${name} = ${isMessage(v) ? messageText(v) : scalarText(ext, v)}`);
    else entries.push(`${name} = ${scalarText(ext, value)}`);
  }
  return entries;
}

const scalarNames = {
  [FieldDescriptorProto_Type.DOUBLE]: "double",
  [FieldDescriptorProto_Type.FLOAT]: "float",
  [FieldDescriptorProto_Type.INT64]: "int64",
  [FieldDescriptorProto_Type.UINT64]: "uint64",
  [FieldDescriptorProto_Type.INT32]: "int32",
  [FieldDescriptorProto_Type.FIXED64]: "fixed64",
  [FieldDescriptorProto_Type.FIXED32]: "fixed32",
  [FieldDescriptorProto_Type.BOOL]: "bool",
  [FieldDescriptorProto_Type.STRING]: "string",
  [FieldDescriptorProto_Type.BYTES]: "bytes",
  [FieldDescriptorProto_Type.UINT32]: "uint32",
  [FieldDescriptorProto_Type.SFIXED32]: "sfixed32",
  [FieldDescriptorProto_Type.SFIXED64]: "sfixed64",
  [FieldDescriptorProto_Type.SINT32]: "sint32",
  [FieldDescriptorProto_Type.SINT64]: "sint64",
};

function camel(name) {
  return name.replace(/_([a-z0-9])/g, (_, c) => c.toUpperCase());
}

/** One field line; `inOneof` drops the label, which proto2 forbids inside a oneof. */
function fieldLine(f, inOneof) {
  if (f.type === FieldDescriptorProto_Type.GROUP) throw new Error(`groups are not rendered (${f.name})`);
  const label = inOneof ? "" : f.label === FieldDescriptorProto_Label.REPEATED ? "repeated " : f.label === FieldDescriptorProto_Label.REQUIRED ? "required " : "optional ";
  const type = scalarNames[f.type] ?? f.typeName;
  const opts = [];
  if (f.defaultValue !== undefined && f.defaultValue !== "") {
    opts.push(`default = ${f.type === FieldDescriptorProto_Type.STRING ? quote(f.defaultValue) : f.defaultValue}`);
  }
  if (f.jsonName && f.jsonName !== camel(f.name)) opts.push(`json_name = ${quote(f.jsonName)}`);
  opts.push(...optionEntries(f.options));
  return `${label}${type} ${f.name} = ${f.number}${opts.length ? ` [${opts.join(", ")}]` : ""};`;
}

function optionLines(options, indent) {
  return optionEntries(options).map((e) => `${indent}option ${e};`);
}

function ranges(list, indent, keyword, max) {
  // Ranges are stored end-exclusive; 536870912 (2^29) is one past the largest field number, written "max".
  return list.length
    ? [`${indent}${keyword} ${list.map((r) => (r.end - 1 === r.start ? `${r.start}` : `${r.start} to ${r.end === max ? "max" : r.end - 1}`)).join(", ")};`]
    : [];
}

function enumLines(e, indent) {
  const lines = [`${indent}enum ${e.name} {`, ...optionLines(e.options, indent + "  ")];
  for (const v of e.value) {
    const opts = optionEntries(v.options);
    lines.push(`${indent}  ${v.name} = ${v.number}${opts.length ? ` [${opts.join(", ")}]` : ""};`);
  }
  // Enum reserved ranges are end-inclusive.
  if (e.reservedRange.length) lines.push(`${indent}  reserved ${e.reservedRange.map((r) => (r.start === r.end ? `${r.start}` : `${r.start} to ${r.end}`)).join(", ")};`);
  if (e.reservedName.length) lines.push(`${indent}  reserved ${e.reservedName.map(quote).join(", ")};`);
  lines.push(`${indent}}`);
  return lines;
}

function messageLines(m, indent) {
  if (m.options?.mapEntry) throw new Error(`map entries are not rendered (${m.name})`);
  const inner = indent + "  ";
  const lines = [`${indent}message ${m.name} {`, ...optionLines(m.options, inner)];
  const oneofsDone = new Set();
  for (const f of m.field) {
    // proto2 fields read as their default when unset, so membership in a oneof is asked with isFieldSet.
    if (!isFieldSet(f, FieldDescriptorProtoSchema.field.oneofIndex) || f.proto3Optional) {
      lines.push(inner + fieldLine(f, false));
      continue;
    }
    if (oneofsDone.has(f.oneofIndex)) continue;
    oneofsDone.add(f.oneofIndex);
    const decl = m.oneofDecl[f.oneofIndex];
    lines.push(`${inner}oneof ${decl.name} {`, ...optionLines(decl.options, inner + "  "));
    for (const g of m.field.filter((x) => isFieldSet(x, FieldDescriptorProtoSchema.field.oneofIndex) && x.oneofIndex === f.oneofIndex)) lines.push(inner + "  " + fieldLine(g, true));
    lines.push(`${inner}}`);
  }
  for (const n of m.nestedType) lines.push(...messageLines(n, inner));
  for (const e of m.enumType) lines.push(...enumLines(e, inner));
  lines.push(...extensionLines(m.extension, inner));
  lines.push(...ranges(m.extensionRange, inner, "extensions", 536870912));
  lines.push(...ranges(m.reservedRange, inner, "reserved", 536870912));
  if (m.reservedName.length) lines.push(`${inner}reserved ${m.reservedName.map(quote).join(", ")};`);
  lines.push(`${indent}}`);
  return lines;
}

function extensionLines(extensions, indent) {
  const lines = [];
  for (const extendee of [...new Set(extensions.map((x) => x.extendee))]) {
    lines.push(`${indent}extend ${extendee} {`);
    for (const x of extensions.filter((y) => y.extendee === extendee)) lines.push(`${indent}  ${fieldLine(x, false)}`);
    lines.push(`${indent}}`);
  }
  return lines;
}

function render(file) {
  const p = file.proto;
  if (p.syntax !== "" && p.syntax !== "proto2") throw new Error(`only proto2 is rendered, ${p.name} is ${p.syntax}`);
  const lines = [
    `// Rendered by scripts/validate-proto.mjs from the descriptor embedded in @bufbuild/protovalidate ${version}.`,
    "// Not committed, do not edit: `npm run generate` writes it again.",
    'syntax = "proto2";',
    "",
    `package ${p.package};`,
    "",
    ...p.dependency.map((d) => `import ${quote(d)};`),
    "",
    ...optionLines(p.options, ""),
    "",
  ];
  for (const e of p.enumType) lines.push(...enumLines(e, ""), "");
  for (const m of p.messageType) lines.push(...messageLines(m, ""), "");
  lines.push(...extensionLines(p.extension, ""));
  return lines.join("\n") + "\n";
}

/** Writes `text` to `path` unless it already holds exactly that. */
function writeIfChanged(path, text) {
  let current;
  try {
    current = readFileSync(path, "utf8");
  } catch {
    current = undefined;
  }
  if (current !== text) {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, text);
  }
}

writeIfChanged(out, render(validateFile));

// google.api.field_behavior (REQUIRED, OUTPUT_ONLY, IMMUTABLE) ships as source in google-proto-files: it is
// copied beside buf/validate for the same reason, so our protos import it while nothing third-party is
// committed; buf.gen.yaml generates its code from the package itself.
const fieldBehavior = "google/api/field_behavior.proto";
writeIfChanged(join(root, ".cache/proto-deps", fieldBehavior), readFileSync(join(root, "node_modules/google-proto-files", fieldBehavior), "utf8"));
