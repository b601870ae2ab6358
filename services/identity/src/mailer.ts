import { mkdir, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "@local-e-grocery/platform/logger.js";

/** A plain-text message; identity's mail has no attachments or HTML. */
export interface Mail {
  to: string;
  subject: string;
  text: string;
}

/** Delivers one message or throws; the outbox dispatcher retries failures. */
export interface Mailer {
  send(mail: Mail): Promise<void>;
  close?(): Promise<void>;
}

/**
 * Development transport: each message becomes an RFC 5322 `.eml` file under `dir` (written to a temporary name
 * and renamed, so readers never see half a file), and a log line says where.
 */
export function createFileMailer(options: { dir: string; from: string; logger: Logger; now?: () => number; newId: () => string }): Mailer {
  const now = options.now ?? Date.now;
  let ready: Promise<unknown> | undefined;
  return {
    async send(mail) {
      ready ??= mkdir(options.dir, { recursive: true });
      await ready;
      const id = options.newId();
      const date = new Date(now());
      const name = `${date.toISOString().replace(/[:.]/g, "-")}-${id}.eml`;
      const headers = [
        `From: ${options.from}`,
        `To: ${mail.to}`,
        `Subject: ${mail.subject}`,
        `Date: ${date.toUTCString()}`,
        `Message-ID: <${id}@grocery.local>`,
        "MIME-Version: 1.0",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Transfer-Encoding: 8bit",
      ];
      const path = join(options.dir, name);
      await writeFile(path + ".tmp", headers.join("\r\n") + "\r\n\r\n" + mail.text.replace(/\r?\n/g, "\r\n"), { mode: 0o600 });
      await rename(path + ".tmp", path);
      options.logger.info("mail written", { to: mail.to, subject: mail.subject, file: path });
    },
  };
}

/** SMTP transport through nodemailer; `url` is smtp://user:pass@host:587 (STARTTLS) or smtps://…:465. */
export async function createSmtpMailer(options: { url: string; from: string; logger: Logger }): Promise<Mailer> {
  const { createTransport } = await import("nodemailer");
  const transport = createTransport(options.url);
  return {
    async send(mail) {
      const info = await transport.sendMail({ from: options.from, to: mail.to, subject: mail.subject, text: mail.text });
      options.logger.info("mail sent", { to: mail.to, subject: mail.subject, message_id: info.messageId });
    },
    async close() {
      transport.close();
    },
  };
}
