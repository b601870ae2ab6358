import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter } from "@connectrpc/connect";
import { CartItemSchema, CartSchema, MoneySchema, type Cart } from "@local-e-grocery/gen/grocery/cart/v1/cart_pb.js";
import {
  AddItemResponseSchema,
  CartService,
  ClearCartResponseSchema,
  CreateCartResponseSchema,
  DeleteCartResponseSchema,
  GetCartResponseSchema,
  ListCartsResponseSchema,
  RemoveItemResponseSchema,
  RenameCartResponseSchema,
  UpdateItemQuantityResponseSchema,
} from "@local-e-grocery/gen/grocery/cart/v1/cart_service_pb.js";
import { requirePrincipal } from "@local-e-grocery/platform/context.js";
import type { Carts } from "./carts.js";
import { multiply } from "./money.js";
import type { CartView } from "./model.js";
import { totals } from "./rules.js";

/** Converts a domain cart to its wire form, computing line totals, item count and subtotal. */
export function cartToProto(view: CartView): Cart {
  const { itemCount, subtotal } = totals(view.items);
  return create(CartSchema, {
    id: view.id,
    name: view.name,
    items: view.items.map((l) =>
      create(CartItemSchema, {
        productId: l.productId,
        shopId: l.shopId,
        name: l.name,
        unitPrice: create(MoneySchema, { currencyCode: l.currencyCode, amountMinor: l.unitPriceMinor }),
        quantity: l.quantity,
        // Writes keep every total within int64 (sumLines), so this is defined.
        lineTotal: create(MoneySchema, { currencyCode: l.currencyCode, amountMinor: multiply(l.unitPriceMinor, l.quantity) ?? 0n }),
      }),
    ),
    itemCount,
    subtotal: subtotal ? create(MoneySchema, subtotal) : undefined,
    version: view.version,
    createTime: timestampFromMs(view.createTime),
    updateTime: timestampFromMs(view.updateTime),
  });
}

/** Registers CartService: each handler reads the caller from the context and hands the request to the domain. */
export function cartRoutes(carts: Carts): (router: ConnectRouter) => void {
  return (router) =>
    router.service(CartService, {
      async createCart(req, ctx) {
        const cart = await carts.createCart(requirePrincipal(ctx).subject, { name: req.name });
        return create(CreateCartResponseSchema, { cart: cartToProto(cart) });
      },
      async getCart(req, ctx) {
        const cart = await carts.getCart(requirePrincipal(ctx).subject, { cartId: req.cartId });
        return create(GetCartResponseSchema, { cart: cartToProto(cart) });
      },
      async listCarts(req, ctx) {
        const page = await carts.listCarts(requirePrincipal(ctx).subject, { pageSize: req.pageSize, pageToken: req.pageToken });
        return create(ListCartsResponseSchema, { carts: page.carts.map(cartToProto), nextPageToken: page.nextPageToken });
      },
      async renameCart(req, ctx) {
        const cart = await carts.renameCart(requirePrincipal(ctx).subject, req);
        return create(RenameCartResponseSchema, { cart: cartToProto(cart) });
      },
      async deleteCart(req, ctx) {
        await carts.deleteCart(requirePrincipal(ctx).subject, req);
        return create(DeleteCartResponseSchema, {});
      },
      async addItem(req, ctx) {
        const cart = await carts.addItem(requirePrincipal(ctx).subject, req);
        return create(AddItemResponseSchema, { cart: cartToProto(cart) });
      },
      async updateItemQuantity(req, ctx) {
        const cart = await carts.updateItemQuantity(requirePrincipal(ctx).subject, req);
        return create(UpdateItemQuantityResponseSchema, { cart: cartToProto(cart) });
      },
      async removeItem(req, ctx) {
        const cart = await carts.removeItem(requirePrincipal(ctx).subject, req);
        return create(RemoveItemResponseSchema, { cart: cartToProto(cart) });
      },
      async clearCart(req, ctx) {
        const cart = await carts.clearCart(requirePrincipal(ctx).subject, req);
        return create(ClearCartResponseSchema, { cart: cartToProto(cart) });
      },
    });
}
