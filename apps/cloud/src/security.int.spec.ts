import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { createPrismaClient, type PrismaClient } from '@keystage/db';
import { JwtService } from '@nestjs/jwt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/db.js';
import { PasswordHasher } from './auth/password-hasher.js';
import { API_KEY_SCOPES } from './auth/policy.js';
import type { RoleName } from './auth/principal.js';
import { type RouteEntry, routeTable } from './auth/route-table.js';
import { type RunningServer, startServer } from './bootstrap.js';
import { loadConfig } from './config/config.js';
import { TenancyRepository } from './tenancy/tenancy.repository.js';

// Identity, tenancy and audit against the real app, PostgreSQL and Redis: no part is faked.
let db: TestDatabase;
let server: RunningServer;
let prisma: PrismaClient;
const PASSWORD = 'correct horse battery staple';

function config(extra: Record<string, string> = {}) {
  return loadConfig({
    DATABASE_URL: db.url,
    KEYSTAGE_SECRET: 'security-test-secret-'.padEnd(48, 's'),
    PORT: '0',
    LOG_LEVEL: process.env.KS_LOG ?? 'silent',
    PASSWORD_HASH_COST: '10',
    AUTH_LOCKOUT_SECONDS: '1',
    // This file signs in often from one IP; the limits themselves are tested with a server of their own.
    RATE_LIMIT_AUTH_PER_IP: '100000',
    RATE_LIMIT_PER_IP: '100000',
    RATE_LIMIT_PER_PRINCIPAL: '100000',
    REDIS_PREFIX: `test-sec-${process.pid}-${Math.random().toString(36).slice(2, 8)}`,
    ...extra,
  });
}

