import { Injectable } from '@nestjs/common';
import type { RoleName } from '../auth/principal.js';
import { PrismaProvider } from '../database/prisma.provider.js';

export type MisType = 'SIMS' | 'CMIS' | 'DEMO_SQLITE' | 'POSTGRES' | 'MYSQL' | 'OTHER';
export type TenantRef = { partnerId: string } | { schoolId: string };

export interface PartnerView {
  id: string;
  slug: string;
  name: string;
  createdAt: Date;
}
export interface SchoolView {
  id: string;
  urn: string;
  laEstab: string;
  name: string;
  misType: MisType;
  createdAt: Date;
}
export interface MemberView {
  userId: string;
  email: string;
  displayName: string;
  role: RoleName;
  since: Date;
}

const PARTNER = { id: true, slug: true, name: true, createdAt: true } as const;
const SCHOOL = { id: true, urn: true, laEstab: true, name: true, misType: true, createdAt: true } as const;
const toRoleEnum = (r: RoleName) => r.toUpperCase() as Uppercase<RoleName>;

/** Partners, schools, members and invitations; reads of one tenant always name that tenant. */
@Injectable()
export class TenancyRepository {
  constructor(private readonly prisma: PrismaProvider) {}

  createPartner(data: { slug: string; name: string }): Promise<PartnerView> {
    return this.prisma.client.partner.create({ data, select: PARTNER });
  }
  listPartners(): Promise<PartnerView[]> {
    return this.prisma.client.partner.findMany({ orderBy: { name: 'asc' }, select: PARTNER });
  }
  getPartner(partnerId: string): Promise<PartnerView | null> {
    return this.prisma.client.partner.findUnique({ where: { id: partnerId }, select: PARTNER });
  }
  partnerSlugTaken(slug: string): Promise<boolean> {
    return this.prisma.client.partner.count({ where: { slug } }).then((n) => n > 0);
  }

  createSchool(data: { urn: string; laEstab: string; name: string; misType: MisType }): Promise<SchoolView> {
    return this.prisma.client.school.create({ data, select: SCHOOL });
  }
  listSchools(): Promise<SchoolView[]> {
    return this.prisma.client.school.findMany({ orderBy: { name: 'asc' }, select: SCHOOL });
  }
  getSchool(schoolId: string): Promise<SchoolView | null> {
    return this.prisma.client.school.findUnique({ where: { id: schoolId }, select: SCHOOL });
  }
  urnTaken(urn: string): Promise<boolean> {
    return this.prisma.client.school.count({ where: { urn } }).then((n) => n > 0);
  }

  async members(tenant: TenantRef): Promise<MemberView[]> {
    const rows = await this.prisma.client.membership.findMany({
      where: tenant,
      orderBy: { createdAt: 'asc' },
      select: { role: true, createdAt: true, user: { select: { id: true, email: true, displayName: true } } },
    });
    return rows.map((m) => ({
      userId: m.user.id,
      email: m.user.email,
      displayName: m.user.displayName,
      role: m.role.toLowerCase() as RoleName,
      since: m.createdAt,
    }));
  }

  async createInvitation(
    tenant: TenantRef,
    data: { email: string; role: RoleName; tokenHash: string; invitedById: string | null; expiresAt: Date },
  ): Promise<{ id: string; expiresAt: Date }> {
    return this.prisma.client.invitation.create({
      data: { ...tenant, ...data, role: toRoleEnum(data.role) },
      select: { id: true, expiresAt: true },
    });
  }

  /**
   * Accepts an invitation once: creates the user when new (or checks `verifyExisting` for an existing
   * one) and adds the membership, all in one transaction. Null when the token is unknown, used or expired.
   */
  async acceptInvitation(
    tokenHash: string,
    now: Date,
    newUser: { displayName: string; passwordHash: string },
    verifyExisting: (passwordHash: string | null) => Promise<boolean>,
  ): Promise<
    | {
        userId: string;
        invitationId: string;
        role: RoleName;
        partnerId: string | null;
        schoolId: string | null;
      }
    | 'wrong_password'
    | null
  > {
    class WrongPassword extends Error {}
    return this.prisma.client
      .$transaction(async (tx) => {
        const inv = await tx.invitation.findUnique({ where: { tokenHash } });
        if (!inv || inv.acceptedAt || inv.expiresAt <= now) return null;
        const claimed = await tx.invitation.updateMany({
          where: { id: inv.id, acceptedAt: null },
          data: { acceptedAt: now },
        });
        if (claimed.count !== 1) return null;
        let user = await tx.user.findUnique({ where: { email: inv.email } });
        if (user) {
          // Throwing rolls the claim back, so the invitation stays usable.
          if (!(await verifyExisting(user.passwordHash))) throw new WrongPassword();
        } else {
          user = await tx.user.create({
            data: { email: inv.email, displayName: newUser.displayName, passwordHash: newUser.passwordHash },
          });
        }
        const existing = await tx.membership.findFirst({
          where: { userId: user.id, role: inv.role, partnerId: inv.partnerId, schoolId: inv.schoolId },
        });
        if (!existing) {
          await tx.membership.create({
            data: { userId: user.id, role: inv.role, partnerId: inv.partnerId, schoolId: inv.schoolId },
          });
        }
        return {
          userId: user.id,
          invitationId: inv.id,
          role: inv.role.toLowerCase() as RoleName,
          partnerId: inv.partnerId,
          schoolId: inv.schoolId,
        };
      })
      .catch((err: unknown) => {
        if (err instanceof WrongPassword) return 'wrong_password' as const;
        throw err;
      });
  }

  /** Creates (or finds) a user with a role; used by the operator CLI and the demo. */
  async upsertUserWithRole(
    data: { email: string; displayName: string; passwordHash: string },
    grant: { role: RoleName; partnerId?: string | null; schoolId?: string | null },
  ): Promise<{ userId: string; created: boolean }> {
    return this.prisma.client.$transaction(async (tx) => {
      let user = await tx.user.findUnique({ where: { email: data.email } });
      const created = !user;
      user ??= await tx.user.create({ data });
      const where = {
        userId: user.id,
        role: toRoleEnum(grant.role),
        partnerId: grant.partnerId ?? null,
        schoolId: grant.schoolId ?? null,
      };
      if (!(await tx.membership.findFirst({ where }))) await tx.membership.create({ data: where });
      return { userId: user.id, created };
    });
  }
}
