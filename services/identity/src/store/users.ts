import { and, arrayContains, asc, eq, gt, ne, or, sql } from "drizzle-orm";
import { preparedPerHandle, type Db } from "@local-e-grocery/platform/db.js";
import { alreadyExists, sqlState } from "@local-e-grocery/platform/errors.js";
import { isUuid } from "@local-e-grocery/platform/ids.js";
import type { ProfileChange, UserRecord } from "../model.js";
import { users } from "../schema.js";

export type NewUser = Pick<UserRecord, "id" | "username" | "email" | "passwordHash" | "roles" | "displayName" | "createTime" | "updateTime">;

/** Queries over identity.users. */
export interface UserQueries {
  /** The user, or undefined (without a query for an id that is not a UUID). */
  findUserById(id: string): Promise<UserRecord | undefined>;
  /** The user whose username or email is `login`, ignoring case and surrounding space. */
  findUserByLogin(login: string): Promise<UserRecord | undefined>;
  /** Inserts a user; ALREADY_EXISTS naming username or email when one is taken (also under a race). */
  insertUser(user: NewUser): Promise<UserRecord>;
  /** The user, locked (FOR UPDATE) until the transaction ends; undefined when absent or not a UUID. */
  lockUser(id: string): Promise<UserRecord | undefined>;
  /** Writes `change` and the update time; the user after it, undefined when absent. ALREADY_EXISTS("email") for a taken email. */
  updateUser(id: string, change: ProfileChange & { roles?: string[]; disabled?: boolean; updateTime: Date }): Promise<UserRecord | undefined>;
  setPasswordHash(id: string, passwordHash: string, updateTime: Date): Promise<void>;
  deleteUser(id: string): Promise<void>;
  /** Serialises changes that could take away the last enabled administrator, until the transaction ends. */
  lockAdmins(): Promise<void>;
  /** Serialises the creation of the first administrator across replicas, until the transaction ends. */
  lockAdminBootstrap(): Promise<void>;
  /** True when an enabled administrator other than `exceptUserId` (any, when absent) exists. */
  enabledAdminExists(exceptUserId?: string): Promise<boolean>;
  /**
   * Up to `limit` users ordered by username after `afterUsername`; `prefix` (lower case) matches the start of
   * the username or email ignoring case, `roleClaim` keeps holders of that role.
   */
  listUsers(query: { prefix: string; roleClaim?: string | undefined; afterUsername?: string | undefined; limit: number }): Promise<UserRecord[]>;
}

// GetMe, the session check and every token refresh read a user by id: prepared once.
const userById = preparedPerHandle((db) => db.select().from(users).where(eq(users.id, sql.placeholder("id"))).prepare("identity_user_by_id"));

const userByLogin = preparedPerHandle((db) =>
  db
    .select()
    .from(users)
    .where(or(sql`lower(${users.username}) = ${sql.placeholder("key")}`, sql`lower(${users.email}) = ${sql.placeholder("key")}`))
    .limit(1)
    .prepare("identity_user_by_login"),
);

export function userQueries(db: Db): UserQueries {
  return {
    async findUserById(id) {
      if (!isUuid(id)) return undefined;
      const [row] = await userById(db).execute({ id });
      return row;
    },
    async findUserByLogin(login) {
      const key = login.trim().toLowerCase();
      // No stored username or email holds a NUL, and PostgreSQL refuses one in a query parameter: no match, no query.
      if (key === "" || key.includes("\0")) return undefined;
      const [row] = await userByLogin(db).execute({ key });
      return row;
    },
    async insertUser(user) {
      try {
        const [created] = await db.insert(users).values(user).returning();
        if (!created) throw new Error("insert returned nothing");
        return created;
      } catch (e) {
        if (sqlState(e) === "23505") {
          const detail = String((e as { cause?: { constraint_name?: string; constraint?: string } }).cause?.constraint_name ?? (e as { cause?: { constraint?: string } }).cause?.constraint ?? "");
          throw alreadyExists(detail.includes("email") ? "email" : "username");
        }
        throw e;
      }
    },
    async lockUser(id) {
      const [user] = isUuid(id) ? await db.select().from(users).where(eq(users.id, id)).for("update") : [];
      return user;
    },
    async updateUser(id, change) {
      try {
        const [row] = await db.update(users).set(change).where(eq(users.id, id)).returning();
        return row;
      } catch (e) {
        // Only the email of a changed profile can collide with another account's.
        if (sqlState(e) === "23505") throw alreadyExists("email");
        throw e;
      }
    },
    async setPasswordHash(id, passwordHash, updateTime) {
      await db.update(users).set({ passwordHash, updateTime }).where(eq(users.id, id));
    },
    async deleteUser(id) {
      await db.delete(users).where(eq(users.id, id));
    },
    async lockAdmins() {
      await db.execute(sql`select pg_advisory_xact_lock(hashtext('grocery.identity.admins'))`);
    },
    async lockAdminBootstrap() {
      await db.execute(sql`select pg_advisory_xact_lock(hashtext('grocery.identity.admin_bootstrap'))`);
    },
    async enabledAdminExists(exceptUserId) {
      const [other] = await db
        .select({ id: users.id })
        .from(users)
        .where(and(arrayContains(users.roles, ["admin"]), eq(users.disabled, false), exceptUserId === undefined ? undefined : ne(users.id, exceptUserId)))
        .limit(1);
      return other !== undefined;
    },
    async listUsers({ prefix, roleClaim, afterUsername, limit }) {
      const like = prefix.replace(/[\\%_]/g, (c) => `\\${c}`) + "%";
      return db
        .select()
        .from(users)
        .where(
          and(
            prefix === "" ? undefined : or(sql`lower(${users.username}) like ${like}`, sql`lower(${users.email}) like ${like}`),
            roleClaim === undefined ? undefined : arrayContains(users.roles, [roleClaim]),
            afterUsername === undefined ? undefined : gt(users.username, afterUsername),
          ),
        )
        .orderBy(asc(users.username))
        .limit(limit);
    },
  };
}