interface Call {
  method?: string;
  token?: string;
  apiKey?: string;
  body?: unknown;
  rawBody?: string;
  headers?: Record<string, string>;
}
async function call(path: string, c: Call = {}, on: RunningServer = server) {
  const headers: Record<string, string> = { ...c.headers };
  if (c.token) headers.authorization = `Bearer ${c.token}`;
  if (c.apiKey) headers['x-api-key'] = c.apiKey;
  if (c.body !== undefined || c.rawBody !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${on.url}${path}`, {
    method: c.method ?? 'GET',
    headers,
    body: c.rawBody ?? (c.body === undefined ? undefined : JSON.stringify(c.body)),
  });
  const text = await res.text();
  // biome-ignore lint/suspicious/noExplicitAny: assertions walk arbitrary JSON
  let body: any;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = text;
  }
  return { status: res.status, body, headers: res.headers };
}

async function login(email: string, password = PASSWORD, on: RunningServer = server) {
  return call('/auth/login', { method: 'POST', body: { email, password } }, on);
}

// ─── Fixtures: two partners, two schools, every role in each, support ───────

const T = {} as {
  partnerA: string;
  partnerB: string;
  schoolA: string;
  schoolB: string;
  tokens: Record<string, string>;
  keyA: string;
  keyB: string;
};

async function makeUser(email: string, role: RoleName, tenant: { partnerId?: string; schoolId?: string }) {
  const hash = await server.app.get(PasswordHasher).hash(PASSWORD);
  await server.app
    .get(TenancyRepository)
    .upsertUserWithRole(
      { email, displayName: email.split('@')[0]!, passwordHash: hash },
      { role, ...tenant },
    );
}

beforeAll(async () => {
  db = await createTestDatabase('security');
  server = await startServer(config());
  prisma = createPrismaClient(db.url);
  const [pa, pb] = await Promise.all([
    prisma.partner.create({ data: { slug: 'parentmail', name: 'ParentMail' } }),
    prisma.partner.create({ data: { slug: 'cashless', name: 'Cashless Co' } }),
  ]);
  const [sa, sb] = await Promise.all([
    prisma.school.create({
      data: { urn: '100001', laEstab: '873/4001', name: 'Ashfield Academy', misType: 'SIMS' },
    }),
    prisma.school.create({
      data: { urn: '100002', laEstab: '873/4002', name: 'Brookside School', misType: 'SIMS' },
    }),
  ]);
  Object.assign(T, { partnerA: pa.id, partnerB: pb.id, schoolA: sa.id, schoolB: sb.id, tokens: {} });
  const users: [string, RoleName, { partnerId?: string; schoolId?: string }][] = [
    ['support@keystage.test', 'support', {}],
    ['admin@a.partner.test', 'partner_admin', { partnerId: pa.id }],
    ['dev@a.partner.test', 'partner_developer', { partnerId: pa.id }],
    ['admin@b.partner.test', 'partner_admin', { partnerId: pb.id }],
    ['dev@b.partner.test', 'partner_developer', { partnerId: pb.id }],
    ['admin@a.school.test', 'school_admin', { schoolId: sa.id }],
    ['viewer@a.school.test', 'school_viewer', { schoolId: sa.id }],
    ['admin@b.school.test', 'school_admin', { schoolId: sb.id }],
    ['viewer@b.school.test', 'school_viewer', { schoolId: sb.id }],
  ];
  for (const [email, role, tenant] of users) await makeUser(email, role, tenant);
  for (const [email] of users) {
    const res = await login(email);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    T.tokens[email] = res.body.accessToken;
  }
  const allScopes = [...API_KEY_SCOPES];
  const ka = await call(`/partners/${pa.id}/api-keys`, {
    method: 'POST',
    token: T.tokens['admin@a.partner.test'],
    body: { name: 'all', scopes: allScopes },
  });
  const kb = await call(`/partners/${pb.id}/api-keys`, {
    method: 'POST',
    token: T.tokens['admin@b.partner.test'],
    body: { name: 'all', scopes: allScopes },
  });
  expect(ka.status).toBe(201);
  T.keyA = ka.body.key;
  T.keyB = kb.body.key;
}, 60_000);

afterAll(async () => {
  await server?.stop();
  await prisma?.$disconnect();
  await db?.drop();
});

// ─── The isolation matrix ───────────────────────────────────────────────────

/** Public routes are a deliberate, reviewed list: a new public route must be added here. */
const EXPECTED_PUBLIC = [
  'POST /agents/enrol',
  'GET /health/live',
  'GET /health/ready',
  'POST /auth/login',
  'POST /auth/password-reset/confirm',
  'POST /auth/password-reset/request',
  'POST /auth/refresh',
  'POST /invitations/accept',
];

const SESSION_ENDING = new Set(['POST /auth/logout']);

type Who =
  | { name: string; kind: 'anonymous' }
  | { name: string; kind: 'user'; email: string; role: RoleName; own: boolean }
  | { name: string; kind: 'key'; own: boolean };

const WHO: Who[] = [
  { name: 'anonymous', kind: 'anonymous' },
  { name: 'support', kind: 'user', email: 'support@keystage.test', role: 'support', own: true },
  {
    name: 'partner_admin (own)',
    kind: 'user',
    email: 'admin@a.partner.test',
    role: 'partner_admin',
    own: true,
  },
  {
    name: 'partner_developer (own)',
    kind: 'user',
    email: 'dev@a.partner.test',
    role: 'partner_developer',
    own: true,
  },
  {
    name: 'partner_admin (foreign)',
    kind: 'user',
    email: 'admin@b.partner.test',
    role: 'partner_admin',
    own: false,
  },
  {
    name: 'partner_developer (foreign)',
    kind: 'user',
    email: 'dev@b.partner.test',
    role: 'partner_developer',
    own: false,
  },
  { name: 'school_admin (own)', kind: 'user', email: 'admin@a.school.test', role: 'school_admin', own: true },
  {
    name: 'school_viewer (own)',
    kind: 'user',
    email: 'viewer@a.school.test',
    role: 'school_viewer',
    own: true,
  },
  {
    name: 'school_admin (foreign)',
    kind: 'user',
    email: 'admin@b.school.test',
    role: 'school_admin',
    own: false,
  },
  {
    name: 'school_viewer (foreign)',
    kind: 'user',
    email: 'viewer@b.school.test',
    role: 'school_viewer',
    own: false,
  },
  { name: 'api key (own partner)', kind: 'key', own: true },
  { name: 'api key (foreign partner)', kind: 'key', own: false },
];

/** What the policy says `who` may do on the routes of partner A / school A. */
function expectedAllowed(route: RouteEntry, who: Who): boolean {
  const policy = route.policy!;
  if (policy.public) return true;
  if (who.kind === 'anonymous') return false;
  if (who.kind === 'key') {
    return !!policy.scopes && policy.tenant?.kind === 'partner' && who.own;
  }
  if (!policy.roles.includes(who.role)) return false;
  if (who.role === 'support') return true;
  if (!policy.tenant) return true;
  const tenantKind = who.role.startsWith('partner') ? 'partner' : 'school';
  return policy.tenant.kind === tenantKind && who.own;
}

function urlFor(route: RouteEntry): string {
  return route.path
    .replace(':partnerId', T.partnerA)
    .replace(':schoolId', T.schoolA)
    .replace(/:[A-Za-z]+/g, '00000000-0000-4000-8000-000000000000');
}

describe('isolation matrix (generated from the route table)', () => {
  it('every route has an explicit policy, and public routes are exactly the reviewed list', () => {
    const routes = routeTable(server.app);
    expect(routes.length).toBeGreaterThan(15);
    const missing = routes
      .filter((r) => !r.policy)
      .map((r) => `${r.method} ${r.path} (${r.controller}.${r.handler})`);
    expect(missing, 'routes without a policy').toEqual([]);
    const publicRoutes = routes.filter((r) => r.policy?.public).map((r) => `${r.method} ${r.path}`);
    expect(publicRoutes.sort()).toEqual([...EXPECTED_PUBLIC].sort());
  });

  it('answers every route × principal as its policy says', async () => {
    const routes = routeTable(server.app).filter((r) => !r.policy?.public);
    const failures: string[] = [];
    let checked = 0;
    for (const route of routes) {
      for (const who of WHO) {
        const c: Call = { method: route.method };
        if (who.kind === 'user') {
          // Routes that end the session get a throwaway session, so the matrix can go on.
          c.token = SESSION_ENDING.has(`${route.method} ${route.path}`)
            ? (await login(who.email)).body.accessToken
            : T.tokens[who.email]!;
        }
        if (who.kind === 'key') c.apiKey = who.own ? T.keyA : T.keyB;
        // Break-glass routes: support states a reason (its absence is tested separately).
        if (route.policy && !route.policy.public && route.policy.breakGlass) {
          c.headers = { 'x-break-glass-reason': 'isolation matrix test: ticket 4242' };
        }
        if (route.method !== 'GET' && route.method !== 'DELETE') c.body = {};
        const res = await call(urlFor(route), c);
        const allowed = expectedAllowed(route, who);
        const ok = allowed
          ? res.status !== 401 && res.status !== 403
          : who.kind === 'anonymous'
            ? res.status === 401
            : res.status === 403;
        checked++;
        if (!ok)
          failures.push(
            `${route.method} ${route.path} as ${who.name}: got ${res.status} ${res.body?.code ?? ''}, expected ${allowed ? 'allowed' : who.kind === 'anonymous' ? '401' : '403'}`,
          );
      }
    }
    expect(failures).toEqual([]);
    expect(checked).toBe(routes.length * WHO.length);
  }, 120_000);

  it('support must give a break-glass reason to read a school’s members, and the read is audited', async () => {
    const path = `/schools/${T.schoolA}/members`;
    const without = await call(path, { token: T.tokens['support@keystage.test'] });
    expect(without.status).toBe(403);
    expect(without.body.code).toBe('auth.break_glass_reason_required');
    const reason = 'parent complaint, ticket 991';
    const withReason = await call(path, {
      token: T.tokens['support@keystage.test'],
      headers: { 'x-break-glass-reason': reason },
    });
    expect(withReason.status).toBe(200);
    const entry = await prisma.auditEvent.findFirst({
      where: { action: 'support.break_glass', schoolId: T.schoolA },
      orderBy: { seq: 'desc' },
    });
    expect(entry?.details).toMatchObject({ reason });
  });
});

// ─── Tokens ─────────────────────────────────────────────────────────────────

describe('tokens', () => {
  it('refuses expired and tampered access tokens', async () => {
    const good = T.tokens['admin@a.partner.test']!;
    const [h, p, s] = good.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
    const forgedPayload = Buffer.from(
      JSON.stringify({ ...claims, sub: '00000000-0000-4000-8000-000000000000' }),
    ).toString('base64url');
    const tampered = await call('/auth/me', { token: `${h}.${forgedPayload}.${s}` });
    expect(tampered.status).toBe(401);
    expect(tampered.body.code).toBe('auth.invalid_token');

    // Signed with the server's own key, but already expired.
    const jwt = server.app.get(JwtService);
    const expired = await jwt.signAsync(
      { sub: claims.sub, sid: claims.sid, typ: 'access', exp: Math.floor(Date.now() / 1000) - 5 },
      { algorithm: 'HS256', issuer: 'keystage' },
    );
    const res = await call('/auth/me', { token: expired });
    expect(res.status).toBe(401);
    expect(res.body.code).toBe('auth.token_expired');

    const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${p}.`;
    expect((await call('/auth/me', { token: none })).status).toBe(401);
  });

  it('rotates refresh tokens; reusing an old one revokes the whole session', async () => {
    await makeUser('rotate@a.partner.test', 'partner_developer', { partnerId: T.partnerA });
    const first = await login('rotate@a.partner.test');
    const second = await call('/auth/refresh', {
      method: 'POST',
      body: { refreshToken: first.body.refreshToken },
    });
    expect(second.status).toBe(200);
    expect(second.body.refreshToken).not.toBe(first.body.refreshToken);
    expect((await call('/auth/me', { token: second.body.accessToken })).status).toBe(200);

    const reuse = await call('/auth/refresh', {
      method: 'POST',
      body: { refreshToken: first.body.refreshToken },
    });
    expect(reuse.status).toBe(401);
    expect(reuse.body.code).toBe('auth.refresh_token_reused');
    // The thief's and the owner's tokens of that session are all dead now.
    expect(
      (await call('/auth/refresh', { method: 'POST', body: { refreshToken: second.body.refreshToken } }))
        .status,
    ).toBe(401);
    expect((await call('/auth/me', { token: second.body.accessToken })).body.code).toBe(
      'auth.session_revoked',
    );
    const audit = await prisma.auditEvent.findFirst({ where: { action: 'auth.refresh_reuse_detected' } });
    expect(audit).not.toBeNull();
  });

  it('logout revokes the session: access and refresh tokens stop working', async () => {
    await makeUser('logout@a.partner.test', 'partner_developer', { partnerId: T.partnerA });
    const session = await login('logout@a.partner.test');
    expect((await call('/auth/logout', { method: 'POST', token: session.body.accessToken })).status).toBe(
      204,
    );
    expect((await call('/auth/me', { token: session.body.accessToken })).status).toBe(401);
    expect(
      (await call('/auth/refresh', { method: 'POST', body: { refreshToken: session.body.refreshToken } }))
        .status,
    ).toBe(401);
  });

  it('API keys: wrong scope 403, revoked 401, expired 401, unknown 401; the key is stored only hashed', async () => {
    const admin = T.tokens['admin@a.partner.test']!;
    const created = await call(`/partners/${T.partnerA}/api-keys`, {
      method: 'POST',
      token: admin,
      body: { name: 'runs only', scopes: ['runs:read'], expiresInDays: 30 },
    });
    expect(created.status).toBe(201);
    const key: string = created.body.key;
    expect(key).toMatch(/^ks_live_[A-Za-z0-9]{8}_/);
    const stored = await prisma.apiKey.findUniqueOrThrow({ where: { id: created.body.id } });
    expect(JSON.stringify(stored)).not.toContain(key.split('_').pop());
    const listed = await call(`/partners/${T.partnerA}/api-keys`, { token: admin });
    expect(JSON.stringify(listed.body)).not.toContain(key);

    const wrongScope = await call(`/partners/${T.partnerA}/audit`, { apiKey: key });
    expect(wrongScope.status).toBe(403);
    expect(wrongScope.body).toMatchObject({
      code: 'auth.insufficient_scope',
      details: { missing: ['audit:read'] },
    });

    const audited = await call(`/partners/${T.partnerA}/audit`, { apiKey: T.keyA });
    expect(audited.status).toBe(200);
    expect(
      (await prisma.apiKey.findFirstOrThrow({ where: { partnerId: T.partnerA, name: 'all' } })).lastUsedAt,
    ).not.toBeNull();

    await prisma.apiKey.update({
      where: { id: created.body.id },
      data: { expiresAt: new Date(Date.now() - 1000) },
    });
    expect((await call(`/partners/${T.partnerA}/audit`, { apiKey: key })).body.code).toBe(
      'auth.api_key_expired',
    );

    const revoke = await call(`/partners/${T.partnerA}/api-keys/${created.body.id}`, {
      method: 'DELETE',
      token: admin,
    });
    expect(revoke.status).toBe(200);
    expect(revoke.body.revokedAt).not.toBeNull();
    expect((await call(`/partners/${T.partnerA}/audit`, { apiKey: key })).body.code).toBe(
      'auth.api_key_revoked',
    );
    expect((await call(`/partners/${T.partnerA}/audit`, { apiKey: `${key.slice(0, -4)}AAAA` })).status).toBe(
      401,
    );
    // Another partner's admin cannot revoke partner A's key, even knowing its id.
    const foreign = await call(`/partners/${T.partnerB}/api-keys/${created.body.id}`, {
      method: 'DELETE',
      token: T.tokens['admin@b.partner.test'],
    });
    expect(foreign.status).toBe(404);
  });

  it('locks an account after repeated failures and releases it after the lock-out', async () => {
    await makeUser('lock@a.school.test', 'school_viewer', { schoolId: T.schoolA });
    for (let i = 1; i <= 4; i++) {
      const res = await login('lock@a.school.test', 'wrong password!!');
      expect(res.status).toBe(401);
    }
    const fifth = await login('lock@a.school.test', 'wrong password!!');
    expect(fifth.status).toBe(423);
    expect(fifth.body.code).toBe('auth.account_locked');
    // Even the right password is refused while locked.
    expect((await login('lock@a.school.test')).status).toBe(423);
    await new Promise((r) => setTimeout(r, 1_100));
    const after = await login('lock@a.school.test');
    expect(after.status).toBe(200);
    expect(await prisma.auditEvent.count({ where: { action: 'auth.account_locked' } })).toBeGreaterThan(0);
  });

  it('does not say whether an e-mail exists', async () => {
    const unknown = await login('nobody@nowhere.test');
    const wrong = await login('admin@a.partner.test', 'not the password');
    expect(unknown.status).toBe(401);
    expect(wrong.status).toBe(401);
    expect(unknown.body.message).toBe(wrong.body.message);
    expect(
      (await call('/auth/password-reset/request', { method: 'POST', body: { email: 'nobody@nowhere.test' } }))
        .status,
    ).toBe(202);
  });
});

