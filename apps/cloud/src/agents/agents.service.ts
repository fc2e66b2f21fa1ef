import { generateToken, hashToken, TokenPrefix } from '@keystage/crypto';
import { Injectable } from '@nestjs/common';
import { type Actor, AuditService } from '../audit/audit.service.js';
import { AppError } from '../common/app-error.js';
import { AgentPresence } from './agent-presence.js';
import { type AgentRecord, AgentsRepository } from './agents.repository.js';
import { PlatformKeysService } from './platform-keys.service.js';

export interface AgentView {
  id: string;
  schoolId: string;
  status: AgentRecord['status'];
  online: boolean;
  supervised: boolean;
  hostname: string | null;
  version: string | null;
  os: string | null;
  misKind: string | null;
  misVersion: string | null;
  lastSeenAt: Date | null;
  lastHeartbeat: unknown;
  enrolledAt: Date;
  revokedAt: Date | null;
  revokedReason: string | null;
}

export interface EnrolmentResult {
  agentId: string;
  schoolId: string;
  /** The control plane's job-signing key: the agent pins it and refuses jobs signed by any other. */
  jobSigningKey: { keyId: string; publicKey: string };
  /** The key the agent wraps each run's data key for. */
  resultKey: { keyId: string; publicKey: string };
  /** Path of the agents' WebSocket on the control plane. */
  gatewayPath: string;
}

const DEFAULT_TOKEN_HOURS = 24;

@Injectable()
export class AgentsService {
  constructor(
    private readonly repo: AgentsRepository,
    private readonly keys: PlatformKeysService,
    private readonly presence: AgentPresence,
    private readonly audit: AuditService,
  ) {}

  async createEnrolmentToken(schoolId: string, expiresInHours: number | undefined, actor: Actor) {
    const token = generateToken(TokenPrefix.Enrolment);
    const row = await this.repo.createEnrolmentToken(schoolId, {
      tokenHash: hashToken(token),
      expiresAt: new Date(Date.now() + (expiresInHours ?? DEFAULT_TOKEN_HOURS) * 3600_000),
      createdById: actor.type === 'USER' ? actor.id : null,
    });
    await this.audit.record(actor, {
      action: 'agent.enrolment_token_created',
      schoolId,
      targetType: 'enrolment_token',
      targetId: row.id,
      details: { expiresAt: row.expiresAt.toISOString() },
    });
    return { token, expiresAt: row.expiresAt };
  }

  async enrol(
    input: {
      token: string;
      publicKey: string;
      hostname?: string | undefined;
      version: string;
      os: string;
      misKind: string;
    },
    actor: Actor,
  ): Promise<EnrolmentResult> {
    const result = await this.repo.enrol(hashToken(input.token), new Date(), {
      publicKey: input.publicKey,
      hostname: input.hostname ?? null,
      version: input.version,
      os: input.os,
      misKind: input.misKind,
    });
    if (!result)
      throw new AppError(
        'agent.invalid_enrolment_token',
        'enrolment token is not valid (unknown, used or expired)',
        400,
      );
    const { agent, replaced } = result;
    for (const old of replaced) {
      await this.presence.route({
        kind: 'disconnect',
        agentId: old,
        code: 'agent.unknown',
        message: 'this agent was replaced by a new enrolment',
      });
    }
    await this.audit.record(
      { ...actor, type: 'AGENT', id: agent.id },
      {
        action: 'agent.enrolled',
        schoolId: agent.schoolId,
        targetType: 'agent',
        targetId: agent.id,
        details: { replaced, version: input.version, misKind: input.misKind },
      },
    );
    const [signing, wrapping] = await Promise.all([
      this.keys.active('job-signing'),
      this.keys.active('result-wrapping'),
    ]);
    return {
      agentId: agent.id,
      schoolId: agent.schoolId,
      jobSigningKey: { keyId: signing.keyId, publicKey: signing.publicKey },
      resultKey: { keyId: wrapping.keyId, publicKey: wrapping.publicKey },
      gatewayPath: '/agent',
    };
  }

  async listForSchool(schoolId: string): Promise<AgentView[]> {
    return this.withPresence(await this.repo.listForSchool(schoolId));
  }

  async listFleet(status: AgentRecord['status'] | undefined, limit: number): Promise<AgentView[]> {
    return this.withPresence(await this.repo.listFleet({ ...(status ? { status } : {}), limit }));
  }

  async revoke(schoolId: string, agentId: string, reason: string, actor: Actor): Promise<AgentView> {
    const agent = await this.repo.revoke(schoolId, agentId, reason, new Date());
    if (!agent) throw AppError.notFound('agent');
    await this.presence.route({
      kind: 'disconnect',
      agentId,
      code: 'agent.revoked',
      message: `this agent was revoked: ${reason}`,
    });
    await this.audit.record(actor, {
      action: 'agent.revoked',
      schoolId,
      targetType: 'agent',
      targetId: agentId,
      details: { reason },
    });
    const [view] = await this.withPresence([agent]);
    return view!;
  }

  private async withPresence(agents: AgentRecord[]): Promise<AgentView[]> {
    const online = await this.presence.onlineSet(
      agents.filter((a) => a.status === 'ACTIVE').map((a) => a.id),
    );
    return agents.map(({ publicKey: _publicKey, ...a }) => ({ ...a, online: online.has(a.id) }));
  }
}
