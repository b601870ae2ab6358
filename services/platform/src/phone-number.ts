/**
 * The E.164 form of a phone number the schema's `grocery.validate.v1.phone_number` rule accepted: spaces, dots,
 * dashes and brackets between the digits dropped ("+49 (151) 123-45678" → "+4915112345678"); a value with
 * nothing else is empty. Every service stores phone numbers in this one form.
 */
export function normalisePhoneNumber(raw: string): string {
  return raw.replace(/[\s().-]/g, "");
}