// ─── Invitations, password change and reset ───────────────────────────────

function tokenFromMail(body: string): string {
  const m = /#token=([A-Za-z0-9_-]+)/.exec(body);
  if (!m) throw new Error('no token in mail');
  return m[1]!;
}

describe('people', () => {
  it('invites a developer who accepts, signs in and sees only their partner', async () => {
    const inv = await call(`/partners/${T.partnerA}/invitations`, {
      method: 'POST',
      token: T.tokens['admin@a.partner.test'],
      body: { email: 'New.Dev@A.partner.test', role: 'partner_developer' },
    });
    expect(inv.status).toBe(201);
    expect(JSON.stringify(inv.body)).not.toMatch(/ks_inv_/);
    const mail = await prisma.mailOutbox.findFirstOrThrow({ where: { to: 'new.dev@a.partner.test' } });
    const token = tokenFromMail(mail.body);
    const accepted = await call('/invitations/accept', {
      method: 'POST',
      body: { token, displayName: 'New Dev', password: PASSWORD },
    });
    expect(accepted.status).toBe(200);
    expect(accepted.body).toMatchObject({ role: 'partner_developer', partnerId: T.partnerA });
    expect(
      (
        await call('/invitations/accept', {
          method: 'POST',
          body: { token, displayName: 'Again', password: PASSWORD },
        })
      ).status,
    ).toBe(400);
    const session = await login('new.dev@a.partner.test');
    expect(session.status).toBe(200);
    expect((await call(`/partners/${T.partnerA}`, { token: session.body.accessToken })).status).toBe(200);
    expect((await call(`/partners/${T.partnerB}`, { token: session.body.accessToken })).status).toBe(403);
    // A partner developer cannot invite.
    expect(
      (
        await call(`/partners/${T.partnerA}/invitations`, {
          method: 'POST',
          token: session.body.accessToken,
          body: { email: 'x@y.test', role: 'partner_admin' },
        })
      ).status,
    ).toBe(403);
  });

  it('changes a password (other sessions end) and resets a forgotten one by one-time token', async () => {
    await makeUser('pw@a.school.test', 'school_admin', { schoolId: T.schoolA });
    const s1 = await login('pw@a.school.test');
    const s2 = await login('pw@a.school.test');
    const newPassword = 'an entirely new passphrase';
    const change = await call('/auth/password', {
      method: 'POST',
      token: s1.body.accessToken,
      body: { currentPassword: PASSWORD, newPassword },
    });
    expect(change.status).toBe(204);
    expect((await call('/auth/me', { token: s1.body.accessToken })).status).toBe(200);
    expect((await call('/auth/me', { token: s2.body.accessToken })).status).toBe(401);
    expect((await login('pw@a.school.test')).status).toBe(401);
    expect((await login('pw@a.school.test', newPassword)).status).toBe(200);

    expect(
      (await call('/auth/password-reset/request', { method: 'POST', body: { email: 'pw@a.school.test' } }))
        .status,
    ).toBe(202);
    const mail = await prisma.mailOutbox.findFirstOrThrow({
      where: { to: 'pw@a.school.test', subject: { contains: 'Reset' } },
    });
    const token = tokenFromMail(mail.body);
    expect(await prisma.passwordResetToken.count({ where: { tokenHash: token } })).toBe(0);
    const reset = await call('/auth/password-reset/confirm', {
      method: 'POST',
      body: { token, newPassword: PASSWORD },
    });
    expect(reset.status).toBe(204);
    expect(
      (await call('/auth/password-reset/confirm', { method: 'POST', body: { token, newPassword: PASSWORD } }))
        .status,
    ).toBe(400);
    expect((await login('pw@a.school.test')).status).toBe(200);
    expect((await call('/auth/me', { token: s1.body.accessToken })).status).toBe(401);
  });
});

