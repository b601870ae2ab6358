/**
 * google.api.field_behavior in the protos says to readers and tools what the field rules enforce: a field the
 * validator requires, by its own rule or by a request's message rule naming it, is marked REQUIRED (or, for the
 * id an Update names its resource by, IDENTIFIER), and what the services assign (ids, versions, times) is
 * OUTPUT_ONLY or, for a resource's own id, IDENTIFIER. A new field that breaks either agreement fails here.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { getOption, hasOption, type DescField, type DescMessage } from "@bufbuild/protobuf";
import { field as fieldRules, message as messageRules } from "@bufbuild/protovalidate/gen/buf/validate/validate_pb.js";
import { AddressSchema } from "@local-e-grocery/gen/grocery/address/v1/address_pb.js";
import { CartItemSchema, CartSchema } from "@local-e-grocery/gen/grocery/cart/v1/cart_pb.js";
import { UserSchema } from "@local-e-grocery/gen/grocery/identity/v1/user_pb.js";
import { FieldBehavior, field_behavior as fieldBehavior } from "@local-e-grocery/gen/google/api/field_behavior_pb.js";
import { fieldAt, messageRuleSubject } from "@local-e-grocery/platform/validate-interceptor.js";
import { generatedServices } from "./generated-services.js";

const behaviours = (f: DescField): FieldBehavior[] => (hasOption(f, fieldBehavior) ? getOption(f, fieldBehavior) : []);

/** Every message reachable from the platform's RPCs (requests, responses and what they hold). */
async function messages(): Promise<DescMessage[]> {
  const seen = new Map<string, DescMessage>();
  const visit = (m: DescMessage) => {
    if (seen.has(m.typeName) || !m.typeName.startsWith("grocery.")) return;
    seen.set(m.typeName, m);
    for (const f of m.fields) if (f.message) visit(f.message);
  };
  for (const s of await generatedServices()) {
    for (const m of s.methods) {
      visit(m.input);
      visit(m.output);
    }
  }
  return [...seen.values()];
}

describe("field behaviour annotations", () => {
  it("mark REQUIRED every field the validator requires", async () => {
    const missing: string[] = [];
    for (const m of await messages()) {
      for (const f of m.fields) {
        if (getOption(f, fieldRules).required && !behaviours(f).includes(FieldBehavior.REQUIRED)) missing.push(`${m.typeName}.${f.name}`);
      }
    }
    assert.deepEqual(missing, []);
  });

  it("mark REQUIRED, or IDENTIFIER, every field a request's message rule requires", async () => {
    const missing: string[] = [];
    let named = 0;
    for (const m of await messages()) {
      for (const rule of getOption(m, messageRules).cel) {
        const subject = messageRuleSubject(rule.id);
        if (subject === undefined) continue;
        const f = fieldAt(m, subject);
        assert.ok(f, `${m.typeName} rule ${rule.id} names a field`);
        named++;
        const marked = behaviours(f).some((b) => b === FieldBehavior.REQUIRED || b === FieldBehavior.IDENTIFIER);
        if (rule.id.endsWith("-required") && !marked) missing.push(`${m.typeName} ${rule.id}`);
      }
    }
    assert.ok(named > 0, "the protos hold message rules that name their field");
    assert.deepEqual(missing, []);
  });

  it("mark what the services assign on every resource as OUTPUT_ONLY, and each resource's id", () => {
    for (const [message, assigned] of [
      [UserSchema, ["create_time", "update_time", "roles", "disabled"]],
      [CartSchema, ["id", "version", "create_time", "update_time", "item_count", "items"]],
      [AddressSchema, ["version", "create_time", "update_time", "is_default"]],
      [CartItemSchema, ["line_total"]],
    ] as const) {
      for (const name of assigned) {
        const f = message.fields.find((x) => x.name === name);
        assert.ok(f, `${message.typeName}.${name} exists`);
        assert.deepEqual(behaviours(f), [FieldBehavior.OUTPUT_ONLY], `${message.typeName}.${name}`);
      }
    }
    assert.deepEqual(behaviours(AddressSchema.field.id), [FieldBehavior.IDENTIFIER]);
    assert.deepEqual(behaviours(UserSchema.field.id), [FieldBehavior.OUTPUT_ONLY]);
  });
});
