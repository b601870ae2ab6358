import type { DescMethod, DescService } from "@bufbuild/protobuf";
import type { ConnectRouter } from "@connectrpc/connect";
import type { JwksSource } from "./auth/jwks.js";
import type { Env } from "./config.js";
import type { Principal } from "./context.js";
import type { Db } from "./db.js";
import type { Logger } from "./logger.js";
import type { Mesh } from "./mesh.js";
import type { HttpRoute } from "./server.js";

/** Wall-clock time in milliseconds since the epoch; injected so tests can move time. */
export type Clock = () => number;

/** A user's standing as identity reports it (UserDataService/SetUserStanding); `userId` is lower-case. */
export interface UserStanding {
  readonly userId: string;
  readonly enabled: boolean;
  readonly shopOwner: boolean;
  readonly sequence: bigint;
}

/** What the platform hands each service when it builds it. */
export interface ServiceDeps {
  /** The service's database; its tables live in the Postgres schema named after the service. */
  readonly db: Db;
  readonly env: Env;
  readonly logger: Logger;
  readonly clock: Clock;
  /** Clients of the other services (see mesh.ts); ask for them while building, call them once started. */
  readonly mesh: Mesh;
  /** Names of the services this process runs. */
  readonly localServices: readonly string[];
}

/** A built service: its handlers plus what the platform needs to serve and supervise it. */
export interface ServiceModule {
  readonly services: readonly DescService[];
  routes(router: ConnectRouter): void;
  readonly httpRoutes?: Record<string, HttpRoute>;
  /** Where the verification keys come from when this service signs tokens itself (identity). */
  readonly jwksSource?: JwksSource;
  /** Signs SERVICE tokens for this process's own internal calls (identity, which holds the keys). */
  serviceToken?(): Promise<string>;
  /** Extra per-call check of an authenticated caller (identity's live-session check). */
  checkPrincipal?(principal: Principal, method: DescMethod): Promise<void>;
  /**
   * For a service that keeps data about users: deletes all of it for `userId` (a lower-case UUID) in one
   * transaction, leaves a tombstone that refuses that user's writes until their access tokens have expired, and
   * returns how many rows went (0 when none were left). Idempotent. The platform serves
   * grocery.userdata.v1.UserDataService/PurgeUser over every module's hook (see user-data.ts), so a module never
   * registers that service itself.
   */
  purgeUser?(userId: string): Promise<number>;
  /**
   * For a service that shows something of users publicly (address: shops in FindNearbyShops): records the user's
   * current standing unless one with an equal or higher `sequence` is already recorded, and answers whether it
   * did. Served as UserDataService/SetUserStanding by the platform, like `purgeUser`; a module keeping user data
   * without this hook answers it OK and keeps nothing.
   */
  setUserStanding?(standing: UserStanding): Promise<boolean>;
  /** Work to run once listening, such as bootstrapping the first admin. */
  start?(): Promise<void>;
  close?(): Promise<void>;
}

/** How to build one service; services/<name>/src/service.ts exports one of these. */
export interface ServiceDefinition {
  /** Short name; also its Postgres schema. */
  readonly name: string;
  /** drizzle-kit output folder with meta/_journal.json. */
  readonly migrationsFolder: string;
  build(deps: ServiceDeps): ServiceModule | Promise<ServiceModule>;
}
