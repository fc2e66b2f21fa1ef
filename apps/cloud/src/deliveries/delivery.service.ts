import { createHmac } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { decrypt, deriveKey, encrypt } from '@keystage/crypto';
import { generateWebhookSecret, WebhookHeader } from '@keystage/formats';
import { Inject, Injectable } from '@nestjs/common';
import { PinoLogger } from 'nestjs-pino';
import { type Actor, AuditService, SYSTEM_ACTOR } from '../audit/audit.service.js';
import { AppError } from '../common/app-error.js';
import { CLOUD_CONFIG } from '../config/config.js';
import type { CloudConfig } from '../config/config.schema.js';
import { PrismaProvider } from '../database/prisma.provider.js';
import { ResultStore } from '../results/result-store.js';
import { RunLifecycle } from '../runs/run-lifecycle.js';
import { DeliveryQueue } from './delivery-queue.js';

/** A failed attempt that is worth retrying (the queue retries with backoff). */
export class RetryableDeliveryError extends Error {}

const DELIVERY_SELECT = {
  id: true,
  seq: true,
  runId: true,
  partnerId: true,
  schoolId: true,
  extractId: true,
  datasetName: true,
  sink: true,
  format: true,
  state: true,
  idempotencyKey: true,
  contentType: true,
  byteSize: true,
  fullLoad: true,
  insertCount: true,
  updateCount: true,
  deleteCount: true,
  attempts: true,
  lastError: true,
  holdReason: true,
  deliveredAt: true,
  ackedAt: true,
  createdAt: true,
} as const;

type DeliveryRow = {
  id: string;
  seq: bigint;
  byteSize: bigint | null;
  [k: string]: unknown;
};

export function deliveryView<T extends DeliveryRow>(d: T) {
  return { ...d, seq: Number(d.seq), byteSize: d.byteSize === null ? null : Number(d.byteSize) };
}

/**
 * Change sets on their way to partners. Webhook: POST of the encoded change set with an HMAC-SHA256
 * signature over `<timestamp>.<body>` (`Keystage-Signature: t=…,v1=…`, see docs/delivery-formats.md)
 * and the idempotency key, retried with exponential backoff, dead-lettered after the last attempt
 * (with an alert), redeliverable by hand. File drop: written atomically under FILE_DROP_DIR. Pull:
 * a cursor feed per partner that the partner acknowledges. Every attempt's outcome is recorded.
 */
@Injectable()
export class DeliveryService {
  private readonly kek: Buffer;

  constructor(
    private readonly prisma: PrismaProvider,
    private readonly results: ResultStore,
    private readonly queue: DeliveryQueue,
    private readonly lifecycle: RunLifecycle,
    private readonly audit: AuditService,
    private readonly logger: PinoLogger,
    @Inject(CLOUD_CONFIG) private readonly config: CloudConfig,
  ) {
    logger.setContext('Delivery');
    this.kek = deriveKey(Buffer.from(config.secret, 'utf8'), 'webhook-secrets');
  }

  // ─── Sending ───────────────────────────────────────────────────────────────

