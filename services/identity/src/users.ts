import { eq, or, sql } from "drizzle-orm";
import { type Role } from "../../../gen/grocery/auth/v1/auth_pb.js";
import { roleFromClaim, roleToClaim } from "../../platform/src/auth/roles.js";
import { preparedPerHandle, type Db } from "../../platform/src/db.js";
import { alreadyExists, sqlState } from "../../platform/src/errors.js";
import { users } from "./schema.js";

export type UserRow = typeof users.$inferSelect;

export function rolesOf(row: Pick<UserRow, "roles">): Role[] {
  return row.roles.flatMap((c) => {
    const role = roleFromClaim(c);
    return role === undefined ? [] : [role];
  });
}

export function roleClaims(roles: readonly Role[]): string[] {
  return [...new Set(roles)].map(roleToClaim);
}

export async function findUserById(db: Db, id: string): Promise<UserRow | undefined> {
  if (!isUuid(id)) return undefined;
  const [row] = await userById(db).execute({ id });
  return row;
}

// GetMe, the session check and every token refresh read a user by id: prepared once.
const userById = preparedPerHandle((db) => db.select().from(users).where(eq(users.id, sql.placeholder("id"))).prepare("identity_user_by_id"));

/** Finds a user by username or email, ignoring case. */
export async function findUserByLogin(db: Db, login: string): Promise<UserRow | undefined> {
  const key = login.trim().toLowerCase();
  // No stored username or email holds a NUL, and PostgreSQL refuses one in a query parameter: no match, no query.
  if (key === "" || key.includes("\0")) return undefined;
  const [row] = await userByLogin(db).execute({ key });
  return row;
}

const userByLogin = preparedPerHandle((db) =>
  db
    .select()
    .from(users)
    .where(or(sql`lower(${users.username}) = ${sql.placeholder("key")}`, sql`lower(${users.email}) = ${sql.placeholder("key")}`))
    .limit(1)
    .prepare("identity_user_by_login"),
);

/** Inserts a user; ALREADY_EXISTS when the username or email is taken (also under a race). */
export async function insertUser(db: Db, row: typeof users.$inferInsert): Promise<UserRow> {
  try {
    const [created] = await db.insert(users).values(row).returning();
    if (!created) throw new Error("insert returned nothing");
    return created;
  } catch (e) {
    if (sqlState(e) === "23505") {
      const detail = String((e as { cause?: { constraint_name?: string; constraint?: string } }).cause?.constraint_name ?? (e as { cause?: { constraint?: string } }).cause?.constraint ?? "");
      throw alreadyExists(detail.includes("email") ? "email" : "username");
    }
    throw e;
  }
}

export function isUuid(value: string): boolean {
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value);
}