// ─── Bad input ─────────────────────────────────────────────────────────────

describe('bad input', () => {
  const support = () => T.tokens['support@keystage.test']!;

  it('rejects wrong types and unknown fields, naming each path', async () => {
    const res = await call('/schools', {
      method: 'POST',
      token: support(),
      body: { urn: 12345, laEstab: '8734001', name: '', misType: 'EXCEL', admin: true },
    });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('request.invalid');
    const paths = res.body.details.map((d: { path: string }) => d.path);
    expect(paths).toEqual(expect.arrayContaining(['urn', 'laEstab', 'name', 'misType']));
    expect(JSON.stringify(res.body.details)).toMatch(/admin/);
  });

  it('rejects oversized bodies with 413 and malformed JSON with 400', async () => {
    const big = await call('/partners', {
      method: 'POST',
      token: support(),
      rawBody: JSON.stringify({ slug: 'x'.repeat(2_000_000) }),
    });
    expect(big.status).toBe(413);
    const broken = await call('/partners', { method: 'POST', token: support(), rawBody: '{"slug": ' });
    expect(broken.status).toBe(400);
  });

  it('stores SQL-ish and script-ish text verbatim and returns it as JSON', async () => {
    const name = `Robert'); DROP TABLE partners;-- <script>alert("x")</script> Zoë O'Brien`;
    const created = await call('/partners', {
      method: 'POST',
      token: support(),
      body: { slug: 'bobby-tables', name },
    });
    expect(created.status).toBe(201);
    const read = await call(`/partners/${created.body.id}`, { token: support() });
    expect(read.body.name).toBe(name);
    expect(read.headers.get('content-type')).toMatch(/^application\/json/);
    expect(read.headers.get('x-content-type-options')).toBe('nosniff');
    expect(await prisma.partner.count()).toBeGreaterThan(2);
  });

  it('rejects a malformed id in the path with 400, not a database error', async () => {
    const res = await call("/partners/1' OR '1'='1", { token: support() });
    expect([400, 404]).toContain(res.status);
    const res2 = await call(`/schools/not-a-uuid`, { token: support() });
    expect(res2.status).toBe(400);
  });
});

