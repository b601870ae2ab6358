CREATE TABLE "address"."user_standings" (
	"user_id" text PRIMARY KEY NOT NULL,
	"enabled" boolean NOT NULL,
	"shop_owner" boolean NOT NULL,
	"sequence" bigint NOT NULL,
	CONSTRAINT "user_standings_sequence_check" CHECK (sequence > 0)
);
