import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { CartService } from "@local-e-grocery/gen/grocery/cart/v1/cart_service_pb.js";
import type { ServiceDefinition } from "@local-e-grocery/platform/service-module.js";
import { createCarts } from "./carts.js";
import { readCartConfig } from "./config.js";
import { cartRoutes } from "./routes.js";
import { createCartStore } from "./store.js";

/** The cart service: named carts per user in the Postgres schema `cart`. */
export const cartService: ServiceDefinition = {
  name: "cart",
  migrationsFolder: fileURLToPath(new URL("../migrations", import.meta.url)),
  build(deps) {
    const config = readCartConfig(deps.env);
    const carts = createCarts({ store: createCartStore(deps.db), config, clock: deps.clock, newId: randomUUID, logger: deps.logger });
    // UserDataService is not in `services`: the platform serves it over this hook (services/platform/src/user-data.ts).
    return { services: [CartService], routes: cartRoutes(carts), purgeUser: (userId) => carts.purgeUser(userId) };
  },
};
