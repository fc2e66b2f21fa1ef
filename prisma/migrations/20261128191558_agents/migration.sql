-- CreateTable
CREATE TABLE "platform_keys" (
    "id" UUID NOT NULL,
    "purpose" VARCHAR(32) NOT NULL,
    "key_id" CHAR(64) NOT NULL,
    "public_key" TEXT NOT NULL,
    "private_key_encrypted" TEXT NOT NULL,
    "active" BOOLEAN NOT NULL DEFAULT true,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "retired_at" TIMESTAMPTZ(3),

    CONSTRAINT "platform_keys_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "platform_keys_key_id_key" ON "platform_keys"("key_id");

-- CreateIndex
CREATE INDEX "platform_keys_purpose_active_idx" ON "platform_keys"("purpose", "active");
