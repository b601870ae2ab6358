import type { Principal } from "@local-e-grocery/platform/context.js";
import { alreadyExists, invalidArgument, unauthenticated } from "@local-e-grocery/platform/errors.js";
import { deleteAccount } from "./account-deletion.js";
import { recordActivity, type ClientInfo } from "./activity.js";
import type { IdentityDeps } from "./identity-deps.js";
import { emailChangedMail } from "./mail-templates.js";
import { enqueueMail } from "./outbox.js";
import { spendResetTokens } from "./password-management.js";
import { confirmPassword } from "./reauthentication.js";
import type { ProfileChange, UserRecord } from "./model.js";
import {
  normaliseCurrencyCode,
  normaliseDisplayName,
  normaliseEmail,
  normaliseLanguageCode,
  normalisePhoneNumber,
  type NotificationChannelName,
} from "./validation.js";

/** The writable part of a user, as UpdateMe receives it. */
export interface ProfileInput {
  displayName: string;
  phoneNumber: string;
  email: string;
  preferences?: {
    languageCode: string;
    currencyCode: string;
    marketingOptIn: boolean;
    notificationChannels: NotificationChannelName[];
  };
}

type UserUpdate = ProfileChange;

/**
 * The fields UpdateMe may change: each record field with its proto path, the path its update_mask names
 * (user-proto.ts) and the user's history records.
 */
const profileFields = {
  displayName: "display_name",
  phoneNumber: "phone_number",
  email: "email",
  languageCode: "preferences.language_code",
  currencyCode: "preferences.currency_code",
  marketingOptIn: "preferences.marketing_opt_in",
  notificationChannels: "preferences.notification_channels",
} as const satisfies Record<keyof UserUpdate, string>;

export type ProfilePath = (typeof profileFields)[keyof UserUpdate];
export const profilePaths: readonly ProfilePath[] = Object.values(profileFields);

/** UpdateMe and DeleteMe. */
export function createProfiles(deps: IdentityDeps) {
  const { store, clock, newId, hooks } = deps;

  const currentUser = async (principal: Principal): Promise<UserRecord> => {
    const user = await store.direct.findUserById(principal.subject);
    if (!user) throw unauthenticated("account no longer exists");
    return user;
  };

  return {
    /**
     * Changes the fields in `mask` of the caller's profile, from a request that keeps UpdateMeRequest's field rules;
     * what they cannot know is checked before anything is written (INVALID_ARGUMENT naming the request field: a
     * masked empty email, a language tag Intl refuses, an unknown currency). A new email needs
     * `current_password` (INVALID_ARGUMENT naming it when missing or wrong, checked before anything about the new
     * address; throttled like logins, RESOURCE_EXHAUSTED), must be free (ALREADY_EXISTS), and is announced to the
     * old address. Records the changed fields in the user's history.
     */
    async updateMe(principal: Principal, input: ProfileInput, mask: ReadonlySet<ProfilePath>, currentPassword: string, client: ClientInfo): Promise<UserRecord> {
      const user = await currentUser(principal);
      const prefs = input.preferences ?? { languageCode: "", currencyCode: "", marketingOptIn: false, notificationChannels: [] };
      const next: UserUpdate = {};
      if (mask.has("display_name")) next.displayName = normaliseDisplayName(input.displayName, user.username);
      if (mask.has("phone_number")) next.phoneNumber = normalisePhoneNumber(input.phoneNumber);
      if (mask.has("email")) {
        // The field rule skips an empty email, which stands for "not given" when the mask leaves email out; a
        // mask that names it asks to clear the address, and an account cannot be without one.
        if (input.email === "") throw invalidArgument("user.email", "must be a valid email address");
        next.email = normaliseEmail(input.email);
      }
      if (mask.has("preferences.language_code")) next.languageCode = normaliseLanguageCode(prefs.languageCode, "user.preferences.language_code");
      if (mask.has("preferences.currency_code")) next.currencyCode = normaliseCurrencyCode(prefs.currencyCode, "user.preferences.currency_code");
      if (mask.has("preferences.marketing_opt_in")) next.marketingOptIn = prefs.marketingOptIn;
      if (mask.has("preferences.notification_channels")) next.notificationChannels = [...new Set(prefs.notificationChannels)];

      const changed = (Object.keys(next) as (keyof UserUpdate)[]).filter((k) => JSON.stringify(next[k]) !== JSON.stringify(user[k]));
      if (changed.length === 0) return user;
      const update: UserUpdate = Object.fromEntries(changed.map((k) => [k, next[k]]));
      const emailChange = update.email !== undefined;
      if (emailChange) {
        // The password first: answering ALREADY_EXISTS before it would tell anyone holding an access token (a
        // stolen one included) which addresses have accounts, unthrottled. A wrong password now gets the same
        // answer whether or not the address is taken, and counts against the re-authentication throttle.
        if (currentPassword === "") throw invalidArgument("current_password", "is required to change the email");
        await confirmPassword(deps, user, currentPassword, client, "current_password");
        const taken = await store.direct.findUserByLogin(update.email ?? "");
        if (taken && taken.id !== user.id) throw alreadyExists("email");
      }
      const names = changed.filter((k) => k !== "email").map((k) => profileFields[k]);
      // A taken email (a race past the check above) is ALREADY_EXISTS from the store.
      const updated = await store.write(async (tx) => {
        const row = await tx.updateUser(user.id, { ...update, updateTime: new Date(clock()) });
        if (!row) throw unauthenticated("account no longer exists");
        if (names.length > 0) await recordActivity(tx, clock, { userId: user.id, kind: "profile.updated", client, sessionId: principal.sessionId, changedFields: names });
        if (emailChange) {
          await recordActivity(tx, clock, { userId: user.id, kind: "email.changed", client, sessionId: principal.sessionId, changedFields: ["email"] });
          await spendResetTokens(tx, clock, user.id);
          await enqueueMail(tx, clock, newId, emailChangedMail({ oldEmail: user.email, newEmail: row.email, displayName: row.displayName }));
        }
        return row;
      });
      if (emailChange) hooks.mailQueued();
      return updated;
    },

    /**
     * Deletes the caller's account after checking `password` (INVALID_ARGUMENT naming it; throttled like
     * logins). FAILED_PRECONDITION for the last enabled administrator.
     */
    async deleteMe(principal: Principal, password: string, client: ClientInfo): Promise<void> {
      const user = await currentUser(principal);
      await confirmPassword(deps, user, password, client, "password");
      await deleteAccount(store, clock, newId, deps.config.events.destinations, user.id, "self");
      hooks.principalChanged(user.id);
      hooks.eventQueued();
    },
  };
}


export type Profiles = ReturnType<typeof createProfiles>;
