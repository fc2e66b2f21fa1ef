import { Injectable } from '@nestjs/common';
import { PrismaProvider } from '../database/prisma.provider.js';
import type { MisType } from '../tenancy/tenancy.repository.js';

export interface ExtractSummary {
  id: string;
  slug: string;
  name: string;
  description: string;
  latestVersion: number | null;
  createdAt: Date;
}

export interface ExtractVersionRecord {
  id: string;
  extractId: string;
  version: number;
  misType: MisType;
  document: unknown;
  documentHash: string;
  publishedAt: Date;
  publishedById: string | null;
}

/** Extracts and their immutable versions; every query names the owning partner. */
@Injectable()
export class ExtractsRepository {
  constructor(private readonly prisma: PrismaProvider) {}

  async list(partnerId: string): Promise<ExtractSummary[]> {
    const rows = await this.prisma.client.extract.findMany({
      where: { partnerId },
      orderBy: { slug: 'asc' },
      include: { versions: { select: { version: true }, orderBy: { version: 'desc' }, take: 1 } },
    });
    return rows.map((r) => ({
      id: r.id,
      slug: r.slug,
      name: r.name,
      description: r.description,
      latestVersion: r.versions[0]?.version ?? null,
      createdAt: r.createdAt,
    }));
  }

  async findExtract(partnerId: string, extractId: string) {
    return this.prisma.client.extract.findFirst({ where: { id: extractId, partnerId } });
  }

  async versions(partnerId: string, extractId: string): Promise<ExtractVersionRecord[]> {
    return (await this.prisma.client.extractVersion.findMany({
      where: { extractId, extract: { partnerId } },
      orderBy: { version: 'asc' },
    })) as ExtractVersionRecord[];
  }

  async version(partnerId: string, extractId: string, version: number): Promise<ExtractVersionRecord | null> {
    return (await this.prisma.client.extractVersion.findFirst({
      where: { extractId, version, extract: { partnerId } },
    })) as ExtractVersionRecord | null;
  }

  /**
   * Publishes a document: creates the extract on first publication, and a new version unless the
   * latest one has the same hash. Serialised per extract by a row lock, so two publishers cannot
   * both take the same version number.
   */
  async publish(
    partnerId: string,
    data: {
      slug: string;
      name: string;
      description: string;
      misType: MisType;
      document: object;
      documentHash: string;
      publishedById: string | null;
    },
  ): Promise<{ version: ExtractVersionRecord; created: boolean }> {
    return this.prisma.client.$transaction(async (tx) => {
      await tx.extract.upsert({
        where: { partnerId_slug: { partnerId, slug: data.slug } },
        create: { partnerId, slug: data.slug, name: data.name, description: data.description },
        update: { name: data.name, description: data.description },
      });
      const [extract] = await tx.$queryRaw<{ id: string }[]>`
        SELECT id FROM extracts WHERE partner_id = ${partnerId}::uuid AND slug = ${data.slug} FOR UPDATE`;
      const latest = await tx.extractVersion.findFirst({
        where: { extractId: extract!.id },
        orderBy: { version: 'desc' },
      });
      if (latest && latest.documentHash === data.documentHash)
        return { version: latest as ExtractVersionRecord, created: false };
      const version = await tx.extractVersion.create({
        data: {
          extractId: extract!.id,
          version: (latest?.version ?? 0) + 1,
          misType: data.misType,
          document: data.document,
          documentHash: data.documentHash,
          publishedById: data.publishedById,
        },
      });
      return { version: version as ExtractVersionRecord, created: true };
    });
  }
}
