// Sending a notification mail: through an SMTP relay, or the local sendmail
// (run through the exec seam, like every other program).

import { hostname } from 'node:os';
import { createTransport } from 'nodemailer';
import type { EmailConfig } from '../model/config.js';
import type { Runner } from './exec.js';

export async function sendMail(runner: Runner, email: EmailConfig, subject: string, text: string): Promise<void> {
  const message = { from: email.from, to: [...email.to], subject, text };
  if (email.smtp) {
    const transport = createTransport({ host: email.smtp.host, port: email.smtp.port, secure: false, connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: 20_000 });
    await transport.sendMail(message);
    return;
  }
  // Build the RFC 5322 message without sending, then hand it to sendmail.
  const built = await createTransport({ streamTransport: true, buffer: true, newline: 'unix' }).sendMail(message);
  await runner.run(['/usr/sbin/sendmail', '-t', '-i'], { input: (built.message as Buffer).toString('utf8'), timeoutMs: 20_000 });
}

/** The gateway's name, as mails name the sender's machine. */
export function gatewayName(): string {
  return hostname();
}
