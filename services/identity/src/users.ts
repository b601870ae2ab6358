import { type Role } from "@local-e-grocery/gen/grocery/auth/v1/auth_pb.js";
import { roleFromClaim, roleToClaim } from "@local-e-grocery/platform/auth/roles.js";
import type { UserRecord } from "./model.js";

export function rolesOf(user: Pick<UserRecord, "roles">): Role[] {
  return user.roles.flatMap((c) => {
    const role = roleFromClaim(c);
    return role === undefined ? [] : [role];
  });
}

export function roleClaims(roles: readonly Role[]): string[] {
  return [...new Set(roles)].map(roleToClaim);
}
