import { invalidArgument } from "@local-e-grocery/platform/errors.js";
import { isCommonPassword } from "./passwords.js";

/**
 * Normalisation of the account fields, and the checks that need data. Their shape (username and service account
 * name patterns, email shape and length, password length, display name length and control characters, phone
 * number, language and currency code patterns, notification channels) is declared as buf.validate rules in
 * user.proto / auth_service.proto / user_service.proto and enforced by the platform's validate interceptor before
 * a handler runs; these functions assume it, and only turn a valid value into its stored form.
 */

/** The stored form of a username the schema accepted: trimmed, lower case. */
export function normaliseUsername(raw: string): string {
  return raw.trim().toLowerCase();
}

/** The stored form of an address the schema accepted: NFC, trimmed, lower case. */
export function normaliseEmail(raw: string): string {
  return raw.normalize("NFC").trim().toLowerCase();
}

/**
 * The password rules that need data: not a common password, not the username or email (INVALID_ARGUMENT on
 * `field`). Its length is a field rule where the request carries one (RegisterRequest.password,
 * ChangePasswordRequest.new_password); ResetPassword checks it itself, after the token.
 */
export function checkPassword(password: string, context: { username: string; email: string }, field = "password"): void {
  if (isCommonPassword(password)) throw invalidArgument(field, "is too common");
  const lower = password.toLowerCase();
  if (lower === context.username.toLowerCase() || lower === context.email.toLowerCase() || lower === context.email.split("@")[0]?.toLowerCase()) {
    throw invalidArgument(field, "must not be the username or email");
  }
}

/** The stored form of a display name the schema accepted: NFC, trimmed; `fallback` when nothing is left. */
export function normaliseDisplayName(raw: string, fallback: string): string {
  const name = raw.normalize("NFC").trim();
  return name === "" ? fallback : name;
}

export { normalisePhoneNumber } from "@local-e-grocery/platform/phone-number.js";

/**
 * A language tag in canonical form ("en-gb" → "en-GB"); empty clears. The schema admits the shape of a tag;
 * whether its subtags make a well-formed BCP 47 tag is Intl's knowledge, so INVALID_ARGUMENT on `field` for one
 * Intl refuses (such as "en-a") is raised here.
 */
export function normaliseLanguageCode(raw: string, field = "language_code"): string {
  const tag = raw.trim();
  if (tag === "") return "";
  try {
    const [canonical] = Intl.getCanonicalLocales(tag);
    if (canonical !== undefined) return canonical;
  } catch {
    // RangeError: not a well-formed tag; answered below.
  }
  throw invalidArgument(field, "must be a BCP 47 language tag such as en or de-AT");
}

export { normaliseCurrencyCode } from "@local-e-grocery/platform/currency-code.js";

export const notificationChannelNames = ["email", "sms", "push"] as const;
export type NotificationChannelName = (typeof notificationChannelNames)[number];