// ─── Rate limits ───────────────────────────────────────────────────────────

describe('rate limits', () => {
  it('answers 429 with Retry-After past the per-IP sign-in limit and the per-principal limit', async () => {
    const limited = await startServer(config({ RATE_LIMIT_AUTH_PER_IP: '3', RATE_LIMIT_PER_PRINCIPAL: '4' }));
    try {
      const statuses: number[] = [];
      let last: Awaited<ReturnType<typeof call>> | undefined;
      for (let i = 0; i < 4; i++) {
        last = await call(
          '/auth/login',
          { method: 'POST', body: { email: 'nobody@nowhere.test', password: 'x' } },
          limited,
        );
        statuses.push(last.status);
      }
      expect(statuses).toEqual([401, 401, 401, 429]);
      expect(Number(last!.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(last!.body.code).toBe('request.rate_limited');

      const token = T.tokens['viewer@a.school.test']!;
      const seen: number[] = [];
      for (let i = 0; i < 5; i++) seen.push((await call('/auth/me', { token }, limited)).status);
      expect(seen).toEqual([200, 200, 200, 200, 429]);
    } finally {
      await limited.stop();
    }
  });
});

// ─── Audit ─────────────────────────────────────────────────────────────────

describe('audit log', () => {
  it('records security events with actor, tenant, target and request id, scoped per tenant', async () => {
    const entries = await call(`/partners/${T.partnerA}/audit?limit=500`, {
      token: T.tokens['admin@a.partner.test'],
    });
    expect(entries.status).toBe(200);
    const actions = new Set(entries.body.entries.map((e: { action: string }) => e.action));
    expect(actions).toContain('api_key.created');
    expect(actions).toContain('api_key.revoked');
    expect(actions).toContain('invitation.created');
    for (const e of entries.body.entries) expect(e.partnerId).toBe(T.partnerA);
    const created = entries.body.entries.find((e: { action: string }) => e.action === 'api_key.created');
    expect(created).toMatchObject({
      actorType: 'USER',
      targetType: 'api_key',
      requestId: expect.any(String),
    });

    const page1 = await call(`/partners/${T.partnerA}/audit?limit=2`, {
      token: T.tokens['admin@a.partner.test'],
    });
    const page2 = await call(`/partners/${T.partnerA}/audit?limit=2&before=${page1.body.next}`, {
      token: T.tokens['admin@a.partner.test'],
    });
    expect(page2.body.entries[0].seq).not.toBe(page1.body.entries[0].seq);
    expect(BigInt(page2.body.entries[0].seq)).toBeLessThan(BigInt(page1.body.entries[1].seq));

    const csv = await fetch(`${server.url}/partners/${T.partnerA}/audit/export?format=csv`, {
      headers: { authorization: `Bearer ${T.tokens['admin@a.partner.test']}` },
    });
    const text = await csv.text();
    expect(text.split('\n')[0]).toBe(
      'seq,at,actorType,actorId,partnerId,schoolId,action,targetType,targetId,requestId,details,prevHash,hash',
    );
    expect(text).toContain('api_key.created');
    expect(text).not.toContain(T.partnerB);
  });

  it('refuses UPDATE and DELETE on the audit table', async () => {
    await expect(prisma.$executeRawUnsafe('UPDATE audit_events SET action = $1', 'x')).rejects.toThrow(
      /append-only/,
    );
    await expect(prisma.$executeRawUnsafe('DELETE FROM audit_events')).rejects.toThrow(/append-only/);
  });

  it('verifies the chain; altering a row makes verify fail and name it (API and CLI)', async () => {
    const ok = await call('/audit/verify', { token: T.tokens['support@keystage.test'] });
    expect(ok.body).toMatchObject({ ok: true });
    expect(ok.body.entries).toBeGreaterThan(10);
    const cli = resolve(import.meta.dirname, '../dist/cli.js');
    const run = promisify(execFile);
    const good = await run(process.execPath, [cli, 'audit', 'verify'], {
      env: { ...process.env, DATABASE_URL: db.url },
    });
    expect(good.stdout).toMatch(/audit chain intact: \d+ entries/);

    // A database administrator bypasses the trigger and edits one entry.
    const victim = await prisma.auditEvent.findFirstOrThrow({
      where: { action: 'api_key.created' },
      orderBy: { seq: 'asc' },
    });
    await prisma.$transaction([
      prisma.$executeRawUnsafe('ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only'),
      prisma.$executeRawUnsafe(
        `UPDATE audit_events SET details = '{"scopes":["everything"]}' WHERE seq = ${victim.seq}`,
      ),
      prisma.$executeRawUnsafe('ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only'),
    ]);
    const bad = await call('/audit/verify', { token: T.tokens['support@keystage.test'] });
    expect(bad.body).toMatchObject({ ok: false, seq: victim.seq.toString(), reason: 'hash_mismatch' });
    const failed = await run(process.execPath, [cli, 'audit', 'verify'], {
      env: { ...process.env, DATABASE_URL: db.url },
    }).catch((e) => e);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(
      new RegExp(`audit chain broken at entry seq=${victim.seq}: its content does not match`),
    );
  });
});
