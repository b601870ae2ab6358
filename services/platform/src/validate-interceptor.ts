import { createRegistry, type DescMessage, type Message } from "@bufbuild/protobuf";
import { pathToString } from "@bufbuild/protobuf/reflect";
import { createValidator, type Validator } from "@bufbuild/protovalidate";
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
    const violations: FieldViolation[] = result.violations.map((v) => ({
      // A violation of a message-level rule has no field path; it is reported on the message as a whole ("").
      field: pathToString(v.field),
      description: v.message,
    }));
    const [first, ...rest] = violations;
    // "invalid" always carries at least one violation; the fallback keeps the contract if a release changes that.
    throw invalidArguments(first ? [first, ...rest] : [{ field: "", description: result.error.message }]);
  };
}
