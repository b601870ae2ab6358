/** Shared pieces of the cart integration suites: a platform with the cart service, clients, and small helpers. */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { CartItemSchema, type CartItem } from "@local-e-grocery/gen/grocery/cart/v1/cart_pb.js";
import { CartService } from "@local-e-grocery/gen/grocery/cart/v1/cart_service_pb.js";
import { startTestPlatform, type Backend, type TestClock, type TestPlatform } from "../../../test/harness.js";

export type CartClient = Client<typeof CartService>;
export type Protocol = "grpc" | "connect" | "grpc-web";

/** The whole platform (identity, cart, address) in one process, as `npm start` runs it. */
export function startCartPlatform(backend: Backend, options: { env?: Record<string, string>; clock?: TestClock } = {}): Promise<TestPlatform> {
  return startTestPlatform({ backend, ...options });
}

/** Owns the HTTP/2 connections opened by clients so a suite can close them all. */
export class Clients {
  private readonly sessions: Http2SessionManager[] = [];

  /**
   * A CartService client for `token` over a new connection: gRPC (HTTP/2, the default), Connect or gRPC-web
   * (both HTTP/1.1, as browsers speak them).
   */
  cart(url: string, token: string | undefined, protocol: Protocol = "grpc"): CartClient {
    return createClient(CartService, this.transport(url, token, protocol));
  }

  transport(url: string, token: string | undefined, protocol: Protocol): Transport {
    const auth: Interceptor = (next) => (req) => {
      if (token !== undefined) req.header.set("authorization", `Bearer ${token}`);
      return next(req);
    };
    const interceptors = [auth];
    if (protocol === "grpc") {
      const sessionManager = new Http2SessionManager(url);
      this.sessions.push(sessionManager);
      return createGrpcTransport({ baseUrl: url, sessionManager, interceptors });
    }
    if (protocol === "connect") return createConnectTransport({ baseUrl: url, httpVersion: "1.1", interceptors });
    return createGrpcWebTransport({ baseUrl: url, httpVersion: "1.1", interceptors });
  }

  close(): void {
    for (const s of this.sessions.splice(0)) s.abort();
  }
}

/** The code a call failed with; fails the test when it succeeds. */
export async function codeOf(call: Promise<unknown>): Promise<Code> {
  try {
    await call;
  } catch (e) {
    return ConnectError.from(e).code;
  }
  assert.fail("expected the call to fail");
}

/** Asserts that `call` fails with `code` (compared by name in the message, for readable failures). */
export async function rejectsWith(call: Promise<unknown>, code: Code): Promise<void> {
  const got = await codeOf(call);
  assert.equal(Code[got], Code[code]);
}

/** An item to add: one unit of a product at 1.29 EUR unless overridden. */
export function item(over: { productId?: string; shopId?: string; name?: string; currencyCode?: string; amountMinor?: bigint; quantity?: number } = {}): CartItem {
  return create(CartItemSchema, {
    productId: over.productId ?? "milk-1l",
    shopId: over.shopId ?? "shop-1",
    name: over.name ?? "Milk 1 l",
    unitPrice: { currencyCode: over.currencyCode ?? "EUR", amountMinor: over.amountMinor ?? 129n },
    quantity: over.quantity ?? 1,
  });
}

export const newRequestId = randomUUID;
