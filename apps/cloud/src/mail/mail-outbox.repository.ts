import { Injectable } from '@nestjs/common';
import { PrismaProvider } from '../database/prisma.provider.js';

/**
 * Outgoing mail is written to an outbox table for a sender to deliver (SMTP delivery is an operations
 * concern, configured per deployment). Bodies carry one-time links: they are never logged.
 */
@Injectable()
export class MailOutbox {
  constructor(private readonly prisma: PrismaProvider) {}

  async enqueue(mail: { to: string; subject: string; body: string }): Promise<void> {
    await this.prisma.client.mailOutbox.create({ data: mail });
  }
}
