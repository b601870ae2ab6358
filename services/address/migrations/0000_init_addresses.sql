CREATE SCHEMA "address";
--> statement-breakpoint
CREATE TABLE "address"."addresses" (
	"id" uuid PRIMARY KEY NOT NULL,
	"owner_id" text NOT NULL,
	"kind" text NOT NULL,
	"label" text DEFAULT '' NOT NULL,
	"recipient_name" text DEFAULT '' NOT NULL,
	"phone_number" text DEFAULT '' NOT NULL,
	"line1" text NOT NULL,
	"line2" text DEFAULT '' NOT NULL,
	"landmark" text DEFAULT '' NOT NULL,
	"city" text NOT NULL,
	"district" text DEFAULT '' NOT NULL,
	"state" text DEFAULT '' NOT NULL,
	"postal_code" text DEFAULT '' NOT NULL,
	"country_code" text NOT NULL,
	"latitude" double precision,
	"longitude" double precision,
	"shop_name" text DEFAULT '' NOT NULL,
	"is_default" boolean DEFAULT false NOT NULL,
	"version" integer DEFAULT 1 NOT NULL,
	"create_time" timestamp with time zone NOT NULL,
	"update_time" timestamp with time zone NOT NULL,
	CONSTRAINT "addresses_kind_check" CHECK (kind in ('home', 'work', 'other', 'shop')),
	CONSTRAINT "addresses_location_check" CHECK ((latitude is null) = (longitude is null) and latitude between -90 and 90 and longitude between -180 and 180),
	CONSTRAINT "addresses_shop_check" CHECK (kind <> 'shop' or (shop_name <> '' and latitude is not null)),
	CONSTRAINT "addresses_version_check" CHECK (version >= 1)
);
--> statement-breakpoint
CREATE INDEX "addresses_owner_create_idx" ON "address"."addresses" USING btree ("owner_id","create_time","id");--> statement-breakpoint
CREATE UNIQUE INDEX "addresses_one_default_per_owner" ON "address"."addresses" USING btree ("owner_id") WHERE is_default;--> statement-breakpoint
CREATE INDEX "addresses_shop_location_idx" ON "address"."addresses" USING btree ("latitude","longitude") WHERE kind = 'shop';