import { ScalarType, type DescField, type DescMethod } from "@bufbuild/protobuf";
import type { Interceptor } from "@connectrpc/connect";
import { invalidArgument } from "./errors.js";

/**
 * The header a client repeats its write's `request_id` in, so that a proxy, which cannot read the body, can tell
 * the call is safe to send again: the edge retries UNAVAILABLE only for reads and for writes carrying it. Named
 * after the IETF's Idempotency-Key header field.
 */
export const idempotencyKeyHeader = "idempotency-key";

/**
 * The request field that makes a write safe to repeat: a `request_id` string on the input of a unary method (cart's
 * AddItem), whose second call with the same value returns the first result instead of acting again.
 */
export function requestIdField(method: DescMethod): DescField | undefined {
  if (method.methodKind !== "unary") return undefined;
  const field = method.input.fields.find((f) => f.name === "request_id");
  return field?.fieldKind === "scalar" && field.scalar === ScalarType.STRING ? field : undefined;
}

/**
 * Holds a client to what its Idempotency-Key header promises: on a method with a `request_id`, a call that sends
 * the header must carry the same id in its body (request ids are UUIDs, compared without regard to case), or it
 * is refused with INVALID_ARGUMENT on `request_id` before it runs. A header without the id would let the edge
 * repeat a write that has nothing to recognise it by. Calls without the header are as they were.
 */
export function createIdempotencyKeyInterceptor(): Interceptor {
  const fields = new Map<DescMethod, DescField | undefined>();
  return (next) => (req) => {
    const key = req.header.get(idempotencyKeyHeader);
    if (key === null || req.stream) return next(req);
    let field = fields.get(req.method);
    if (!fields.has(req.method)) fields.set(req.method, (field = requestIdField(req.method)));
    if (!field) return next(req);
    const id = (req.message as unknown as Record<string, unknown>)[field.localName];
    // An empty header with no id would match, and let the edge repeat a write that has nothing to be known by.
    if (typeof id !== "string" || id === "" || id.toLowerCase() !== key.trim().toLowerCase()) {
      throw invalidArgument(field.name, `must equal the ${idempotencyKeyHeader} header when the call sends one`);
    }
    return next(req);
  };
}
