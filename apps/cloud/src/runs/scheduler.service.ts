import { canonicalJson, sha256Hex } from '@keystage/crypto';
import { Prisma } from '@keystage/db';
import type { ExtractDocument } from '@keystage/extract-spec';
import {
  type NormalisedSchedule,
  parseCalendar,
  parseSchedule,
  planNext,
  type SchoolCalendar,
} from '@keystage/schedule';
import { Injectable } from '@nestjs/common';
import { PinoLogger } from 'nestjs-pino';
import { type Actor, SYSTEM_ACTOR } from '../audit/audit.service.js';
import { AppError } from '../common/app-error.js';
import { PrismaProvider } from '../database/prisma.provider.js';
import { RunJournal } from './run-journal.js';
import { PRIORITY, RunQueue } from './run-queue.js';
import { type RunRow, RunsRepository } from './runs.repository.js';

/** When an extract names no schedule: once a night, spread over 01:00–05:00. */
export const DEFAULT_SCHEDULE = {
  windows: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], from: '01:00', to: '05:00' }],
  frequency: 'P1D',
} as const;

/** How long an "as soon as possible" run may wait for the agent. */
const ASAP_DEADLINE_MS = 6 * 3600_000;

export const NO_PARAMS_HASH = sha256Hex(canonicalJson({}));

/** The schedule normalised, or a 422 with every problem. The raw form is what is stored. */
function validSpec(input: unknown): NormalisedSchedule {
  const parsed = parseSchedule(input);
  if (!parsed.ok) {
    throw new AppError('schedule.invalid', 'the schedule is not valid', 422, parsed.problems);
  }
  return parsed.schedule;
}

/**
 * Schedules and their runs. Each (agreement, extract) has one schedule; each schedule has at most
 * one open run at a time, for its next slot. Placement inside a window is a stable pseudo-random
 * offset from the (school, extract) ids plus a small deterministic jitter (`@keystage/schedule`),
 * so the fleet spreads evenly and a re-plan after a restart lands on the same slot and instant —
 * the slot id is unique per schedule, which makes planning idempotent.
 */
@Injectable()
export class SchedulerService {
  constructor(
    private readonly prisma: PrismaProvider,
    private readonly repo: RunsRepository,
    private readonly queue: RunQueue,
    private readonly journal: RunJournal,
    private readonly logger: PinoLogger,
  ) {
    logger.setContext(SchedulerService.name);
  }

  /** After approval: a schedule per extract of the agreement, the next runs, and "asap" runs. */
  async onAgreementApproved(agreementId: string, actor: Actor = SYSTEM_ACTOR): Promise<void> {
    const agreement = await this.prisma.client.dataAgreement.findUnique({
      where: { id: agreementId },
      include: { extractVersions: { include: { extractVersion: true } } },
    });
    if (agreement?.status !== 'APPROVED') return;
    for (const { extractVersion } of agreement.extractVersions) {
      const doc = extractVersion.document as unknown as ExtractDocument;
      const existing = await this.prisma.client.schedule.findUnique({
        where: { agreementId_extractId: { agreementId, extractId: extractVersion.extractId } },
      });
      const raw = existing?.override ?? doc.schedule ?? DEFAULT_SCHEDULE;
      const spec = validSpec(raw);
      const schedule = await this.prisma.client.schedule.upsert({
        where: { agreementId_extractId: { agreementId, extractId: extractVersion.extractId } },
        create: {
          agreementId,
          extractId: extractVersion.extractId,
          schoolId: agreement.schoolId,
          spec: raw as unknown as Prisma.InputJsonValue,
        },
        update: { spec: raw as unknown as Prisma.InputJsonValue, active: true },
      });
      await this.planSchedule(schedule.id);
      if (spec.asap) {
        const now = new Date();
        await this.createRun(
          {
            partnerId: agreement.partnerId,
            schoolId: agreement.schoolId,
            agreementId,
            extractVersionId: extractVersion.id,
            trigger: 'APPROVAL',
            dueAt: now,
            deadlineAt: new Date(now.getTime() + ASAP_DEADLINE_MS),
          },
          actor,
        );
      }
    }
  }

