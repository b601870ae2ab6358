import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { NotificationChannel, PreferencesSchema, UserSchema, type User } from "@local-e-grocery/gen/grocery/identity/v1/user_pb.js";
import {
  ActivityEventSchema,
  ActivityKind,
  ServiceAccountSchema,
  SessionSchema,
  type ActivityEvent,
  type ServiceAccount,
  type Session,
} from "@local-e-grocery/gen/grocery/identity/v1/user_service_pb.js";
import { createUpdateMaskResolver } from "@local-e-grocery/platform/update-mask.js";
import type { ActivityKindName } from "./activity.js";
import type { ActivityRecord, ServiceAccountRecord, UserRecord } from "./model.js";
import { profilePaths, type ProfileInput, type ProfilePath } from "./profiles.js";
import type { SessionView } from "./session-management.js";
import { rolesOf } from "./users.js";
import type { NotificationChannelName } from "./validation.js";

const channelByName: Record<NotificationChannelName, NotificationChannel> = {
  email: NotificationChannel.EMAIL,
  sms: NotificationChannel.SMS,
  push: NotificationChannel.PUSH,
};
const nameByChannel = new Map(Object.entries(channelByName).map(([name, channel]) => [channel, name as NotificationChannelName]));

export function toUserProto(row: UserRecord): User {
  return create(UserSchema, {
    id: row.id,
    username: row.username,
    email: row.email,
    roles: rolesOf(row),
    displayName: row.displayName,
    disabled: row.disabled,
    createTime: timestampFromDate(row.createTime),
    updateTime: timestampFromDate(row.updateTime),
    phoneNumber: row.phoneNumber,
    preferences: create(PreferencesSchema, {
      languageCode: row.languageCode,
      currencyCode: row.currencyCode,
      marketingOptIn: row.marketingOptIn,
      notificationChannels: row.notificationChannels.flatMap((n) => (n in channelByName ? [channelByName[n as NotificationChannelName]] : [])),
    }),
  });
}

// Every User field outside profilePaths is read-only here: roles, disabled and the rest change through the
// admin RPCs or not at all. "preferences" stands for its four fields.
const profileMask = createUpdateMaskResolver({ schema: UserSchema, updatable: profilePaths });

/**
 * The profile fields UpdateMe changes (AIP-134): those named in the mask, every field set in `user` when the
 * mask is absent or empty, all of them for "*". INVALID_ARGUMENT("update_mask") for unknown and read-only paths.
 */
export function profileMaskFromProto(paths: readonly string[] | undefined, user: User | undefined): Set<ProfilePath> {
  return profileMask.resolve(paths, user);
}

/** The writable fields of a User from UpdateMe, whose channels the schema has checked (EMAIL, SMS and PUSH only). */
export function profileFromProto(user: User | undefined): ProfileInput {
  const prefs = user?.preferences;
  return {
    displayName: user?.displayName ?? "",
    phoneNumber: user?.phoneNumber ?? "",
    email: user?.email ?? "",
    preferences: prefs && {
      languageCode: prefs.languageCode,
      currencyCode: prefs.currencyCode,
      marketingOptIn: prefs.marketingOptIn,
      notificationChannels: prefs.notificationChannels.map((c) => {
        const name = nameByChannel.get(c);
        // Preferences.notification_channels' field rule refuses any other value; one here is a bug, not bad input.
        if (name === undefined) throw new Error(`profileFromProto: notification channel ${c} passed the schema`);
        return name;
      }),
    },
  };
}

export function toSessionProto(view: SessionView): Session {
  const s = view.session;
  return create(SessionSchema, {
    id: s.id,
    createTime: timestampFromDate(s.createTime),
    lastUsedTime: timestampFromDate(s.lastUsedTime),
    expireTime: timestampFromDate(view.endTime),
    userAgent: s.userAgent,
    ipAddress: s.ip,
    current: view.current,
  });
}

const kindByName: Record<ActivityKindName, ActivityKind> = {
  "login.succeeded": ActivityKind.LOGIN_SUCCEEDED,
  "login.failed": ActivityKind.LOGIN_FAILED,
  "refresh_token.reused": ActivityKind.REFRESH_TOKEN_REUSED,
  logout: ActivityKind.LOGOUT,
  "session.revoked": ActivityKind.SESSION_REVOKED,
  "password.changed": ActivityKind.PASSWORD_CHANGED,
  "password.reset_requested": ActivityKind.PASSWORD_RESET_REQUESTED,
  "password.reset": ActivityKind.PASSWORD_RESET,
  "profile.updated": ActivityKind.PROFILE_UPDATED,
  "email.changed": ActivityKind.EMAIL_CHANGED,
  "roles.changed": ActivityKind.ROLES_CHANGED,
  "account.disabled": ActivityKind.ACCOUNT_DISABLED,
  "account.enabled": ActivityKind.ACCOUNT_ENABLED,
};

export function toActivityProto(row: ActivityRecord): ActivityEvent {
  return create(ActivityEventSchema, {
    id: row.id,
    kind: kindByName[row.kind as ActivityKindName] ?? ActivityKind.UNSPECIFIED,
    createTime: timestampFromDate(row.createTime),
    ipAddress: row.ip,
    userAgent: row.userAgent,
    sessionId: row.sessionId ?? "",
    changedFields: row.changedFields,
  });
}

export function toServiceAccountProto(row: ServiceAccountRecord): ServiceAccount {
  return create(ServiceAccountSchema, {
    clientId: row.clientId,
    name: row.name,
    createTime: timestampFromDate(row.createTime),
    lastUsedTime: row.lastUsedTime ? timestampFromDate(row.lastUsedTime) : undefined,
  });
}
