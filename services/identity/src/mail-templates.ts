import type { Mail } from "./mailer.js";

/** The text of identity's mail. Plain text only; every value put in is one the service itself validated. */

export function welcomeMail(to: { email: string; displayName: string; username: string }): Mail {
  return {
    to: to.email,
    subject: "Welcome to Local E-Grocery",
    text: [
      `Hello ${to.displayName},`,
      "",
      `your account "${to.username}" is ready. Sign in with your username or this email address.`,
      "",
      "If you did not create this account, reply to this message and we will remove it.",
    ].join("\n"),
  };
}

export function passwordResetMail(to: { email: string; displayName: string }, reset: { token: string; publicUrl: string; ttlSeconds: number }): Mail {
  const minutes = Math.round(reset.ttlSeconds / 60);
  return {
    to: to.email,
    subject: "Reset your Local E-Grocery password",
    text: [
      `Hello ${to.displayName},`,
      "",
      "someone asked to reset the password of your account. To choose a new one, open:",
      "",
      // The token rides in the fragment, which browsers never send to servers or in Referer headers.
      `  ${reset.publicUrl}/reset-password#token=${reset.token}`,
      "",
      "or use this reset token with AuthService.ResetPassword:",
      "",
      `  reset-token: ${reset.token}`,
      "",
      `It works once, within ${minutes} minutes. If you did not ask for this, ignore this message: your password stays as it is.`,
    ].join("\n"),
  };
}

export function passwordChangedMail(to: { email: string; displayName: string }, how: "changed" | "reset"): Mail {
  return {
    to: to.email,
    subject: "Your Local E-Grocery password was changed",
    text: [
      `Hello ${to.displayName},`,
      "",
      how === "reset"
        ? "the password of your account was just reset with a link sent to this address, and every session was signed out."
        : "the password of your account was just changed, and your other sessions were signed out.",
      "",
      "If this was not you, reset your password at once and contact us.",
    ].join("\n"),
  };
}

export function emailChangedMail(to: { oldEmail: string; newEmail: string; displayName: string }): Mail {
  return {
    to: to.oldEmail,
    subject: "Your Local E-Grocery email address was changed",
    text: [
      `Hello ${to.displayName},`,
      "",
      `the email address of your account was changed to ${to.newEmail}. Mail about your account goes there from now on.`,
      "",
      "If this was not you, contact us at once.",
    ].join("\n"),
  };
}