  /**
   * Plans a schedule's next run, unless it has an open one. The next slot starts after the later of
   * now and the end of the slot of its last run, so a slot is never filled twice.
   */
  async planSchedule(scheduleId: string): Promise<RunRow | null> {
    const schedule = await this.prisma.client.schedule.findUnique({
      where: { id: scheduleId },
      include: {
        school: { select: { calendar: true } },
        agreement: { select: { status: true, partnerId: true } },
      },
    });
    if (!schedule?.active || schedule.agreement.status !== 'APPROVED') return null;
    const open = await this.prisma.client.run.findFirst({
      where: { scheduleId, state: { in: ['SCHEDULED', 'DISPATCHED', 'RUNNING', 'UPLOADED', 'PROCESSED'] } },
      select: { id: true },
    });
    if (open) return null;
    const last = await this.prisma.client.run.findFirst({
      where: { scheduleId },
      orderBy: { deadlineAt: 'desc' },
      select: { deadlineAt: true },
    });
    const now = new Date();
    const after = last && last.deadlineAt > now ? last.deadlineAt : now;
    const spec = validSpec(schedule.spec);
    const calendar = this.calendarOf(schedule.school.calendar);
    const next = planNext(spec, {
      after,
      seed: `${schedule.schoolId}:${schedule.extractId}`,
      ...(calendar ? { calendar } : {}),
    });
    if (!next) {
      await this.prisma.client.schedule.update({ where: { id: scheduleId }, data: { nextDueAt: null } });
      this.logger.warn({ scheduleId }, 'schedule has no occurrence within a year');
      return null;
    }
    const version = await this.versionFor(schedule.agreementId, schedule.extractId);
    if (!version) return null;
    const run = await this.createRun({
      partnerId: schedule.agreement.partnerId,
      schoolId: schedule.schoolId,
      agreementId: schedule.agreementId,
      extractVersionId: version,
      scheduleId,
      occurrenceId: next.occurrenceId,
      trigger: 'SCHEDULED',
      dueAt: next.dueAt,
      deadlineAt: next.slotEnd,
    });
    await this.prisma.client.schedule.update({ where: { id: scheduleId }, data: { nextDueAt: next.dueAt } });
    return run;
  }

  /** After a run ends: its schedule's next run. */
  async planAfter(run: RunRow): Promise<void> {
    if (!run.scheduleId) return;
    await this.planSchedule(run.scheduleId).catch((err: unknown) => {
      this.logger.error({ err, scheduleId: run.scheduleId }, 'could not plan the next run (the sweep will)');
    });
  }

  /**
   * Sets or clears an agreement's own schedule for one extract and re-plans at once: the waiting
   * run of the old schedule is cancelled and the next slot of the new one planned.
   */
  async setOverride(
    partnerId: string,
    agreementId: string,
    extractId: string,
    input: unknown | null,
    actor: Actor,
  ) {
    const schedule = await this.prisma.client.schedule.findFirst({
      where: { agreementId, extractId, agreement: { partnerId } },
      include: { extract: { select: { id: true } } },
    });
    if (!schedule) throw AppError.notFound('schedule');
    const version = await this.prisma.client.extractVersion.findFirst({
      where: { extractId, agreements: { some: { agreementId } } },
      orderBy: { version: 'desc' },
    });
    const doc = version?.document as unknown as ExtractDocument | undefined;
    if (input !== null) validSpec(input);
    const raw = input ?? doc?.schedule ?? DEFAULT_SCHEDULE;
    validSpec(raw);
    await this.prisma.client.schedule.update({
      where: { id: schedule.id },
      data: {
        override: input === null ? Prisma.DbNull : (input as Prisma.InputJsonValue),
        spec: raw as unknown as Prisma.InputJsonValue,
      },
    });
    const waiting = await this.prisma.client.run.findMany({
      where: { scheduleId: schedule.id, state: 'SCHEDULED' },
      select: { id: true },
    });
    for (const w of waiting) {
      const cancelled = await this.repo.transition(w.id, ['SCHEDULED'], 'CANCELLED', {
        finishedAt: new Date(),
        errorCode: 'schedule.changed',
        errorMessage: 'the schedule changed; the run was re-planned',
      });
      if (cancelled) await this.journal.record(cancelled, actor);
    }
    const next = await this.planSchedule(schedule.id);
    return {
      scheduleId: schedule.id,
      spec: raw,
      override: input,
      nextRun: next ? { id: next.id, dueAt: next.dueAt } : null,
    };
  }

  /** Creates a run (with its jobs), records it and sets its timer. */
  async createRun(
    input: {
      partnerId: string;
      schoolId: string;
      agreementId: string;
      extractVersionId: string;
      scheduleId?: string;
      occurrenceId?: string;
      trigger: 'SCHEDULED' | 'MANUAL' | 'RESYNC' | 'APPROVAL';
      dueAt: Date;
      deadlineAt: Date;
      resync?: boolean;
    },
    actor: Actor = SYSTEM_ACTOR,
  ): Promise<RunRow> {
    const version = await this.prisma.client.extractVersion.findUniqueOrThrow({
      where: { id: input.extractVersionId },
      select: { document: true },
    });
    const doc = version.document as unknown as ExtractDocument;
    const { run, created } = await this.repo.create({
      ...input,
      params: {},
      paramsHash: NO_PARAMS_HASH,
      datasets: doc.datasets.map((d) => d.name),
    });
    if (created) await this.journal.record(run, actor);
    const manual = input.trigger !== 'SCHEDULED';
    await this.queue.tryKick(run.id, run.dueAt, manual ? PRIORITY.manual : PRIORITY.scheduled);
    return run;
  }

  /** The extract version a scheduled run uses: the newest one the agreement approved. */
  private async versionFor(agreementId: string, extractId: string): Promise<string | null> {
    const approved = await this.prisma.client.agreementExtractVersion.findFirst({
      where: { agreementId, extractVersion: { extractId } },
      orderBy: { extractVersion: { version: 'desc' } },
      select: { extractVersionId: true },
    });
    return approved?.extractVersionId ?? null;
  }

  private calendarOf(value: unknown): SchoolCalendar | undefined {
    if (value === null || value === undefined) return undefined;
    const parsed = parseCalendar(value);
    return parsed.ok ? parsed.calendar : undefined;
  }
}
