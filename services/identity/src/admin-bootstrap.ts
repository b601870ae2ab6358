import { create } from "@bufbuild/protobuf";
import { Role } from "@local-e-grocery/gen/grocery/auth/v1/auth_pb.js";
import { RegisterRequestSchema } from "@local-e-grocery/gen/grocery/identity/v1/auth_service_pb.js";
import { ConfigError } from "@local-e-grocery/platform/config.js";
import { DomainError } from "@local-e-grocery/platform/errors.js";
import type { Logger } from "@local-e-grocery/platform/logger.js";
import type { Clock } from "@local-e-grocery/platform/service-module.js";
import { createRequestCheck } from "@local-e-grocery/platform/validate-interceptor.js";
import type { AdminBootstrap } from "./config.js";
import type { PasswordHasher } from "./passwords.js";
import type { IdentityStore } from "./store.js";
import { roleClaims } from "./users.js";
import { checkPassword, normaliseEmail, normaliseUsername } from "./validation.js";

/** The variable each RegisterRequest field comes from. */
const variableOf: Record<string, string> = { username: "ADMIN_USERNAME", email: "ADMIN_EMAIL", password: "ADMIN_PASSWORD" };

/**
 * Normalises and checks ADMIN_USERNAME, ADMIN_EMAIL and ADMIN_PASSWORD like Register would: these values never
 * pass the validate interceptor, so RegisterRequest's field rules are applied to them here, then the password
 * checks that need data. ConfigError naming each wrong variable.
 */
export function validateAdminBootstrap(admin: AdminBootstrap): AdminBootstrap {
  try {
    createRequestCheck()(RegisterRequestSchema, create(RegisterRequestSchema, { username: admin.username, email: admin.email, password: admin.password }));
    const username = normaliseUsername(admin.username);
    const email = normaliseEmail(admin.email);
    checkPassword(admin.password, { username, email }, "password");
    return { username, email, password: admin.password };
  } catch (e) {
    if (e instanceof DomainError) {
      throw new ConfigError(e.violations.map((v) => `${variableOf[v.field] ?? v.field}: ${v.description}`).join("; "));
    }
    throw e;
  }
}

/**
 * Creates the first administrator from configuration when the platform has no enabled administrator, so it
 * happens once: later starts (and replicas starting together, serialised by an advisory lock) find one and do
 * nothing, and an operator who deleted the configured account after appointing others is not overruled. The
 * password is used only when creating. An existing account with the configured username or email is never
 * promoted (someone may have registered the name first); that is logged as an error.
 */
export async function bootstrapAdmin(deps: { store: IdentityStore; clock: Clock; newId: () => string; logger: Logger; passwords: PasswordHasher }, admin: AdminBootstrap): Promise<"created" | "exists" | "conflict"> {
  const passwordHash = await deps.passwords.hash(admin.password);
  const outcome = await deps.store.write(async (tx) => {
    await tx.lockAdminBootstrap();
    if (await tx.enabledAdminExists()) return "exists";
    if ((await tx.findUserByLogin(admin.username)) ?? (await tx.findUserByLogin(admin.email))) return "conflict";
    const now = new Date(deps.clock());
    await tx.insertUser({
      id: deps.newId(),
      username: admin.username,
      email: admin.email,
      passwordHash,
      roles: roleClaims([Role.ADMIN]),
      displayName: admin.username,
      createTime: now,
      updateTime: now,
    });
    return "created";
  });
  if (outcome === "created") deps.logger.info("administrator created from ADMIN_USERNAME", { username: admin.username });
  if (outcome === "conflict") {
    deps.logger.error("no administrator exists, but ADMIN_USERNAME or ADMIN_EMAIL belongs to another account; none was created", { username: admin.username });
  }
  return outcome;
}
