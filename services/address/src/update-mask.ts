import { invalidArgument } from "../../platform/src/errors.js";
import { protoFieldNames, type AddressFields } from "./model.js";

type Field = keyof AddressFields;

const fieldByPath = new Map<string, Field>(Object.entries(protoFieldNames).map(([field, path]) => [path, field as Field]));
const outputOnly = new Set(["id", "version", "create_time", "update_time"]);

/**
 * Resolves an AIP-134 update mask to the fields to overwrite. `paths` are proto field names (`recipient_name`);
 * an empty mask means every field `isSet` in the request; `*` means every writable field. Throws
 * INVALID_ARGUMENT("update_mask") for unknown paths, output-only fields, `is_default` (SetDefaultAddress owns
 * it) and sub-paths of `location` (it is replaced whole).
 */
export function resolveUpdateMask(paths: readonly string[], isSet: (field: Field) => boolean): Set<Field> {
  const all = [...fieldByPath.values()];
  if (paths.length === 0) return new Set(all.filter(isSet));
  const fields = new Set<Field>();
  for (const path of paths) {
    if (path === "*") {
      if (paths.length > 1) throw invalidArgument("update_mask", `"*" must be the only path`);
      return new Set(all);
    }
    const field = fieldByPath.get(path);
    if (field !== undefined) {
      fields.add(field);
      continue;
    }
    if (path === "is_default") throw invalidArgument("update_mask", "is_default changes only through SetDefaultAddress");
    if (outputOnly.has(path)) throw invalidArgument("update_mask", `${path} is output only`);
    if (path.startsWith("location.")) throw invalidArgument("update_mask", "location is replaced as a whole; use the path location");
    throw invalidArgument("update_mask", `unknown field ${JSON.stringify(path)}`);
  }
  return fields;
}
