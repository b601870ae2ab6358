/**
 * Browser clients for the platform, over gRPC-web (what Envoy and the all-in-one server both answer).
 */
import { createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { CartService } from "../../gen/grocery/cart/v1/cart_service_pb.js";
import { AuthService } from "../../gen/grocery/identity/v1/auth_service_pb.js";
import { UserService } from "../../gen/grocery/identity/v1/user_service_pb.js";

export interface GroceryClientsOptions {
  /** Where the platform (or the edge in front of it) answers, e.g. `https://api.example.com`. */
  baseUrl: string;
  /** The current access token, read on every call; no token sends no Authorization header. */
  accessToken?: () => string | undefined;
}

export interface GroceryClients {
  readonly auth: Client<typeof AuthService>;
  readonly users: Client<typeof UserService>;
  readonly carts: Client<typeof CartService>;
}

/** One gRPC-web transport shared by the three clients. */
export function createGroceryClients(options: GroceryClientsOptions): GroceryClients {
  const interceptors = options.accessToken ? [createBearerInterceptor(options.accessToken)] : [];
  const transport = createGrpcWebTransport({ baseUrl: options.baseUrl, interceptors });
  return {
    auth: createClient(AuthService, transport),
    users: createClient(UserService, transport),
    carts: createClient(CartService, transport),
  };
}

/** Adds `Authorization: Bearer <token>` when a token is present at call time. */
export function createBearerInterceptor(accessToken: () => string | undefined): Interceptor {
  return (next) => async (req) => {
    const token = accessToken();
    if (token) req.header.set("Authorization", `Bearer ${token}`);
    return next(req);
  };
}
