-- AlterTable
ALTER TABLE "runs" ADD COLUMN     "purged_at" TIMESTAMPTZ(3);
