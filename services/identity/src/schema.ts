import { sql } from "drizzle-orm";
import { bigserial, boolean, index, integer, jsonb, pgSchema, primaryKey, text, timestamp, uniqueIndex, uuid } from "drizzle-orm/pg-core";

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
    /** E.164, or empty. */
    phoneNumber: text("phone_number").notNull().default(""),
    /** Canonical BCP 47 tag, or empty. */
    languageCode: text("language_code").notNull().default(""),
    /** ISO 4217 code, or empty. */
    currencyCode: text("currency_code").notNull().default(""),
    marketingOptIn: boolean("marketing_opt_in").notNull().default(false),
    /** Channel names: email, sms, push. */
    notificationChannels: text("notification_channels").array().notNull().default(sql`'{email}'::text[]`),
  },
  (t) => [
    uniqueIndex("users_username_lower_key").on(sql`lower(${t.username})`),
    uniqueIndex("users_email_lower_key").on(sql`lower(${t.email})`),
    // ListUsers' login_prefix (lower(...) like 'prefix%'): the unique indexes above compare by the database's
    // collation and cannot serve LIKE unless it is C; text_pattern_ops ones can, for any collation.
    index("users_username_lower_prefix_idx").on(sql`lower(${t.username}) text_pattern_ops`),
    index("users_email_lower_prefix_idx").on(sql`lower(${t.email}) text_pattern_ops`),
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
    /**
     * Once spent: its successor, sealed under a key only the spent token yields (see refresh-tokens.ts), so a
     * duplicate use within the reuse grace window gets the same successor; erased once that window is over.
     */
    successorSealed: text("successor_sealed"),
  },
  (t) => [
    index("refresh_tokens_session_idx").on(t.sessionId),
    // Housekeeping looks for seals past the grace window; only a handful of rows carry one at any time.
    index("refresh_tokens_sealed_idx").on(t.spendTime).where(sql`${t.successorSealed} is not null`),
  ],
);

/** ES256 signing keys shared by every replica; retired keys stay published until their tokens have expired. */
export const signingKeys = identity.table("signing_keys", {
  kid: text("kid").primaryKey(),
  privateKeyPem: text("private_key_pem").notNull(),
  publicJwk: jsonb("public_jwk").notNull(),
  createTime: ts("create_time").notNull(),
  /**
   * When it starts signing: SIGNING_KEY_PUBLISH_AHEAD after it was created and published, so every verifier has
   * fetched it first; null for keys that signed from creation (the first key, and immediate rotations).
   */
  activateTime: ts("activate_time"),
  /** When it stops signing (its successor's activation time, possibly ahead); null while nothing succeeds it. */
  retireTime: ts("retire_time"),
});

/** Single-use password reset tokens, by SHA-256 hash; spent on use, and all of a user's spent on any reset. */
export const passwordResetTokens = identity.table(
  "password_reset_tokens",
  {
    tokenHash: text("token_hash").primaryKey(),
    userId: uuid("user_id").notNull().references(() => users.id, { onDelete: "cascade" }),
    createTime: ts("create_time").notNull(),
    expireTime: ts("expire_time").notNull(),
    spendTime: ts("spend_time"),
  },
  (t) => [index("password_reset_tokens_user_idx").on(t.userId)],
);

/**
 * Transactional outbox: mail to send and events for other services, written in the same transaction as the
 * change that causes them and delivered afterwards by a dispatcher (at least once).
 */
export const outbox = identity.table(
  "outbox",
  {
    id: uuid("id").primaryKey(),
    /** "mail", or an event name such as "user.deleted". */
    topic: text("topic").notNull(),
    /** Grows with every row: the order of a user's events, sent along so receivers keep the latest standing. */
    seq: bigserial("seq", { mode: "bigint" }).notNull(),
    payload: jsonb("payload").notNull(),
    /** pending, delivered or failed (gave up). */
    status: text("status").notNull().default("pending"),
    createTime: ts("create_time").notNull(),
    /** Not tried before this time: the retry back-off, or the lease of the replica sending it. */
    availableTime: ts("available_time").notNull(),
    attempts: integer("attempts").notNull().default(0),
    deliverTime: ts("deliver_time"),
    lastError: text("last_error"),
  },
  (t) => [index("outbox_pending_idx").on(t.topic, t.availableTime).where(sql`${t.status} = 'pending'`)],
);

