CREATE TABLE "address"."purge_tombstones" (
	"user_id" text PRIMARY KEY NOT NULL,
	"until" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE INDEX "purge_tombstones_until_idx" ON "address"."purge_tombstones" USING btree ("until");