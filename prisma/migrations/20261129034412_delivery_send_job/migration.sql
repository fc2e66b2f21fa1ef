-- AlterTable
ALTER TABLE "deliveries" ADD COLUMN     "send_job_id" VARCHAR(200);
