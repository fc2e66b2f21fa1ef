-- CreateEnum
CREATE TYPE "run_job_state" AS ENUM ('PENDING', 'OFFERED', 'RUNNING', 'UPLOADED', 'FAILED', 'CANCELLED');

-- AlterTable
ALTER TABLE "deliveries" ADD COLUMN     "acked_at" TIMESTAMPTZ(3),
ADD COLUMN     "byte_size" BIGINT NOT NULL DEFAULT 0,
ADD COLUMN     "content_type" VARCHAR(100) NOT NULL,
ADD COLUMN     "dataset_name" VARCHAR(128),
ADD COLUMN     "extract_id" UUID NOT NULL,
ADD COLUMN     "full_load" BOOLEAN NOT NULL DEFAULT false,
ADD COLUMN     "hold_reason" TEXT,
ADD COLUMN     "object_key" VARCHAR(768) NOT NULL,
ADD COLUMN     "seq" BIGSERIAL NOT NULL;

-- AlterTable
ALTER TABLE "partners" ADD COLUMN     "webhook_secret_encrypted" TEXT,
ADD COLUMN     "webhook_secret_previous_encrypted" TEXT,
ADD COLUMN     "webhook_url" VARCHAR(2000);

-- AlterTable
ALTER TABLE "runs" ADD COLUMN     "occurrence_id" VARCHAR(64),
ADD COLUMN     "resync" BOOLEAN NOT NULL DEFAULT false,
ADD COLUMN     "wait_reason" VARCHAR(200);

-- AlterTable
ALTER TABLE "schedules" ADD COLUMN     "override" JSONB;

-- AlterTable
ALTER TABLE "schools" ADD COLUMN     "calendar" JSONB,
ADD COLUMN     "max_concurrent_runs" INTEGER NOT NULL DEFAULT 1;

-- CreateTable
CREATE TABLE "run_jobs" (
    "id" UUID NOT NULL,
    "run_id" UUID NOT NULL,
    "dataset_name" VARCHAR(128) NOT NULL,
    "position" INTEGER NOT NULL,
    "state" "run_job_state" NOT NULL DEFAULT 'PENDING',
    "agent_id" UUID,
    "wrapped_key" TEXT,
    "result_key_id" CHAR(64),
    "next_seq" INTEGER NOT NULL DEFAULT 0,
    "row_count" INTEGER,
    "chunk_count" INTEGER,
    "byte_count" BIGINT,
    "result_sha256" CHAR(64),
    "last_reject_code" VARCHAR(64),
    "error_code" VARCHAR(100),
    "error_message" TEXT,
    "offered_at" TIMESTAMPTZ(3),
    "accepted_at" TIMESTAMPTZ(3),
    "uploaded_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "run_jobs_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "delta_states" (
    "id" UUID NOT NULL,
    "school_id" UUID NOT NULL,
    "extract_id" UUID NOT NULL,
    "dataset_name" VARCHAR(128) NOT NULL,
    "params_hash" CHAR(64) NOT NULL,
    "snapshot_key" VARCHAR(768) NOT NULL,
    "row_count" INTEGER NOT NULL,
    "run_id" UUID NOT NULL,
    "run_uploaded_at" TIMESTAMPTZ(3) NOT NULL,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "delta_states_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "run_jobs_run_id_idx" ON "run_jobs"("run_id");

-- CreateIndex
CREATE INDEX "run_jobs_state_idx" ON "run_jobs"("state");

-- CreateIndex
CREATE UNIQUE INDEX "run_jobs_run_id_dataset_name_key" ON "run_jobs"("run_id", "dataset_name");

-- CreateIndex
CREATE UNIQUE INDEX "delta_states_school_id_extract_id_dataset_name_params_hash_key" ON "delta_states"("school_id", "extract_id", "dataset_name", "params_hash");

-- CreateIndex
CREATE UNIQUE INDEX "deliveries_seq_key" ON "deliveries"("seq");

-- CreateIndex
CREATE INDEX "deliveries_run_id_idx" ON "deliveries"("run_id");

-- CreateIndex
CREATE INDEX "runs_state_due_at_idx" ON "runs"("state", "due_at");

-- CreateIndex
CREATE UNIQUE INDEX "runs_schedule_id_occurrence_id_key" ON "runs"("schedule_id", "occurrence_id");

-- AddForeignKey
ALTER TABLE "run_jobs" ADD CONSTRAINT "run_jobs_run_id_fkey" FOREIGN KEY ("run_id") REFERENCES "runs"("id") ON DELETE CASCADE ON UPDATE CASCADE;
