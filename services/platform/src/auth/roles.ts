import { Role } from "@local-e-grocery/gen/grocery/auth/v1/auth_pb.js";

/**
 * Roles travel in tokens as short lower-case names ("customer", "shop_owner", "admin", "service"), which Envoy
 * and other JWT consumers can read without the proto enum.
 */
const claimByRole = new Map<Role, string>([
  [Role.CUSTOMER, "customer"],
  [Role.SHOP_OWNER, "shop_owner"],
  [Role.ADMIN, "admin"],
  [Role.SERVICE, "service"],
]);
const roleByClaim = new Map([...claimByRole].map(([role, claim]) => [claim, role]));

export function roleToClaim(role: Role): string {
  const claim = claimByRole.get(role);
  if (claim === undefined) throw new Error(`role ${role} has no claim name`);
  return claim;
}

export function roleFromClaim(claim: string): Role | undefined {
  return roleByClaim.get(claim);
}
