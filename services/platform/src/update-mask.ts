import { isFieldSet, type DescField, type DescMessage, type Message } from "@bufbuild/protobuf";
import { invalidArgument } from "./errors.js";

/** How one service resolves the update_mask of one Update method. */
export interface UpdateMaskOptions<P extends string> {
  /** The resource message the mask applies to, such as `AddressSchema`. */
  schema: DescMessage;
  /**
   * The paths a client may update, in proto field names (`recipient_name`, `preferences.currency_code`). A
   * message field listed whole is replaced whole: its sub-paths are refused. Listing sub-fields of a message
   * instead makes the parent's path a shorthand for all of them. Every other field of `schema` is read-only.
   * Checked against `schema` when the resolver is made, so the list cannot drift from the contract.
   */
  updatable: readonly P[];
  /**
   * Why a read-only path is refused, by path, where the service has a better answer than the default ("is
   * output only or cannot be changed by this method"), such as the method that changes it instead.
   */
  readOnlyReasons?: Readonly<Record<string, string>>;
  /** The request field the errors name; `update_mask` unless the method calls it otherwise. */
  maskField?: string;
}

/** Turns an update_mask into the set of updatable paths it names (AIP-134). */
export interface UpdateMaskResolver<P extends string> {
  /**
   * The updatable paths, in proto names, that `paths` selects for `resource`:
   * - absent or empty: every updatable field set in `resource` (for proto3 scalars without presence, a
   *   non-default value; for repeated fields, a non-empty list; for messages, present);
   * - `"*"`, alone: every updatable field, so a field left unset in `resource` is cleared;
   * - otherwise the named fields, each in its proto name or its JSON (lowerCamelCase) name; a message path
   *   that groups updatable sub-fields stands for all of them.
   * Throws INVALID_ARGUMENT naming the mask field for an unknown path, a read-only one, a sub-path of a field
   * that is replaced whole, and `"*"` next to other paths. Pure: reads nothing but its arguments.
   */
  resolve(paths: readonly string[] | undefined, resource: Message | undefined): Set<P>;
  /** Every updatable path, in the order given: what `"*"` selects. */
  readonly all: readonly P[];
}

/** One updatable path, as the descriptor resolves it: the chain of fields from the resource down to it. */
interface Leaf<P extends string> {
  readonly path: P;
  readonly chain: readonly DescField[];
}

/**
 * Builds the resolver of one Update method. Throws a plain Error (a programming error, found at start-up) when
 * an updatable path names no field of the schema, descends through a field that is not a singular message, or
 * is listed twice or together with one of its own sub-paths.
 */
export function createUpdateMaskResolver<P extends string>(options: UpdateMaskOptions<P>): UpdateMaskResolver<P> {
  const { schema, updatable, readOnlyReasons = {}, maskField = "update_mask" } = options;
  const leaves = updatable.map((path) => ({ path, chain: descriptorChain(schema, path) }));
  for (const a of leaves) {
    for (const b of leaves) {
      if (a !== b && (a.path === b.path || b.path.startsWith(`${a.path}.`))) {
        throw new Error(`update mask of ${schema.typeName}: ${a.path} and ${b.path} overlap`);
      }
    }
  }

  const fail = (reason: string) => invalidArgument(maskField, reason);
  // Client paths are echoed back only in part: a mask is client input and may be long or hostile.
  const quote = (path: string) => JSON.stringify(path.length > 64 ? `${path.slice(0, 64)}…` : path);

  /** The updatable leaves one client path selects; INVALID_ARGUMENT when it selects none. */
  const select = (path: string): Leaf<P>[] => {
    const names = canonicalPath(schema, path);
    if (names === undefined) return failUnknown(path);
    const canonical = names.join(".");
    const exact = leaves.find((l) => l.path === canonical);
    if (exact) return [exact];
    const group = leaves.filter((l) => l.path.startsWith(`${canonical}.`));
    if (group.length > 0) return group;
    const whole = leaves.find((l) => canonical.startsWith(`${l.path}.`));
    if (whole) throw fail(`${whole.path} is replaced as a whole; use the path ${whole.path}`);
    throw fail(`${canonical} ${readOnlyReasons[canonical] ?? "is output only or cannot be changed by this method"}`);
  };
  const failUnknown = (path: string): never => {
    throw fail(`unknown field ${quote(path)}`);
  };

  return {
    all: leaves.map((l) => l.path),
    resolve(paths, resource) {
      if (paths === undefined || paths.length === 0) {
        return new Set(leaves.filter((l) => resource !== undefined && isSetAlong(resource, l.chain)).map((l) => l.path));
      }
      if (paths.includes("*")) {
        if (paths.length > 1) throw fail(`"*" must be the only path`);
        return new Set(leaves.map((l) => l.path));
      }
      const selected = new Set<P>();
      for (const path of paths) for (const leaf of select(path)) selected.add(leaf.path);
      return selected;
    },
  };
}

/** The fields an updatable path walks through; throws when the schema has no such path. */
function descriptorChain(schema: DescMessage, path: string): DescField[] {
  const chain: DescField[] = [];
  let message: DescMessage | undefined = schema;
  for (const name of path.split(".")) {
    const field: DescField | undefined = message?.fields.find((f) => f.name === name);
    if (!field) throw new Error(`update mask of ${schema.typeName}: ${path} is not a field path of the message`);
    chain.push(field);
    message = field.fieldKind === "message" && field.oneof === undefined ? field.message : undefined;
  }
  return chain;
}

/**
 * A client path in proto names, each segment matched by its proto name or its JSON name; undefined when a
 * segment names no field. Segments below a field that is not a singular message name nothing.
 */
function canonicalPath(schema: DescMessage, path: string): string[] | undefined {
  const names: string[] = [];
  let message: DescMessage | undefined = schema;
  for (const segment of path.split(".")) {
    const field: DescField | undefined = message?.fields.find((f) => f.name === segment || f.jsonName === segment);
    if (!field) return undefined;
    names.push(field.name);
    message = field.fieldKind === "message" && field.oneof === undefined ? field.message : undefined;
  }
  return names;
}

/** Whether every field along `chain` is set, from `resource` down: a sub-field of an absent message is not set. */
function isSetAlong(resource: Message, chain: readonly DescField[]): boolean {
  let current: Message | undefined = resource;
  for (const field of chain) {
    if (current === undefined || !isFieldSet(current, field)) return false;
    const value: unknown = (current as unknown as Record<string, unknown>)[field.localName];
    current = field.fieldKind === "message" && field.oneof === undefined ? (value as Message) : undefined;
  }
  return true;
}
