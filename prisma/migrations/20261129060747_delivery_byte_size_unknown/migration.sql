-- AlterTable
ALTER TABLE "deliveries" ALTER COLUMN "byte_size" DROP NOT NULL,
ALTER COLUMN "byte_size" DROP DEFAULT;
