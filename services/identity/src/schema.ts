import { sql } from "drizzle-orm";
import { boolean, index, jsonb, pgSchema, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";

export const identity = pgSchema("identity");

const ts = (name: string) => timestamp(name, { withTimezone: true, mode: "date" });

export const users = identity.table(
  "users",
  {
    id: uuid("id").primaryKey(),
    username: text("username").notNull(),
    email: text("email").notNull(),
    passwordHash: text("password_hash").notNull(),
    /** Role claim names: customer, shop_owner, admin. */
    roles: text("roles").array().notNull(),
    displayName: text("display_name").notNull(),
    disabled: boolean("disabled").notNull().default(false),
    createTime: ts("create_time").notNull(),
    updateTime: ts("update_time").notNull(),
  },
  (t) => [
    uniqueIndex("users_username_lower_key").on(sql`lower(${t.username})`),
    uniqueIndex("users_email_lower_key").on(sql`lower(${t.email})`),
  ],
);

/** A login: one per device or client, ended by logout, revocation, expiry or reuse of a spent refresh token. */
export const sessions = identity.table(
  "sessions",
  {
    id: uuid("id").primaryKey(),
    userId: uuid("user_id").notNull().references(() => users.id, { onDelete: "cascade" }),
    createTime: ts("create_time").notNull(),
    lastUsedTime: ts("last_used_time").notNull(),
    /** Absolute end of the session, however active it is. */
    expireTime: ts("expire_time").notNull(),
    revokeTime: ts("revoke_time"),
    revokeReason: text("revoke_reason"),
    userAgent: text("user_agent").notNull().default(""),
    ip: text("ip").notNull().default(""),
  },
  (t) => [index("sessions_user_idx").on(t.userId)],
);

/** Every refresh token ever issued, by SHA-256 hash; a spent one presented again revokes its session. */
export const refreshTokens = identity.table(
  "refresh_tokens",
  {
    tokenHash: text("token_hash").primaryKey(),
    sessionId: uuid("session_id").notNull().references(() => sessions.id, { onDelete: "cascade" }),
    createTime: ts("create_time").notNull(),
    spendTime: ts("spend_time"),
  },
  (t) => [index("refresh_tokens_session_idx").on(t.sessionId)],
);

/** ES256 signing keys shared by every replica; retired keys stay published until their tokens have expired. */
export const signingKeys = identity.table("signing_keys", {
  kid: text("kid").primaryKey(),
  privateKeyPem: text("private_key_pem").notNull(),
  publicJwk: jsonb("public_jwk").notNull(),
  createTime: ts("create_time").notNull(),
  /** When it stopped signing; null while it is the current key. */
  retireTime: ts("retire_time"),
});
