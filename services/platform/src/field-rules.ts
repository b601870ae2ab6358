import { getOption, isFieldSet, type DescField } from "@bufbuild/protobuf";
import { field as fieldRules, StringRulesSchema } from "@bufbuild/protovalidate/gen/buf/validate/validate_pb.js";

/**
 * The largest value a field's buf.validate rules allow: `string.max_len`, `int32.lte` / `int32.lt - 1`, or
 * `double.lte` (a `double.lt` has no largest value, so it does not count).
 * Configurable limits are read against it, so configuration can only tighten what the schema declares and the
 * proto never promises less than the service accepts. Throws when the field declares no such maximum: a limit
 * with nothing to bound it is a mistake in the schema, found at start-up.
 */
export function schemaMaximum(field: DescField): number {
  const rules = getOption(field, fieldRules).type;
  if (rules.case === "string" && isFieldSet(rules.value, StringRulesSchema.field.maxLen)) return Number(rules.value.maxLen);
  if (rules.case === "int32") {
    const less = rules.value.lessThan;
    if (less.case === "lte") return less.value;
    if (less.case === "lt") return less.value - 1;
  }
  if (rules.case === "double" && rules.value.lessThan.case === "lte") return rules.value.lessThan.value;
  throw new Error(`${field.parent.typeName}.${field.name} declares no maximum in its buf.validate rules`);
}