  /** One attempt. Throws RetryableDeliveryError when the queue should try again. */
  async send(deliveryId: string, attempt: number, lastAttempt: boolean): Promise<string> {
    const d = await this.prisma.client.delivery.findUnique({
      where: { id: deliveryId },
      include: {
        partner: { select: { slug: true, webhookUrl: true, webhookSecretEncrypted: true } },
        school: { select: { urn: true } },
        run: { select: { extractVersion: { select: { extract: { select: { name: true } } } } } },
      },
    });
    if (!d) return 'gone';
    if (d.state !== 'PENDING' && d.state !== 'FAILED') return d.state.toLowerCase();
    try {
      if (d.sink === 'FILE') {
        const dir = join(
          this.config.fileDropDir,
          d.partner.slug,
          d.school.urn,
          d.run.extractVersion.extract.name,
        );
        await mkdir(dir, { recursive: true, mode: 0o700 });
        const name = `${d.createdAt.toISOString().replace(/[:.]/g, '-')}-${d.idempotencyKey}.${extension(d.format, d.contentType)}`;
        const tmp = join(dir, `.${name}.partial`);
        await pipeline(await this.contentOf(d), createWriteStream(tmp, { mode: 0o600 }));
        await rename(tmp, join(dir, name)).catch(async (err) => {
          await rm(tmp, { force: true });
          throw err;
        });
      } else if (d.sink === 'WEBHOOK') {
        if (!d.partner.webhookUrl || !d.partner.webhookSecretEncrypted) {
          throw new RetryableDeliveryError('the partner has no webhook configured');
        }
        const secret = this.openSecret(d.partner.webhookSecretEncrypted, d.partnerId);
        await this.post(d, d.partner.webhookUrl, secret);
      } else {
        return 'pull';
      }
    } catch (err) {
      const message = describe(err);
      const dead = lastAttempt;
      await this.prisma.client.delivery.update({
        where: { id: d.id },
        data: {
          attempts: { increment: 1 },
          lastError: message.slice(0, 500),
          state: dead ? 'DEAD_LETTER' : 'FAILED',
        },
      });
      if (dead) {
        this.logger.error(
          { deliveryId: d.id, runId: d.runId, partnerId: d.partnerId, attempts: attempt + 1, error: message },
          'ALERT: delivery dead-lettered after its last attempt',
        );
        await this.audit.record(SYSTEM_ACTOR, {
          action: 'delivery.dead_lettered',
          partnerId: d.partnerId,
          schoolId: d.schoolId,
          targetType: 'delivery',
          targetId: d.id,
          details: { attempts: attempt + 1, error: message.slice(0, 200) },
        });
        return 'dead_letter';
      }
      this.logger.warn(
        { deliveryId: d.id, attempt: attempt + 1, error: message },
        'delivery attempt failed; will retry',
      );
      throw new RetryableDeliveryError(message);
    }
    await this.prisma.client.delivery.update({
      where: { id: d.id },
      data: { state: 'DELIVERED', deliveredAt: new Date(), attempts: { increment: 1 }, lastError: null },
    });
    this.logger.info(
      {
        deliveryId: d.id,
        runId: d.runId,
        sink: d.sink,
        dataset: d.datasetName,
        inserts: d.insertCount,
        updates: d.updateCount,
        deletes: d.deleteCount,
      },
      'change set delivered',
    );
    await this.audit.record(SYSTEM_ACTOR, {
      action: 'delivery.delivered',
      partnerId: d.partnerId,
      schoolId: d.schoolId,
      targetType: 'delivery',
      targetId: d.id,
      details: {
        sink: d.sink,
        dataset: d.datasetName,
        inserts: d.insertCount,
        updates: d.updateCount,
        deletes: d.deleteCount,
        bytes: d.byteSize === null ? null : Number(d.byteSize),
      },
    });
    await this.completeRun(d.runId);
    return 'delivered';
  }

  private async post(
    d: {
      id: string;
      schoolId: string;
      objectKey: string;
      idempotencyKey: string;
      contentType: string;
      contentEncoding: string | null;
      byteSize: bigint | null;
    },
    url: string,
    secret: string,
  ): Promise<void> {
    // The signature needs the whole body first: stream it once through the HMAC, once to the wire.
    const timestamp = Math.floor(Date.now() / 1000);
    const hmac = createHmac('sha256', secret).update(`${timestamp}.`);
    const content = () => this.contentOf(d);
    for await (const part of await content()) hmac.update(part as Buffer);
    const stream = await content();
    const body = Readable.toWeb(stream) as ReadableStream;
    // A request that fails before reading the body leaves the stream open (and a full load's
    // written-out work file with it): it is closed whatever happens.
    const res = await fetch(url, {
      method: 'POST',
      headers: {
        'content-type': d.contentType,
        [WebhookHeader.Signature]: `t=${timestamp},v1=${hmac.digest('hex')}`,
        [WebhookHeader.IdempotencyKey]: d.idempotencyKey,
        [WebhookHeader.DeliveryId]: d.id,
        'user-agent': 'Keystage-Webhook/1',
      },
      body,
      duplex: 'half',
      redirect: 'manual',
      signal: AbortSignal.timeout(this.config.delivery.webhookTimeoutMs),
    } as RequestInit).finally(() => stream.destroy());
    await res.body?.cancel().catch(() => undefined);
    if (res.status < 200 || res.status >= 300) throw new Error(`the webhook answered HTTP ${res.status}`);
  }

  /**
   * A change set's content as delivered. One kept as its snapshot (a full load) is written out as it
   * is read: its size is recorded the first time it is read to the end.
   */
  private async contentOf(d: {
    id: string;
    schoolId: string;
    objectKey: string;
    contentEncoding: string | null;
    byteSize: bigint | null;
  }): Promise<Readable> {
    const content = await this.results.getContent(d.schoolId, d.objectKey, d.contentEncoding);
    if (d.byteSize !== null) return content;
    let size = 0;
    const prisma = this.prisma.client;
    const counted = new Transform({
      transform(part: Buffer, _enc, done) {
        size += part.length;
        done(null, part);
      },
      flush(done) {
        prisma.delivery
          .updateMany({ where: { id: d.id, byteSize: null }, data: { byteSize: BigInt(size) } })
          .then(
            () => done(),
            () => done(),
          );
      },
    });
    pipeline(content, counted).catch(() => undefined);
    return counted;
  }

