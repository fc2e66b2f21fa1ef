-- AlterTable
ALTER TABLE "deliveries" ADD COLUMN     "content_encoding" VARCHAR(20);
