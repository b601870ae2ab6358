CREATE TABLE "identity"."login_throttle_reservations" (
	"attempt_id" uuid NOT NULL,
	"key" text NOT NULL,
	"expire_time" timestamp with time zone NOT NULL,
	CONSTRAINT "login_throttle_reservations_attempt_id_key_pk" PRIMARY KEY("attempt_id","key")
);
--> statement-breakpoint
CREATE INDEX "login_throttle_reservations_key_idx" ON "identity"."login_throttle_reservations" USING btree ("key","expire_time");