/**
 * One row per event and service it must reach (USER_DATA_SERVICES when the event was written), each delivered,
 * retried and leased on its own: a destination that is down delays only itself.
 */
export const outboxDeliveries = identity.table(
  "outbox_deliveries",
  {
    eventId: uuid("event_id")
      .notNull()
      .references(() => outbox.id, { onDelete: "cascade" }),
    /** A service name, reached at <NAME>_SERVICE_ADDR. */
    destination: text("destination").notNull(),
    /** pending or delivered. */
    status: text("status").notNull().default("pending"),
    /** Not tried before this time: the retry back-off, or the lease of the replica delivering it. */
    availableTime: ts("available_time").notNull(),
    attempts: integer("attempts").notNull().default(0),
    deliverTime: ts("deliver_time"),
    lastError: text("last_error"),
  },
  (t) => [primaryKey({ columns: [t.eventId, t.destination] }), index("outbox_deliveries_pending_idx").on(t.availableTime).where(sql`${t.status} = 'pending'`)],
);

/** A user's security history: logins, password and profile changes, session revocations. */
export const activity = identity.table(
  "activity",
  {
    id: uuid("id").primaryKey(),
    userId: uuid("user_id").notNull().references(() => users.id, { onDelete: "cascade" }),
    /** Event name such as login.succeeded; see activity.ts. */
    kind: text("kind").notNull(),
    createTime: ts("create_time").notNull(),
    ip: text("ip").notNull().default(""),
    userAgent: text("user_agent").notNull().default(""),
    /** The session concerned; not a foreign key, the session may be gone. */
    sessionId: uuid("session_id"),
    changedFields: text("changed_fields").array().notNull().default(sql`'{}'::text[]`),
  },
  (t) => [index("activity_user_time_idx").on(t.userId, t.createTime.desc(), t.id.desc())],
);

/**
 * Failed-login counters per account key and per client IP (keys are SHA-256 hashes, so typed logins are not
 * stored). Shared by every replica.
 */
export const loginThrottle = identity.table("login_throttle", {
  key: text("key").primaryKey(),
  failures: integer("failures").notNull(),
  lastFailureTime: ts("last_failure_time").notNull(),
  lockedUntil: ts("locked_until"),
});

/**
 * Attempts admitted by the login throttle whose password is still being checked: one row per attempt and key.
 * A key admits an attempt only while its failures plus these stay under its threshold (see login-throttle.ts);
 * a row past its expire_time belongs to a replica that died mid-check and no longer counts.
 */
export const loginThrottleReservations = identity.table(
  "login_throttle_reservations",
  {
    attemptId: uuid("attempt_id").notNull(),
    key: text("key").notNull(),
    expireTime: ts("expire_time").notNull(),
  },
  (t) => [primaryKey({ columns: [t.attemptId, t.key] }), index("login_throttle_reservations_key_idx").on(t.key, t.expireTime)],
);

/**
 * Registration attempts per client IP (keys are SHA-256 hashes of the address) in fixed windows: each counts,
 * whether it created an account or found the name taken. Shared by every replica.
 */
export const registrationThrottle = identity.table("registration_throttle", {
  key: text("key").primaryKey(),
  windowStart: ts("window_start").notNull(),
  attempts: integer("attempts").notNull(),
});

/** Machine clients for the client-credentials flow; secrets are stored as SHA-256 hashes. */
export const serviceAccounts = identity.table(
  "service_accounts",
  {
    clientId: text("client_id").primaryKey(),
    name: text("name").notNull(),
    secretHash: text("secret_hash").notNull(),
    createTime: ts("create_time").notNull(),
    lastUsedTime: ts("last_used_time"),
    /** The administrator who created it; not a foreign key, so deleting that user keeps the account. */
    createdBy: uuid("created_by"),
  },
  (t) => [uniqueIndex("service_accounts_name_key").on(t.name)],
);
