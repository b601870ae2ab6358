CREATE TABLE "identity"."outbox_deliveries" (
	"event_id" uuid NOT NULL,
	"destination" text NOT NULL,
	"status" text DEFAULT 'pending' NOT NULL,
	"available_time" timestamp with time zone NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"deliver_time" timestamp with time zone,
	"last_error" text,
	CONSTRAINT "outbox_deliveries_event_id_destination_pk" PRIMARY KEY("event_id","destination")
);
--> statement-breakpoint
ALTER TABLE "identity"."outbox" ADD COLUMN "seq" bigserial NOT NULL;--> statement-breakpoint
ALTER TABLE "identity"."signing_keys" ADD COLUMN "activate_time" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "identity"."outbox_deliveries" ADD CONSTRAINT "outbox_deliveries_event_id_outbox_id_fk" FOREIGN KEY ("event_id") REFERENCES "identity"."outbox"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "outbox_deliveries_pending_idx" ON "identity"."outbox_deliveries" USING btree ("available_time") WHERE "identity"."outbox_deliveries"."status" = 'pending';--> statement-breakpoint
-- Account deletions recorded before events were delivered are owed to the services that held user data then.
INSERT INTO "identity"."outbox_deliveries" ("event_id", "destination", "available_time")
SELECT "id", "destination", now() FROM "identity"."outbox", unnest(ARRAY['cart', 'address']) AS "destination"
WHERE "topic" = 'user.deleted' AND "status" = 'pending';
