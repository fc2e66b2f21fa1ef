-- AlterTable
ALTER TABLE "run_jobs" ADD COLUMN     "reuse_job_id" UUID,
ADD COLUMN     "reused_bytes" BIGINT NOT NULL DEFAULT 0,
ADD COLUMN     "reused_chunks" INTEGER NOT NULL DEFAULT 0;

-- CreateTable
CREATE TABLE "run_chunks" (
    "job_id" UUID NOT NULL,
    "seq" INTEGER NOT NULL,
    "plain_sha256" CHAR(64) NOT NULL,

    CONSTRAINT "run_chunks_pkey" PRIMARY KEY ("job_id","seq")
);

-- AddForeignKey
ALTER TABLE "run_chunks" ADD CONSTRAINT "run_chunks_job_id_fkey" FOREIGN KEY ("job_id") REFERENCES "run_jobs"("id") ON DELETE CASCADE ON UPDATE CASCADE;
