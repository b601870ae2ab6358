import { createRegistry, type DescField, type DescMessage, type Message } from "@bufbuild/protobuf";
import { pathToString } from "@bufbuild/protobuf/reflect";
import { createValidator, type Validator, type Violation } from "@bufbuild/protovalidate";
import type { Interceptor } from "@connectrpc/connect";
import { file_grocery_validate_v1_rules } from "@local-e-grocery/gen/grocery/validate/v1/rules_pb.js";
import { invalidArguments, type FieldViolation } from "./errors.js";

/**
 * The validator for the platform's protos: it knows the shared predefined rules (grocery/validate/v1), which a
 * field states by name and which are extensions the validator must be told about.
 */
export function createPlatformValidator(): Validator {
  return createValidator({ registry: createRegistry(file_grocery_validate_v1_rules) });
}

export interface ValidateInterceptorOptions {
  /** The validator to use; one is created when absent. It caches compiled rules per message type. */
  validator?: Validator;
}

/**
 * Enforces the `buf.validate` rules declared in the protos on every request message, so handlers never re-check
 * message shape. A request that breaks a rule fails with INVALID_ARGUMENT before its handler runs, and therefore
 * changes nothing; the error is a DomainError whose violations name each wrong field by its proto path
 * (`item.unit_price.currency_code`), the form the services' own DomainErrors use, so clients get one
 * google.rpc.BadRequest shape from rules and domain checks alike.
 *
 * Place it after the access interceptor (an anonymous caller learns nothing about message shape) and outside
 * the error interceptor: unary violations are mapped by the logging interceptor's fallback, and stream messages
 * are validated as the handler reads them, inside the error interceptor. Responses are not validated.
 *
 * A rule that does not compile (a CEL mistake in a proto) is a bug: the validator's error is rethrown as is and
 * answers INTERNAL, logged.
 */
export function createValidateInterceptor(options: ValidateInterceptorOptions = {}): Interceptor {
  const check = createRequestCheck(options.validator);
  return (next) => (req) => {
    if (!req.stream) {
      check(req.method.input, req.message);
      return next(req);
    }
    const input = req.method.input;
    const messages = req.message;
    return next({
      ...req,
      message: (async function* () {
        for await (const message of messages) {
          check(input, message);
          yield message;
        }
      })(),
    });
  };
}

/**
 * The check the interceptor runs, for code that holds a message outside a call (unit tests of the rules):
 * returns when `message` keeps every rule of `schema`, throws the INVALID_ARGUMENT DomainError otherwise.
 */
export function createRequestCheck(validator: Validator = createPlatformValidator()): (schema: DescMessage, message: Message) => void {
  return (schema, message) => {
    const result = validator.validate(schema, message);
    if (result.kind === "valid") return;
    if (result.kind === "error") throw result.error;
    const violations: FieldViolation[] = result.violations.map((v) => ({ field: violationField(schema, v), description: v.message }));
    const [first, ...rest] = violations;
    // "invalid" always carries at least one violation; the fallback keeps the contract if a release changes that.
    throw invalidArguments(first ? [first, ...rest] : [{ field: "", description: result.error.message }]);
  };
}

/**
 * The request field a violation is about, by proto path. protovalidate reports a message-level rule
 * (`(buf.validate.message).cel`) on the message itself, yet such a rule is how a request states a requirement on
 * a field of a message it shares with other requests (CreateAddress's `address.kind`, which UpdateAddress may
 * leave unset). So a message-level rule whose id is `<field path>-<name>`, the path relative to the message the
 * rule is declared on, is reported on that field, and clients see the same violation a field rule would give;
 * any other message-level rule stays on the message as a whole ("" for the request). A path that names no field
 * is a mistake in the proto: it throws, and the call answers INTERNAL, as a rule that does not compile does.
 */
function violationField(schema: DescMessage, v: Violation): string {
  const at = pathToString(v.field);
  const subject = messageRuleSubject(v.ruleId);
  if (v.rule.length > 0 || subject === undefined) return at;
  let message: DescMessage | undefined = schema;
  // List and map subscripts stay on the element's message, which the repeated or map field named.
  for (const step of v.field) if (step.kind !== "list_sub" && step.kind !== "map_sub") message = step.kind === "field" ? step.message : undefined;
  if (!message || !fieldAt(message, subject)) throw new Error(`rule ${v.ruleId} of ${message?.typeName ?? at} names no field of it`);
  return at === "" ? subject : `${at}.${subject}`;
}

/**
 * The field path a message-level rule's id names (`address.kind` of `address.kind-required`), if it names one. A
 * field name holds no `-`, and buf allows no other separator in an id.
 */
export function messageRuleSubject(ruleId: string): string | undefined {
  const dash = ruleId.indexOf("-");
  return dash > 0 ? ruleId.slice(0, dash) : undefined;
}

/** The field `path` (`address.kind`) names, through singular message fields of `message`; undefined if none. */
export function fieldAt(message: DescMessage, path: string): DescField | undefined {
  let current: DescMessage | undefined = message;
  let field: DescField | undefined;
  for (const name of path.split(".")) {
    field = current?.fields.find((f) => f.name === name);
    if (!field) return undefined;
    current = field.fieldKind === "message" ? field.message : undefined;
  }
  return field;
}
