import { generateToken as newToken, sha256Hex } from '@keystage/crypto';
import { Inject, Injectable } from '@nestjs/common';
import { type Actor, AuditService } from '../audit/audit.service.js';
import { PasswordHasher } from '../auth/password-hasher.js';
import type { RoleName } from '../auth/principal.js';
import { AppError } from '../common/app-error.js';
import { CLOUD_CONFIG } from '../config/config.js';
import type { CloudConfig } from '../config/config.schema.js';
import { MailOutbox } from '../mail/mail-outbox.repository.js';
import { type MisType, TenancyRepository, type TenantRef } from './tenancy.repository.js';

const INVITATION_TTL_MS = 7 * 86_400_000;

@Injectable()
export class TenancyService {
  constructor(
    private readonly repo: TenancyRepository,
    private readonly audit: AuditService,
    private readonly outbox: MailOutbox,
    private readonly hasher: PasswordHasher,
    @Inject(CLOUD_CONFIG) private readonly config: CloudConfig,
  ) {}

  async createPartner(input: { slug: string; name: string }, actor: Actor) {
    if (await this.repo.partnerSlugTaken(input.slug)) {
      throw new AppError('partner.slug_taken', 'a partner with this slug exists', 409, { slug: input.slug });
    }
    const partner = await this.repo.createPartner(input);
    await this.audit.record(actor, {
      action: 'partner.created',
      partnerId: partner.id,
      targetType: 'partner',
      targetId: partner.id,
    });
    return partner;
  }

  listPartners() {
    return this.repo.listPartners();
  }

  async getPartner(partnerId: string) {
    return (await this.repo.getPartner(partnerId)) ?? notFound('partner');
  }

  async createSchool(input: { urn: string; laEstab: string; name: string; misType: MisType }, actor: Actor) {
    if (await this.repo.urnTaken(input.urn)) {
      throw new AppError('school.urn_taken', 'a school with this URN exists', 409, { urn: input.urn });
    }
    const school = await this.repo.createSchool(input);
    await this.audit.record(actor, {
      action: 'school.created',
      schoolId: school.id,
      targetType: 'school',
      targetId: school.id,
    });
    return school;
  }

  listSchools() {
    return this.repo.listSchools();
  }

  async getSchool(schoolId: string) {
    return (await this.repo.getSchool(schoolId)) ?? notFound('school');
  }

  async members(tenant: TenantRef) {
    await this.assertExists(tenant);
    return this.repo.members(tenant);
  }

  /** Invites someone to a tenant; the link goes out by e-mail and is never returned or logged. */
  async invite(tenant: TenantRef, input: { email: string; role: RoleName }, actor: Actor) {
    await this.assertExists(tenant);
    const token = newToken('ks_inv');
    const invitation = await this.repo.createInvitation(tenant, {
      email: input.email,
      role: input.role,
      tokenHash: sha256Hex(token),
      invitedById: actor.type === 'USER' ? actor.id : null,
      expiresAt: new Date(Date.now() + INVITATION_TTL_MS),
    });
    const where =
      'partnerId' in tenant ? await this.getPartner(tenant.partnerId) : await this.getSchool(tenant.schoolId);
    await this.outbox.enqueue({
      to: input.email,
      subject: `You are invited to ${where.name} on Keystage`,
      body: `You have been invited to join ${where.name} on Keystage as ${input.role.replace('_', ' ')}.\nAccept within 7 days: ${this.config.publicUrl}/accept-invitation#token=${token}`,
    });
    await this.audit.record(actor, {
      action: 'invitation.created',
      ...tenant,
      targetType: 'invitation',
      targetId: invitation.id,
      details: { role: input.role },
    });
    return { id: invitation.id, email: input.email, role: input.role, expiresAt: invitation.expiresAt };
  }

  async acceptInvitation(input: { token: string; displayName: string; password: string }, actor: Actor) {
    const result = await this.repo.acceptInvitation(
      sha256Hex(input.token),
      new Date(),
      { displayName: input.displayName, passwordHash: await this.hasher.hash(input.password) },
      async (existing) => existing !== null && this.hasher.verify(input.password, existing),
    );
    if (result === 'wrong_password') {
      throw new AppError(
        'invitation.wrong_password',
        'this e-mail already has an account: give its current password to accept',
        401,
      );
    }
    if (!result)
      throw new AppError(
        'invitation.invalid_token',
        'invitation is not valid (unknown, used or expired)',
        400,
      );
    await this.audit.record(
      { ...actor, type: 'USER', id: result.userId },
      {
        action: 'invitation.accepted',
        partnerId: result.partnerId,
        schoolId: result.schoolId,
        targetType: 'invitation',
        targetId: result.invitationId,
        details: { role: result.role },
      },
    );
    return {
      userId: result.userId,
      role: result.role,
      partnerId: result.partnerId,
      schoolId: result.schoolId,
    };
  }

  private async assertExists(tenant: TenantRef): Promise<void> {
    if ('partnerId' in tenant) await this.getPartner(tenant.partnerId);
    else await this.getSchool(tenant.schoolId);
  }
}

function notFound(what: string): never {
  throw AppError.notFound(what);
}