  /** A processed run whose change sets are all delivered (or discarded) is delivered. */
  async completeRun(runId: string): Promise<void> {
    const open = await this.prisma.client.delivery.count({
      where: { runId, state: { notIn: ['DELIVERED', 'DISCARDED'] } },
    });
    if (open > 0) return;
    await this.lifecycle.move(runId, ['PROCESSED'], 'DELIVERED');
  }

  // ─── Partner actions ──────────────────────────────────────────────────────

  list(partnerId: string, filter: { schoolId?: string; state?: string; runId?: string }, limit: number) {
    return this.prisma.client.delivery
      .findMany({
        where: {
          partnerId,
          ...(filter.schoolId ? { schoolId: filter.schoolId } : {}),
          ...(filter.runId ? { runId: filter.runId } : {}),
          ...(filter.state ? { state: filter.state as never } : {}),
        },
        select: DELIVERY_SELECT,
        orderBy: { seq: 'desc' },
        take: limit,
      })
      .then((rows) => rows.map(deliveryView));
  }

  /** The pull feed: change sets for pull after `after`, oldest first. */
  async feed(partnerId: string, query: { schoolId?: string; after: number; limit: number }) {
    const rows = await this.prisma.client.delivery.findMany({
      where: {
        partnerId,
        sink: 'PULL',
        state: { in: ['PENDING', 'DELIVERED'] },
        seq: { gt: BigInt(query.after) },
        ...(query.schoolId ? { schoolId: query.schoolId } : {}),
      },
      select: DELIVERY_SELECT,
      orderBy: { seq: 'asc' },
      take: query.limit,
    });
    const items = rows.map((d) => ({
      ...deliveryView(d),
      contentPath: `/partners/${partnerId}/deliveries/${d.id}/content`,
    }));
    return { items, cursor: items.length ? items[items.length - 1]!.seq : query.after };
  }

  /** The partner confirms it holds everything up to `upTo` in its feed. */
  async ack(partnerId: string, upTo: number, schoolId: string | undefined, actor: Actor) {
    const rows = await this.prisma.client.delivery.findMany({
      where: {
        partnerId,
        sink: 'PULL',
        state: 'PENDING',
        seq: { lte: BigInt(upTo) },
        ...(schoolId ? { schoolId } : {}),
      },
      select: { id: true, runId: true, schoolId: true },
    });
    if (rows.length === 0) return { acknowledged: 0 };
    const now = new Date();
    await this.prisma.client.delivery.updateMany({
      where: { id: { in: rows.map((r) => r.id) }, state: 'PENDING' },
      data: { state: 'DELIVERED', deliveredAt: now, ackedAt: now, attempts: { increment: 1 } },
    });
    await this.audit.record(actor, {
      action: 'delivery.acknowledged',
      partnerId,
      ...(schoolId ? { schoolId } : {}),
      targetType: 'feed',
      details: { upTo, count: rows.length },
    });
    for (const runId of new Set(rows.map((r) => r.runId))) await this.completeRun(runId);
    return { acknowledged: rows.length };
  }

  /** The encoded change set, decrypted, for the partner it belongs to. */
  async content(partnerId: string, deliveryId: string, actor: Actor) {
    const d = await this.prisma.client.delivery.findFirst({ where: { id: deliveryId, partnerId } });
    if (!d) throw AppError.notFound('delivery');
    if (d.state === 'HELD' || d.state === 'DISCARDED') {
      throw new AppError(
        'delivery.not_available',
        `a ${d.state.toLowerCase()} change set cannot be read`,
        409,
      );
    }
    await this.audit.record(actor, {
      action: 'delivery.content_read',
      partnerId,
      schoolId: d.schoolId,
      targetType: 'delivery',
      targetId: d.id,
      details: { bytes: d.byteSize === null ? null : Number(d.byteSize) },
    });
    return {
      contentType: d.contentType,
      idempotencyKey: d.idempotencyKey,
      stream: await this.contentOf(d),
    };
  }

  async release(partnerId: string, deliveryId: string, actor: Actor) {
    const d = await this.prisma.client.delivery.findFirst({ where: { id: deliveryId, partnerId } });
    if (!d) throw AppError.notFound('delivery');
    const { count } = await this.prisma.client.delivery.updateMany({
      where: { id: d.id, state: 'HELD' },
      data: { state: 'PENDING' },
    });
    if (count === 0)
      throw new AppError('delivery.invalid_state', 'only a held change set can be released', 409);
    await this.audit.record(actor, {
      action: 'delivery.released',
      partnerId,
      schoolId: d.schoolId,
      targetType: 'delivery',
      targetId: d.id,
      details: { reason: d.holdReason },
    });
    if (d.sink !== 'PULL') await this.queue.send(d.id, d.attempts + 1);
    return { id: d.id, state: 'PENDING' };
  }

