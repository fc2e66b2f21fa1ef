-- CreateEnum
CREATE TYPE "mis_type" AS ENUM ('SIMS', 'CMIS', 'DEMO_SQLITE', 'POSTGRES', 'MYSQL', 'OTHER');

-- CreateEnum
CREATE TYPE "role" AS ENUM ('SUPPORT', 'PARTNER_ADMIN', 'PARTNER_DEVELOPER', 'SCHOOL_ADMIN', 'SCHOOL_VIEWER');

-- CreateEnum
CREATE TYPE "agent_status" AS ENUM ('ACTIVE', 'REPLACED', 'REVOKED');

-- CreateEnum
CREATE TYPE "agreement_status" AS ENUM ('REQUESTED', 'APPROVED', 'REJECTED', 'REVOKED');

-- CreateEnum
CREATE TYPE "run_state" AS ENUM ('SCHEDULED', 'DISPATCHED', 'RUNNING', 'UPLOADED', 'PROCESSED', 'DELIVERED', 'FAILED', 'MISSED', 'CANCELLED');

-- CreateEnum
CREATE TYPE "run_trigger" AS ENUM ('SCHEDULED', 'MANUAL', 'RESYNC', 'APPROVAL');

-- CreateEnum
CREATE TYPE "delivery_sink" AS ENUM ('WEBHOOK', 'PULL', 'FILE');

-- CreateEnum
CREATE TYPE "delivery_state" AS ENUM ('PENDING', 'HELD', 'DELIVERED', 'FAILED', 'DEAD_LETTER', 'DISCARDED');

-- CreateEnum
CREATE TYPE "actor_type" AS ENUM ('USER', 'API_KEY', 'AGENT', 'SYSTEM');

