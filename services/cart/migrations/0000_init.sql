CREATE SCHEMA "cart";
--> statement-breakpoint
CREATE TABLE "cart"."add_item_requests" (
	"owner_id" text NOT NULL,
	"request_id" uuid NOT NULL,
	"fingerprint" text NOT NULL,
	"result" jsonb,
	"create_time" timestamp with time zone NOT NULL,
	CONSTRAINT "add_item_requests_pkey" PRIMARY KEY("owner_id","request_id")
);
--> statement-breakpoint
CREATE TABLE "cart"."cart_items" (
	"cart_id" uuid NOT NULL,
	"product_id" text NOT NULL,
	"shop_id" text NOT NULL,
	"name" text NOT NULL,
	"currency_code" text NOT NULL,
	"unit_price_minor" bigint NOT NULL,
	"quantity" integer NOT NULL,
	"position" bigint NOT NULL,
	CONSTRAINT "cart_items_pkey" PRIMARY KEY("cart_id","product_id","shop_id"),
	CONSTRAINT "cart_items_quantity_positive" CHECK ("cart"."cart_items"."quantity" > 0),
	CONSTRAINT "cart_items_unit_price_not_negative" CHECK ("cart"."cart_items"."unit_price_minor" >= 0)
);
--> statement-breakpoint
CREATE TABLE "cart"."carts" (
	"id" uuid PRIMARY KEY NOT NULL,
	"owner_id" text NOT NULL,
	"name" text NOT NULL,
	"name_key" text NOT NULL,
	"version" bigint NOT NULL,
	"create_time" timestamp with time zone NOT NULL,
	"update_time" timestamp with time zone NOT NULL,
	CONSTRAINT "carts_version_positive" CHECK ("cart"."carts"."version" > 0)
);
--> statement-breakpoint
ALTER TABLE "cart"."cart_items" ADD CONSTRAINT "cart_items_cart_id_fkey" FOREIGN KEY ("cart_id") REFERENCES "cart"."carts"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "add_item_requests_create_time_idx" ON "cart"."add_item_requests" USING btree ("create_time");--> statement-breakpoint
CREATE UNIQUE INDEX "carts_owner_name_key_idx" ON "cart"."carts" USING btree ("owner_id","name_key");--> statement-breakpoint
CREATE INDEX "carts_owner_create_time_idx" ON "cart"."carts" USING btree ("owner_id","create_time","id");