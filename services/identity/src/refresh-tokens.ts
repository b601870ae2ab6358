import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from "node:crypto";

/** A new opaque refresh token: 256 random bits, base64url. Only its hash is stored. */
export function newRefreshToken(): { token: string; hash: string } {
  const token = randomBytes(32).toString("base64url");
  return { token, hash: hashRefreshToken(token) };
}

/** SHA-256 is right here: the token is high-entropy, so a slow hash would add nothing but latency. */
export function hashRefreshToken(token: string): string {
  return createHash("sha256").update(token).digest("base64url");
}

/*
 * The reuse grace window (RFC 9700 §4.14.2 allows one) must hand a client that presents a just-spent token the
 * successor it was already given, yet tokens are stored only as hashes. So the spent token's row keeps its
 * successor sealed under a key derived from the spent token itself: AES-256-GCM, the key HKDF-SHA256 of the
 * presented token (never stored; the stored SHA-256 hash is a different function of it and reveals nothing about
 * the key), the row's hash as associated data so a sealed value cannot be moved to another row. A copy of the
 * database therefore yields no usable token, and whoever can open the seal already holds the predecessor — the
 * one party the grace window means to answer. The seal is only honoured within the window and is erased once the
 * successor is spent or the window is over (housekeeping), so a predecessor that leaks later opens nothing.
 */
const SEAL_INFO = "grocery identity refresh-token successor v1";

function sealKey(token: string): Buffer {
  return Buffer.from(hkdfSync("sha256", Buffer.from(token, "utf8"), Buffer.alloc(0), SEAL_INFO, 32));
}

/** Seals `successor` so that only the holder of `token` can recover it; base64url of iv ‖ ciphertext ‖ tag. */
export function sealSuccessor(token: string, tokenHash: string, successor: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", sealKey(token), iv);
  cipher.setAAD(Buffer.from(tokenHash, "utf8"));
  const body = Buffer.concat([cipher.update(successor, "utf8"), cipher.final()]);
  return Buffer.concat([iv, body, cipher.getAuthTag()]).toString("base64url");
}

/** The successor sealed by `sealSuccessor` for `token`, or undefined when the seal does not open. */
export function openSuccessor(token: string, tokenHash: string, sealed: string): string | undefined {
  const raw = Buffer.from(sealed, "base64url");
  if (raw.length < 12 + 16 + 1) return undefined;
  try {
    const decipher = createDecipheriv("aes-256-gcm", sealKey(token), raw.subarray(0, 12));
    decipher.setAAD(Buffer.from(tokenHash, "utf8"));
    decipher.setAuthTag(raw.subarray(raw.length - 16));
    return Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]).toString("utf8");
  } catch {
    return undefined;
  }
}
