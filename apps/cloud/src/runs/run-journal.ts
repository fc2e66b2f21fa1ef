import { Injectable } from '@nestjs/common';
import { PinoLogger } from 'nestjs-pino';
import { type Actor, AuditService, SYSTEM_ACTOR } from '../audit/audit.service.js';
import type { RunRow } from './runs.repository.js';

/** A run in the API and the logs: ids, names and counts — never row data. */
export function runSummary(run: RunRow) {
  return {
    runId: run.id,
    school: run.school.urn,
    extract: run.extractVersion.extract.name,
    version: run.extractVersion.version,
    state: run.state,
    attempt: run.attempt,
    trigger: run.trigger,
  };
}

/** The log line and audit entry of each run transition (ids, names, counts: never row data). */
@Injectable()
export class RunJournal {
  constructor(
    private readonly audit: AuditService,
    private readonly logger: PinoLogger,
  ) {
    logger.setContext('Runs');
  }

  /** Logs and audits a transition already written (also used when a run is created). */
  async record(run: RunRow, actor: Actor = SYSTEM_ACTOR, details: Record<string, unknown> = {}) {
    const facts = {
      ...runSummary(run),
      ...(run.rowCount !== null ? { rows: run.rowCount } : {}),
      ...(run.insertCount !== null
        ? { inserts: run.insertCount, updates: run.updateCount, deletes: run.deleteCount }
        : {}),
      ...(run.errorCode ? { errorCode: run.errorCode } : {}),
      ...(run.waitReason ? { waitReason: run.waitReason } : {}),
    };
    const level = run.state === 'FAILED' || run.state === 'MISSED' ? 'warn' : 'info';
    this.logger[level](
      { ...facts, ...details, ...(run.errorMessage && level === 'warn' ? { error: run.errorMessage } : {}) },
      `run ${run.state.toLowerCase()}`,
    );
    await this.audit.record(actor, {
      action: `run.${run.state.toLowerCase()}`,
      partnerId: run.partnerId,
      schoolId: run.schoolId,
      targetType: 'run',
      targetId: run.id,
      details: { ...facts, ...details },
    });
  }
}
