/**
 * Browser clients for the platform, over gRPC-web (what Envoy and the all-in-one server both answer).
 */
import { Code, ConnectError, createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { CartService } from "@local-e-grocery/gen/grocery/cart/v1/cart_service_pb.js";
import { AuthService } from "@local-e-grocery/gen/grocery/identity/v1/auth_service_pb.js";
import { UserService } from "@local-e-grocery/gen/grocery/identity/v1/user_service_pb.js";

export interface GroceryClientsOptions {
  /** Where the platform (or the edge in front of it) answers, e.g. `https://api.example.com`. */
  baseUrl: string;
  /** The current access token, read on every call; no token sends no Authorization header. */
  accessToken?: () => string | undefined;
  /**
   * Called when a call that carried a token is refused UNAUTHENTICATED (the token expired, or the edge has not
   * fetched a new signing key yet): resolves with a fresh access token, and the call is sent once more with it,
   * or with undefined to give up (the caller is then signed out). Calls waiting at the same time share one renewal.
   */
  renewAccessToken?: () => Promise<string | undefined>;
}

export interface GroceryClients {
  readonly auth: Client<typeof AuthService>;
  readonly users: Client<typeof UserService>;
  readonly carts: Client<typeof CartService>;
}

/** One gRPC-web transport shared by the three clients. */
export function createGroceryClients(options: GroceryClientsOptions): GroceryClients {
  const interceptors = options.accessToken ? [createBearerInterceptor(options.accessToken, options.renewAccessToken)] : [];
  const transport = createGrpcWebTransport({ baseUrl: options.baseUrl, interceptors });
  return {
    auth: createClient(AuthService, transport),
    users: createClient(UserService, transport),
    carts: createClient(CartService, transport),
  };
}

/**
 * Adds `Authorization: Bearer <token>` when a token is present at call time and, given `renew`, retries a unary
 * call refused UNAUTHENTICATED once with a renewed token. The refusal reads the same whether the service or the
 * edge sent it: Envoy's jwt_authn answers gRPC-web with HTTP 401 carrying `grpc-status: 16` in the headers and
 * no body, which connect-web reads as Code.Unauthenticated like the service's own trailer.
 */
export function createBearerInterceptor(accessToken: () => string | undefined, renew?: () => Promise<string | undefined>): Interceptor {
  let renewing: Promise<string | undefined> | undefined;
  const renewOnce = () => {
    renewing ??= (renew ?? (async () => undefined))().finally(() => (renewing = undefined));
    return renewing;
  };
  return (next) => async (req) => {
    const token = accessToken();
    if (token) req.header.set("Authorization", `Bearer ${token}`);
    try {
      return await next(req);
    } catch (e) {
      if (!token || !renew || req.stream || ConnectError.from(e).code !== Code.Unauthenticated) throw e;
      const fresh = await renewOnce();
      if (!fresh) throw e;
      req.header.set("Authorization", `Bearer ${fresh}`);
      return next(req);
    }
  };
}
