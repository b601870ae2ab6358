import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { AddressService } from "@local-e-grocery/gen/grocery/address/v1/address_service_pb.js";
import type { ServiceDefinition } from "@local-e-grocery/platform/service-module.js";
import { createAddressBook } from "./address-book.js";
import { readAddressConfig } from "./config.js";
import { addressRoutes } from "./routes.js";
import { createAddressStore } from "./store.js";

/** The address service: address books in the Postgres schema `address`, and the nearby-shops lookup. */
export const addressService: ServiceDefinition = {
  name: "address",
  migrationsFolder: fileURLToPath(new URL("../migrations", import.meta.url)),
  build(deps) {
    const config = readAddressConfig(deps.env);
    const book = createAddressBook({ store: createAddressStore(deps.db), config, clock: deps.clock, newId: randomUUID });
    return {
      services: [AddressService],
      routes: addressRoutes(book),
      // UserDataService is not in `services`: the platform serves it over these hooks (services/platform/src/user-data.ts).
      purgeUser: (userId) => book.purgeUser(userId),
      setUserStanding: (standing) => book.setUserStanding(standing),
    };
  },
};