  async discard(partnerId: string, deliveryId: string, actor: Actor) {
    const d = await this.prisma.client.delivery.findFirst({ where: { id: deliveryId, partnerId } });
    if (!d) throw AppError.notFound('delivery');
    const { count } = await this.prisma.client.delivery.updateMany({
      where: { id: d.id, state: { in: ['HELD', 'DEAD_LETTER'] } },
      data: { state: 'DISCARDED' },
    });
    if (count === 0) {
      throw new AppError(
        'delivery.invalid_state',
        'only a held or dead-lettered change set can be discarded',
        409,
      );
    }
    await this.audit.record(actor, {
      action: 'delivery.discarded',
      partnerId,
      schoolId: d.schoolId,
      targetType: 'delivery',
      targetId: d.id,
    });
    // The delta state has moved on: a discarded change set is gone for good (a resync resends all).
    await this.completeRun(d.runId);
    return { id: d.id, state: 'DISCARDED' };
  }

  async redeliver(partnerId: string, deliveryId: string, actor: Actor) {
    const d = await this.prisma.client.delivery.findFirst({ where: { id: deliveryId, partnerId } });
    if (!d) throw AppError.notFound('delivery');
    if (d.sink === 'PULL') {
      throw new AppError('delivery.invalid_state', 'a pull change set stays in the feed: read it again', 409);
    }
    const { count } = await this.prisma.client.delivery.updateMany({
      where: { id: d.id, state: { in: ['DEAD_LETTER', 'FAILED', 'DELIVERED'] } },
      data: { state: 'PENDING', lastError: null },
    });
    if (count === 0)
      throw new AppError(
        'delivery.invalid_state',
        `a ${d.state.toLowerCase()} change set cannot be redelivered`,
        409,
      );
    await this.audit.record(actor, {
      action: 'delivery.redelivery_requested',
      partnerId,
      schoolId: d.schoolId,
      targetType: 'delivery',
      targetId: d.id,
    });
    await this.queue.send(d.id, d.attempts + 1);
    return { id: d.id, state: 'PENDING' };
  }

  // ─── Webhook settings ─────────────────────────────────────────────────────

  async setWebhook(partnerId: string, url: string, actor: Actor) {
    const parsed = new URL(url);
    if (
      parsed.protocol !== 'https:' &&
      !(parsed.protocol === 'http:' && this.config.delivery.webhookAllowHttp)
    ) {
      throw new AppError('webhook.insecure_url', 'webhook URLs must use https', 422);
    }
    const partner = await this.prisma.client.partner.findUnique({ where: { id: partnerId } });
    if (!partner) throw AppError.notFound('partner');
    const secret = partner.webhookSecretEncrypted ? null : generateWebhookSecret();
    await this.prisma.client.partner.update({
      where: { id: partnerId },
      data: {
        webhookUrl: url,
        ...(secret ? { webhookSecretEncrypted: this.sealSecret(secret, partnerId) } : {}),
      },
    });
    await this.audit.record(actor, {
      action: 'webhook.configured',
      partnerId,
      details: { host: parsed.host },
    });
    return { url, ...(secret ? { secret } : {}) };
  }

  /** A new secret; the previous one stays on record for partners verifying during the switch. */
  async rotateSecret(partnerId: string, actor: Actor) {
    const partner = await this.prisma.client.partner.findUnique({ where: { id: partnerId } });
    if (!partner) throw AppError.notFound('partner');
    const secret = generateWebhookSecret();
    await this.prisma.client.partner.update({
      where: { id: partnerId },
      data: {
        webhookSecretEncrypted: this.sealSecret(secret, partnerId),
        webhookSecretPrevious: partner.webhookSecretEncrypted,
      },
    });
    await this.audit.record(actor, { action: 'webhook.secret_rotated', partnerId });
    return { secret };
  }

  private sealSecret(secret: string, partnerId: string): string {
    return encrypt(Buffer.from(secret, 'utf8'), this.kek, `webhook:${partnerId}`).toString('base64');
  }

  private openSecret(sealed: string, partnerId: string): string {
    return decrypt(Buffer.from(sealed, 'base64'), this.kek, `webhook:${partnerId}`).toString('utf8');
  }
}

function extension(format: string, contentType: string): string {
  if (contentType === 'application/json' && format === 'oneroster-csv') return 'json';
  return { ndjson: 'ndjson', json: 'json', csv: 'csv' }[format] ?? 'bin';
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    return cause?.code ? `${err.message} (${cause.code})` : err.message;
  }
  return String(err);
}
