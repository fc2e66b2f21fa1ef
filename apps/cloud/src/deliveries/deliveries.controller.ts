import { pipeline } from 'node:stream/promises';
import { Body, Controller, Get, HttpCode, Param, Post, Put, Query, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiOperation, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { z } from 'zod';
import type { Actor } from '../audit/audit.service.js';
import { CurrentActor, Policy } from '../auth/policy.js';
import { openApiSchema, Uuid, ZodPipe } from '../common/zod-pipe.js';
import { DeliveryService } from './delivery.service.js';

const partner = { kind: 'partner', param: 'partnerId' } as const;
const READERS = ['partner_admin', 'partner_developer', 'support'] as const;

const ListQuery = z.strictObject({
  schoolId: Uuid.optional(),
  runId: Uuid.optional(),
  state: z.enum(['PENDING', 'HELD', 'DELIVERED', 'FAILED', 'DEAD_LETTER', 'DISCARDED']).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
});
type ListQueryInput = z.infer<typeof ListQuery>;
const FeedQuery = z.strictObject({
  schoolId: Uuid.optional(),
  after: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(500).default(100),
});
type FeedQueryInput = z.infer<typeof FeedQuery>;
const Ack = z.strictObject({ upTo: z.number().int().min(1), schoolId: Uuid.optional() });
const Webhook = z.strictObject({ url: z.url().max(2000) });

@ApiTags('deliveries')
@ApiBearerAuth()
@Controller('partners/:partnerId')
export class DeliveriesController {
  constructor(private readonly deliveries: DeliveryService) {}

  @Get('deliveries')
  @Policy({ roles: READERS, tenant: partner, scopes: ['deliveries:read'] })
  @ApiOperation({ summary: 'Change sets with their outcome (pending, held, delivered, dead letter …).' })
  list(
    @Param('partnerId', new ZodPipe(Uuid)) partnerId: string,
    @Query(new ZodPipe(ListQuery)) q: ListQueryInput,
  ) {
    return this.deliveries.list(partnerId, q, q.limit);
  }

  @Get('feed')
  @Policy({ roles: READERS, tenant: partner, scopes: ['deliveries:read'] })
  @ApiOperation({ summary: 'The pull feed: change sets after the cursor `after`, oldest first.' })
  feed(
    @Param('partnerId', new ZodPipe(Uuid)) partnerId: string,
    @Query(new ZodPipe(FeedQuery)) q: FeedQueryInput,
  ) {
    return this.deliveries.feed(partnerId, {
      after: q.after,
      limit: q.limit,
      ...(q.schoolId ? { schoolId: q.schoolId } : {}),
    });
  }

  @Post('feed/ack')
  @HttpCode(200)
  @Policy({ roles: READERS, tenant: partner, scopes: ['deliveries:read'] })
  @ApiOperation({ summary: 'Acknowledge the feed up to a cursor: those change sets count as delivered.' })
  @ApiBody({ schema: openApiSchema(Ack) })
  ack(
    @Param('partnerId', new ZodPipe(Uuid)) partnerId: string,
    @Body(new ZodPipe(Ack)) body: z.infer<typeof Ack>,
    @CurrentActor() actor: Actor,
  ) {
    return this.deliveries.ack(partnerId, body.upTo, body.schoolId, actor);
  }

  @Get('deliveries/:deliveryId/content')
  @Policy({ roles: READERS, tenant: partner, scopes: ['deliveries:read'] })
  @ApiOperation({ summary: 'The encoded change set (its Keystage-Idempotency-Key header names it).' })
  async content(
    @Param('partnerId', new ZodPipe(Uuid)) partnerId: string,
    @Param('deliveryId', new ZodPipe(Uuid)) deliveryId: string,
    @CurrentActor() actor: Actor,
    @Res() res: Response,
  ) {
    const { contentType, idempotencyKey, stream } = await this.deliveries.content(
      partnerId,
      deliveryId,
      actor,
    );
    res
      .status(200)
      .setHeader('content-type', contentType)
      .setHeader('keystage-idempotency-key', idempotencyKey);
    await pipeline(stream, res);
  }

  @Post('deliveries/:deliveryId/release')
  @HttpCode(200)
  @Policy({ roles: ['partner_admin', 'support'], tenant: partner, scopes: ['deliveries:read'] })
  @ApiOperation({ summary: 'Release a held change set (too many deletes/changes) for delivery.' })
  release(
    @Param('partnerId', new ZodPipe(Uuid)) partnerId: string,
    @Param('deliveryId', new ZodPipe(Uuid)) deliveryId: string,
    @CurrentActor() actor: Actor,
  ) {
    return this.deliveries.release(partnerId, deliveryId, actor);
  }

  @Post('deliveries/:deliveryId/discard')
  @HttpCode(200)
  @Policy({ roles: ['partner_admin', 'support'], tenant: partner, scopes: ['deliveries:read'] })
  @ApiOperation({ summary: 'Discard a held or dead-lettered change set (a resync sends everything again).' })
  discard(
    @Param('partnerId', new ZodPipe(Uuid)) partnerId: string,
    @Param('deliveryId', new ZodPipe(Uuid)) deliveryId: string,
    @CurrentActor() actor: Actor,
  ) {
    return this.deliveries.discard(partnerId, deliveryId, actor);
  }

  @Post('deliveries/:deliveryId/redeliver')
  @HttpCode(200)
  @Policy({ roles: ['partner_admin', 'support'], tenant: partner, scopes: ['deliveries:read'] })
  @ApiOperation({ summary: 'Send a webhook or file change set again (same idempotency key).' })
  redeliver(
    @Param('partnerId', new ZodPipe(Uuid)) partnerId: string,
    @Param('deliveryId', new ZodPipe(Uuid)) deliveryId: string,
    @CurrentActor() actor: Actor,
  ) {
    return this.deliveries.redeliver(partnerId, deliveryId, actor);
  }

  @Put('webhook')
  @Policy({ roles: ['partner_admin', 'support'], tenant: partner })
  @ApiOperation({ summary: 'Set the webhook URL; the signing secret is returned once, when first created.' })
  @ApiBody({ schema: openApiSchema(Webhook) })
  setWebhook(
    @Param('partnerId', new ZodPipe(Uuid)) partnerId: string,
    @Body(new ZodPipe(Webhook)) body: z.infer<typeof Webhook>,
    @CurrentActor() actor: Actor,
  ) {
    return this.deliveries.setWebhook(partnerId, body.url, actor);
  }

  @Post('webhook/rotate-secret')
  @HttpCode(200)
  @Policy({ roles: ['partner_admin', 'support'], tenant: partner })
  @ApiOperation({ summary: 'A new webhook signing secret (returned once); the previous one is retired.' })
  rotate(@Param('partnerId', new ZodPipe(Uuid)) partnerId: string, @CurrentActor() actor: Actor) {
    return this.deliveries.rotateSecret(partnerId, actor);
  }
}