-- CreateTable
CREATE TABLE "partners" (
    "id" UUID NOT NULL,
    "slug" VARCHAR(64) NOT NULL,
    "name" VARCHAR(200) NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "partners_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "schools" (
    "id" UUID NOT NULL,
    "urn" VARCHAR(6) NOT NULL,
    "la_estab" VARCHAR(8) NOT NULL,
    "name" VARCHAR(200) NOT NULL,
    "mis_type" "mis_type" NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "schools_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "users" (
    "id" UUID NOT NULL,
    "email" VARCHAR(320) NOT NULL,
    "display_name" VARCHAR(200) NOT NULL,
    "password_hash" TEXT,
    "failed_login_count" INTEGER NOT NULL DEFAULT 0,
    "locked_until" TIMESTAMPTZ(3),
    "disabled_at" TIMESTAMPTZ(3),
    "last_login_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "users_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "memberships" (
    "id" UUID NOT NULL,
    "user_id" UUID NOT NULL,
    "role" "role" NOT NULL,
    "partner_id" UUID,
    "school_id" UUID,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "memberships_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "agents" (
    "id" UUID NOT NULL,
    "school_id" UUID NOT NULL,
    "public_key" TEXT NOT NULL,
    "status" "agent_status" NOT NULL DEFAULT 'ACTIVE',
    "hostname" VARCHAR(255),
    "version" VARCHAR(64),
    "os" VARCHAR(128),
    "mis_kind" VARCHAR(32),
    "mis_version" VARCHAR(128),
    "supervised" BOOLEAN NOT NULL DEFAULT false,
    "last_heartbeat" JSONB,
    "last_seen_at" TIMESTAMPTZ(3),
    "enrolled_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "revoked_at" TIMESTAMPTZ(3),
    "revoked_reason" TEXT,

    CONSTRAINT "agents_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "enrolment_tokens" (
    "id" UUID NOT NULL,
    "school_id" UUID NOT NULL,
    "token_hash" CHAR(64) NOT NULL,
    "created_by_id" UUID,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,
    "used_at" TIMESTAMPTZ(3),
    "agent_id" UUID,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "enrolment_tokens_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "extracts" (
    "id" UUID NOT NULL,
    "partner_id" UUID NOT NULL,
    "slug" VARCHAR(64) NOT NULL,
    "name" VARCHAR(200) NOT NULL,
    "description" TEXT NOT NULL DEFAULT '',
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "extracts_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "extract_versions" (
    "id" UUID NOT NULL,
    "extract_id" UUID NOT NULL,
    "version" INTEGER NOT NULL,
    "mis_type" "mis_type" NOT NULL,
    "document" JSONB NOT NULL,
    "document_hash" CHAR(64) NOT NULL,
    "published_by_id" UUID,
    "published_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "extract_versions_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "data_agreements" (
    "id" UUID NOT NULL,
    "partner_id" UUID NOT NULL,
    "school_id" UUID NOT NULL,
    "status" "agreement_status" NOT NULL DEFAULT 'REQUESTED',
    "purpose" TEXT NOT NULL,
    "lawful_basis" VARCHAR(64) NOT NULL,
    "retention_days" INTEGER NOT NULL,
    "requested_by_id" UUID,
    "decided_by_id" UUID,
    "decision_note" TEXT,
    "requested_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "decided_at" TIMESTAMPTZ(3),
    "revoked_at" TIMESTAMPTZ(3),

    CONSTRAINT "data_agreements_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "agreement_extract_versions" (
    "agreement_id" UUID NOT NULL,
    "extract_version_id" UUID NOT NULL,
    "columns" JSONB NOT NULL,

    CONSTRAINT "agreement_extract_versions_pkey" PRIMARY KEY ("agreement_id","extract_version_id")
);

-- CreateTable
CREATE TABLE "schedules" (
    "id" UUID NOT NULL,
    "agreement_id" UUID NOT NULL,
    "extract_id" UUID NOT NULL,
    "school_id" UUID NOT NULL,
    "spec" JSONB NOT NULL,
    "offset_seconds" INTEGER NOT NULL DEFAULT 0,
    "active" BOOLEAN NOT NULL DEFAULT true,
    "next_due_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "schedules_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "runs" (
    "id" UUID NOT NULL,
    "partner_id" UUID NOT NULL,
    "school_id" UUID NOT NULL,
    "agreement_id" UUID NOT NULL,
    "extract_version_id" UUID NOT NULL,
    "schedule_id" UUID,
    "agent_id" UUID,
    "trigger" "run_trigger" NOT NULL,
    "state" "run_state" NOT NULL DEFAULT 'SCHEDULED',
    "params_hash" CHAR(64) NOT NULL,
    "params" JSONB NOT NULL DEFAULT '{}',
    "attempt" INTEGER NOT NULL DEFAULT 0,
    "due_at" TIMESTAMPTZ(3) NOT NULL,
    "deadline_at" TIMESTAMPTZ(3) NOT NULL,
    "dispatched_at" TIMESTAMPTZ(3),
    "started_at" TIMESTAMPTZ(3),
    "uploaded_at" TIMESTAMPTZ(3),
    "processed_at" TIMESTAMPTZ(3),
    "delivered_at" TIMESTAMPTZ(3),
    "finished_at" TIMESTAMPTZ(3),
    "row_count" INTEGER,
    "insert_count" INTEGER,
    "update_count" INTEGER,
    "delete_count" INTEGER,
    "error_code" VARCHAR(100),
    "error_message" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "runs_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "deliveries" (
    "id" UUID NOT NULL,
    "run_id" UUID NOT NULL,
    "partner_id" UUID NOT NULL,
    "school_id" UUID NOT NULL,
    "sink" "delivery_sink" NOT NULL,
    "format" VARCHAR(32) NOT NULL,
    "state" "delivery_state" NOT NULL DEFAULT 'PENDING',
    "idempotency_key" VARCHAR(128) NOT NULL,
    "insert_count" INTEGER NOT NULL DEFAULT 0,
    "update_count" INTEGER NOT NULL DEFAULT 0,
    "delete_count" INTEGER NOT NULL DEFAULT 0,
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "last_error" TEXT,
    "next_attempt_at" TIMESTAMPTZ(3),
    "delivered_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "deliveries_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "audit_events" (
    "seq" BIGSERIAL NOT NULL,
    "at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "actor_type" "actor_type" NOT NULL,
    "actor_id" VARCHAR(64),
    "partner_id" UUID,
    "school_id" UUID,
    "action" VARCHAR(100) NOT NULL,
    "target_type" VARCHAR(64),
    "target_id" VARCHAR(64),
    "request_id" VARCHAR(64),
    "details" JSONB NOT NULL DEFAULT '{}',
    "prev_hash" CHAR(64) NOT NULL,
    "hash" CHAR(64) NOT NULL,

    CONSTRAINT "audit_events_pkey" PRIMARY KEY ("seq")
);

-- CreateIndex
CREATE UNIQUE INDEX "partners_slug_key" ON "partners"("slug");

-- CreateIndex
CREATE UNIQUE INDEX "schools_urn_key" ON "schools"("urn");

-- CreateIndex
CREATE UNIQUE INDEX "users_email_key" ON "users"("email");

-- CreateIndex
CREATE INDEX "memberships_partner_id_idx" ON "memberships"("partner_id");

-- CreateIndex
CREATE INDEX "memberships_school_id_idx" ON "memberships"("school_id");

-- CreateIndex
CREATE UNIQUE INDEX "memberships_user_id_role_partner_id_school_id_key" ON "memberships"("user_id", "role", "partner_id", "school_id");

-- CreateIndex
CREATE INDEX "agents_school_id_status_idx" ON "agents"("school_id", "status");

-- CreateIndex
CREATE UNIQUE INDEX "enrolment_tokens_token_hash_key" ON "enrolment_tokens"("token_hash");

-- CreateIndex
CREATE INDEX "enrolment_tokens_school_id_idx" ON "enrolment_tokens"("school_id");

-- CreateIndex
CREATE UNIQUE INDEX "extracts_partner_id_slug_key" ON "extracts"("partner_id", "slug");

-- CreateIndex
CREATE UNIQUE INDEX "extract_versions_extract_id_version_key" ON "extract_versions"("extract_id", "version");

-- CreateIndex
CREATE INDEX "data_agreements_partner_id_status_idx" ON "data_agreements"("partner_id", "status");

-- CreateIndex
CREATE INDEX "data_agreements_school_id_status_idx" ON "data_agreements"("school_id", "status");

-- CreateIndex
CREATE INDEX "agreement_extract_versions_extract_version_id_idx" ON "agreement_extract_versions"("extract_version_id");

-- CreateIndex
CREATE INDEX "schedules_active_next_due_at_idx" ON "schedules"("active", "next_due_at");

-- CreateIndex
CREATE UNIQUE INDEX "schedules_agreement_id_extract_id_key" ON "schedules"("agreement_id", "extract_id");

-- CreateIndex
CREATE INDEX "runs_school_id_state_idx" ON "runs"("school_id", "state");

-- CreateIndex
CREATE INDEX "runs_partner_id_created_at_idx" ON "runs"("partner_id", "created_at");

-- CreateIndex
CREATE INDEX "runs_state_deadline_at_idx" ON "runs"("state", "deadline_at");

-- CreateIndex
CREATE UNIQUE INDEX "deliveries_idempotency_key_key" ON "deliveries"("idempotency_key");

-- CreateIndex
CREATE INDEX "deliveries_partner_id_school_id_created_at_idx" ON "deliveries"("partner_id", "school_id", "created_at");

-- CreateIndex
CREATE INDEX "deliveries_state_next_attempt_at_idx" ON "deliveries"("state", "next_attempt_at");

-- CreateIndex
CREATE UNIQUE INDEX "audit_events_hash_key" ON "audit_events"("hash");

-- CreateIndex
CREATE INDEX "audit_events_partner_id_seq_idx" ON "audit_events"("partner_id", "seq");

-- CreateIndex
CREATE INDEX "audit_events_school_id_seq_idx" ON "audit_events"("school_id", "seq");

-- AddForeignKey
ALTER TABLE "memberships" ADD CONSTRAINT "memberships_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "memberships" ADD CONSTRAINT "memberships_partner_id_fkey" FOREIGN KEY ("partner_id") REFERENCES "partners"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "memberships" ADD CONSTRAINT "memberships_school_id_fkey" FOREIGN KEY ("school_id") REFERENCES "schools"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "agents" ADD CONSTRAINT "agents_school_id_fkey" FOREIGN KEY ("school_id") REFERENCES "schools"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "enrolment_tokens" ADD CONSTRAINT "enrolment_tokens_school_id_fkey" FOREIGN KEY ("school_id") REFERENCES "schools"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "enrolment_tokens" ADD CONSTRAINT "enrolment_tokens_created_by_id_fkey" FOREIGN KEY ("created_by_id") REFERENCES "users"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "enrolment_tokens" ADD CONSTRAINT "enrolment_tokens_agent_id_fkey" FOREIGN KEY ("agent_id") REFERENCES "agents"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "extracts" ADD CONSTRAINT "extracts_partner_id_fkey" FOREIGN KEY ("partner_id") REFERENCES "partners"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "extract_versions" ADD CONSTRAINT "extract_versions_extract_id_fkey" FOREIGN KEY ("extract_id") REFERENCES "extracts"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "extract_versions" ADD CONSTRAINT "extract_versions_published_by_id_fkey" FOREIGN KEY ("published_by_id") REFERENCES "users"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "data_agreements" ADD CONSTRAINT "data_agreements_partner_id_fkey" FOREIGN KEY ("partner_id") REFERENCES "partners"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "data_agreements" ADD CONSTRAINT "data_agreements_school_id_fkey" FOREIGN KEY ("school_id") REFERENCES "schools"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "agreement_extract_versions" ADD CONSTRAINT "agreement_extract_versions_agreement_id_fkey" FOREIGN KEY ("agreement_id") REFERENCES "data_agreements"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "agreement_extract_versions" ADD CONSTRAINT "agreement_extract_versions_extract_version_id_fkey" FOREIGN KEY ("extract_version_id") REFERENCES "extract_versions"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "schedules" ADD CONSTRAINT "schedules_agreement_id_fkey" FOREIGN KEY ("agreement_id") REFERENCES "data_agreements"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "schedules" ADD CONSTRAINT "schedules_extract_id_fkey" FOREIGN KEY ("extract_id") REFERENCES "extracts"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "schedules" ADD CONSTRAINT "schedules_school_id_fkey" FOREIGN KEY ("school_id") REFERENCES "schools"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "runs" ADD CONSTRAINT "runs_partner_id_fkey" FOREIGN KEY ("partner_id") REFERENCES "partners"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "runs" ADD CONSTRAINT "runs_school_id_fkey" FOREIGN KEY ("school_id") REFERENCES "schools"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "runs" ADD CONSTRAINT "runs_agreement_id_fkey" FOREIGN KEY ("agreement_id") REFERENCES "data_agreements"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "runs" ADD CONSTRAINT "runs_extract_version_id_fkey" FOREIGN KEY ("extract_version_id") REFERENCES "extract_versions"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "runs" ADD CONSTRAINT "runs_schedule_id_fkey" FOREIGN KEY ("schedule_id") REFERENCES "schedules"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "runs" ADD CONSTRAINT "runs_agent_id_fkey" FOREIGN KEY ("agent_id") REFERENCES "agents"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "deliveries" ADD CONSTRAINT "deliveries_run_id_fkey" FOREIGN KEY ("run_id") REFERENCES "runs"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "deliveries" ADD CONSTRAINT "deliveries_partner_id_fkey" FOREIGN KEY ("partner_id") REFERENCES "partners"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "deliveries" ADD CONSTRAINT "deliveries_school_id_fkey" FOREIGN KEY ("school_id") REFERENCES "schools"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- ─── Hand-written: what schema.prisma cannot express ────────────────────────

-- A membership belongs to exactly the tenant its role implies. (A trigger rather than a CHECK
-- constraint: the WebAssembly schema engine cannot introspect CHECK constraints; see ADR 0002.)
CREATE FUNCTION "keystage_membership_tenant"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NOT (
    (NEW."role" = 'SUPPORT' AND NEW."partner_id" IS NULL AND NEW."school_id" IS NULL) OR
    (NEW."role" IN ('PARTNER_ADMIN', 'PARTNER_DEVELOPER') AND NEW."partner_id" IS NOT NULL AND NEW."school_id" IS NULL) OR
    (NEW."role" IN ('SCHOOL_ADMIN', 'SCHOOL_VIEWER') AND NEW."school_id" IS NOT NULL AND NEW."partner_id" IS NULL)
  ) THEN
    RAISE EXCEPTION 'membership role % does not match its tenant', NEW."role" USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END;
$$;

CREATE TRIGGER "memberships_tenant_matches_role"
  BEFORE INSERT OR UPDATE ON "memberships"
  FOR EACH ROW EXECUTE FUNCTION "keystage_membership_tenant"();

-- The audit log is append-only: no UPDATE, no DELETE, no TRUNCATE through the application's role.
CREATE FUNCTION "keystage_refuse_change"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% on % is not allowed: the table is append-only', TG_OP, TG_TABLE_NAME
    USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER "audit_events_append_only"
  BEFORE UPDATE OR DELETE ON "audit_events"
  FOR EACH ROW EXECUTE FUNCTION "keystage_refuse_change"();
CREATE TRIGGER "audit_events_no_truncate"
  BEFORE TRUNCATE ON "audit_events"
  FOR EACH STATEMENT EXECUTE FUNCTION "keystage_refuse_change"();

-- Published extract versions are immutable (deleting the whole extract still cascades).
CREATE TRIGGER "extract_versions_immutable"
  BEFORE UPDATE ON "extract_versions"
  FOR EACH ROW EXECUTE FUNCTION "keystage_refuse_change"();
