import { Injectable } from '@nestjs/common';
import { PrismaProvider } from '../database/prisma.provider.js';

export type AgentStatus = 'ACTIVE' | 'REPLACED' | 'REVOKED';

export interface AgentRecord {
  id: string;
  schoolId: string;
  publicKey: string;
  status: AgentStatus;
  hostname: string | null;
  version: string | null;
  os: string | null;
  misKind: string | null;
  misVersion: string | null;
  supervised: boolean;
  lastHeartbeat: unknown;
  lastSeenAt: Date | null;
  enrolledAt: Date;
  revokedAt: Date | null;
  revokedReason: string | null;
}

export interface HeartbeatUpdate {
  agentId: string;
  at: Date;
  version: string;
  os: string;
  misKind: string;
  misVersion: string | null;
  supervised: boolean;
  heartbeat: Record<string, unknown>;
}

const AGENT = {
  id: true,
  schoolId: true,
  publicKey: true,
  status: true,
  hostname: true,
  version: true,
  os: true,
  misKind: true,
  misVersion: true,
  supervised: true,
  lastHeartbeat: true,
  lastSeenAt: true,
  enrolledAt: true,
  revokedAt: true,
  revokedReason: true,
} as const;

/** Agents and enrolment tokens. School-facing reads and writes always name the school. */
@Injectable()
export class AgentsRepository {
  constructor(private readonly prisma: PrismaProvider) {}

  async createEnrolmentToken(
    schoolId: string,
    data: { tokenHash: string; expiresAt: Date; createdById: string | null },
  ) {
    return this.prisma.client.enrolmentToken.create({
      data: { schoolId, ...data },
      select: { id: true, expiresAt: true },
    });
  }

  /**
   * Uses a token once and enrols the agent in one transaction: the school's previous active agents
   * become REPLACED. Null when the token is unknown, used or expired.
   */
  async enrol(
    tokenHash: string,
    now: Date,
    agent: { publicKey: string; hostname: string | null; version: string; os: string; misKind: string },
  ): Promise<{ agent: AgentRecord; replaced: string[] } | null> {
    return this.prisma.client.$transaction(async (tx) => {
      const token = await tx.enrolmentToken.findUnique({ where: { tokenHash } });
      if (!token || token.usedAt || token.expiresAt <= now) return null;
      const claimed = await tx.enrolmentToken.updateMany({
        where: { id: token.id, usedAt: null },
        data: { usedAt: now },
      });
      if (claimed.count !== 1) return null;
      const previous = await tx.agent.findMany({
        where: { schoolId: token.schoolId, status: 'ACTIVE' },
        select: { id: true },
      });
      await tx.agent.updateMany({
        where: { schoolId: token.schoolId, status: 'ACTIVE' },
        data: { status: 'REPLACED', revokedAt: now, revokedReason: 're-enrolled' },
      });
      const created = await tx.agent.create({ data: { schoolId: token.schoolId, ...agent }, select: AGENT });
      await tx.enrolmentToken.update({ where: { id: token.id }, data: { agentId: created.id } });
      return { agent: created as AgentRecord, replaced: previous.map((p) => p.id) };
    });
  }

  async findById(agentId: string): Promise<AgentRecord | null> {
    return (await this.prisma.client.agent.findUnique({
      where: { id: agentId },
      select: AGENT,
    })) as AgentRecord | null;
  }

  async listForSchool(schoolId: string): Promise<AgentRecord[]> {
    return (await this.prisma.client.agent.findMany({
      where: { schoolId },
      orderBy: { enrolledAt: 'desc' },
      select: AGENT,
    })) as AgentRecord[];
  }

  async listFleet(options: { status?: AgentStatus; limit: number }): Promise<AgentRecord[]> {
    return (await this.prisma.client.agent.findMany({
      where: options.status ? { status: options.status } : {},
      orderBy: { enrolledAt: 'desc' },
      take: options.limit,
      select: AGENT,
    })) as AgentRecord[];
  }

  /** Revokes the school's agent; null when the agent is not the school's. */
  async revoke(schoolId: string, agentId: string, reason: string, now: Date): Promise<AgentRecord | null> {
    const { count } = await this.prisma.client.agent.updateMany({
      where: { id: agentId, schoolId, status: { not: 'REVOKED' } },
      data: { status: 'REVOKED', revokedAt: now, revokedReason: reason },
    });
    if (count === 0) {
      const existing = await this.prisma.client.agent.findFirst({
        where: { id: agentId, schoolId },
        select: AGENT,
      });
      return (existing as AgentRecord | null) ?? null;
    }
    return this.findById(agentId);
  }

  /** Writes a batch of heartbeats in one statement (the gateway buffers them). */
  async saveHeartbeats(updates: HeartbeatUpdate[]): Promise<void> {
    if (updates.length === 0) return;
    await this.prisma.client.$executeRaw`
      UPDATE agents AS a SET
        last_seen_at = v.at, version = v.version, os = v.os, mis_kind = v.mis_kind,
        mis_version = v.mis_version, supervised = v.supervised, last_heartbeat = v.hb
      FROM unnest(
        ${updates.map((u) => u.agentId)}::uuid[], ${updates.map((u) => u.at)}::timestamptz[],
        ${updates.map((u) => u.version)}::text[], ${updates.map((u) => u.os)}::text[],
        ${updates.map((u) => u.misKind)}::text[], ${updates.map((u) => u.misVersion)}::text[],
        ${updates.map((u) => u.supervised)}::boolean[], ${updates.map((u) => JSON.stringify(u.heartbeat))}::jsonb[]
      ) AS v(id, at, version, os, mis_kind, mis_version, supervised, hb)
      WHERE a.id = v.id`;
  }
}
