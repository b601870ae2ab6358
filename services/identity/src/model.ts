/**
 * Identity's domain types: plain data shared by the use cases, the store and the proto mappers, independent of
 * the wire format and of the database. Times are Dates, as the use cases compare and print them.
 */

/** An account. Roles and notification channels are stored by their claim and channel names. */
export interface UserRecord {
  id: string;
  username: string;
  email: string;
  passwordHash: string;
  /** Role claim names: customer, shop_owner, admin. */
  roles: string[];
  displayName: string;
  disabled: boolean;
  createTime: Date;
  updateTime: Date;
  /** E.164, or empty. */
  phoneNumber: string;
  /** Canonical BCP 47 tag, or empty. */
  languageCode: string;
  /** ISO 4217 code, or empty. */
  currencyCode: string;
  marketingOptIn: boolean;
  /** Channel names: email, sms, push. */
  notificationChannels: string[];
}

/** The profile fields UpdateMe may change, as stored. */
export type ProfileChange = Partial<Pick<UserRecord, "displayName" | "phoneNumber" | "email" | "languageCode" | "currencyCode" | "marketingOptIn" | "notificationChannels">>;

/** A login: one per device or client. */
export interface SessionRecord {
  id: string;
  userId: string;
  createTime: Date;
  lastUsedTime: Date;
  /** Absolute end of the session, however active it is. */
  expireTime: Date;
  revokeTime: Date | null;
  revokeReason: string | null;
  userAgent: string;
  ip: string;
}

/** A refresh token ever issued, by hash. */
export interface RefreshTokenRecord {
  tokenHash: string;
  sessionId: string;
  createTime: Date;
  spendTime: Date | null;
  /** Once spent, within the reuse grace window: its successor, sealed (see refresh-tokens.ts). */
  successorSealed: string | null;
}

/** One event of a user's security history. */
export interface ActivityRecord {
  id: string;
  userId: string;
  kind: string;
  createTime: Date;
  ip: string;
  userAgent: string;
  sessionId: string | null;
  changedFields: string[];
}

/** A machine client of the client-credentials flow. */
export interface ServiceAccountRecord {
  clientId: string;
  name: string;
  /** SHA-256 of the secret, base64url. */
  secretHash: string;
  createTime: Date;
  lastUsedTime: Date | null;
  createdBy: string | null;
}

/** An ES256 signing key shared by every replica. */
export interface SigningKeyRecord {
  kid: string;
  privateKeyPem: string;
  publicJwk: unknown;
  createTime: Date;
  /** When it starts signing; null for keys that signed from creation. */
  activateTime: Date | null;
  /** When it stops signing; null while nothing succeeds it. */
  retireTime: Date | null;
}

/** A mail claimed from the outbox for sending. */
export interface ClaimedMail {
  id: string;
  payload: unknown;
  /** Attempts so far, this one included. */
  attempts: number;
}

/** An event delivery claimed for one destination. */
export interface ClaimedDelivery {
  eventId: string;
  destination: string;
  /** Attempts so far, this one included. */
  attempts: number;
  topic: string;
  payload: { user_id?: string; enabled?: boolean; shop_owner?: boolean; request_id?: string };
  /** The event's outbox sequence, as decimal text. */
  seq: string;
}

/** An event delivery not yet acknowledged, as ListPendingDeliveries shows it. */
export interface PendingDelivery {
  eventId: string;
  topic: string;
  userId: string;
  destination: string;
  attempts: number;
  createTime: Date;
  nextAttemptTime: Date;
  lastError: string;
}
