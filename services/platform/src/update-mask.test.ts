import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { AddressKind, AddressSchema, LatLngSchema } from "@local-e-grocery/gen/grocery/address/v1/address_pb.js";
import { NotificationChannel, PreferencesSchema, UserSchema } from "@local-e-grocery/gen/grocery/identity/v1/user_pb.js";
import { DomainError } from "./errors.js";
import { createUpdateMaskResolver } from "./update-mask.js";

/** The INVALID_ARGUMENT that `fn` throws: its field and message. */
function invalid(fn: () => unknown): { field: string | undefined; message: string } {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof DomainError);
    assert.equal(e.code, Code.InvalidArgument);
    return { field: e.field, message: e.message };
  }
  assert.fail("expected INVALID_ARGUMENT, nothing was thrown");
}

// Two real shapes from the contracts: a flat resource with a message replaced whole (Address.location), and one
// with a message whose fields are updated one by one (User.preferences).
const address = createUpdateMaskResolver({
  schema: AddressSchema,
  updatable: ["kind", "label", "recipient_name", "line1", "city", "postal_code", "location"],
  readOnlyReasons: { is_default: "changes only through SetDefaultAddress" },
});
const profile = createUpdateMaskResolver({
  schema: UserSchema,
  updatable: ["display_name", "phone_number", "email", "preferences.language_code", "preferences.currency_code", "preferences.marketing_opt_in", "preferences.notification_channels"],
});
const sorted = (s: Set<string>) => [...s].sort();

describe("createUpdateMaskResolver", () => {
  it("takes each path in its proto name or its JSON name and answers proto names", () => {
    assert.deepEqual(sorted(address.resolve(["recipient_name", "postalCode", "line1"], undefined)), ["line1", "postal_code", "recipient_name"]);
    assert.deepEqual(sorted(profile.resolve(["displayName", "preferences.currencyCode", "preferences.marketing_opt_in"], undefined)), [
      "display_name",
      "preferences.currency_code",
      "preferences.marketing_opt_in",
    ]);
    assert.deepEqual(sorted(address.resolve(["city", "city"], undefined)), ["city"]);
  });

  it("without a mask, or with an empty one, selects every updatable field the resource sets", () => {
    const a = create(AddressSchema, { id: "ignored", city: "Pune", kind: AddressKind.UNSPECIFIED, label: "", location: create(LatLngSchema), isDefault: true });
    // city: a non-default string; location: a present message, even all zero; kind 0 and label "" are unset;
    // id and is_default are set but read-only, so never selected.
    for (const paths of [undefined, []]) assert.deepEqual(sorted(address.resolve(paths, a)), ["city", "location"]);
    assert.deepEqual(sorted(address.resolve(undefined, undefined)), []);

    const u = create(UserSchema, {
      username: "read-only",
      phoneNumber: "+4915112345678",
      preferences: create(PreferencesSchema, { currencyCode: "CHF", marketingOptIn: false, notificationChannels: [NotificationChannel.SMS] }),
    });
    assert.deepEqual(sorted(profile.resolve([], u)), ["phone_number", "preferences.currency_code", "preferences.notification_channels"]);
    // Sub-fields of an absent message are not set; a present but empty one sets nothing.
    assert.deepEqual(sorted(profile.resolve([], create(UserSchema, { displayName: "A" }))), ["display_name"]);
    assert.deepEqual(sorted(profile.resolve([], create(UserSchema, { preferences: create(PreferencesSchema, { marketingOptIn: true }) }))), ["preferences.marketing_opt_in"]);
    assert.deepEqual(sorted(profile.resolve([], create(UserSchema, { preferences: create(PreferencesSchema) }))), []);
  });

  it('"*" alone selects every updatable field, set or not', () => {
    assert.deepEqual([...address.resolve(["*"], create(AddressSchema))], address.all);
    assert.equal(profile.resolve(["*"], undefined).size, 7);
    assert.equal(invalid(() => address.resolve(["*", "city"], undefined)).field, "update_mask");
    assert.equal(invalid(() => profile.resolve(["display_name", "*"], undefined)).field, "update_mask");
  });

  it("lets a message path stand for its updatable sub-fields, and replaces a listed message whole", () => {
    assert.deepEqual(sorted(profile.resolve(["preferences"], undefined)), [
      "preferences.currency_code",
      "preferences.language_code",
      "preferences.marketing_opt_in",
      "preferences.notification_channels",
    ]);
    assert.deepEqual([...address.resolve(["location"], undefined)], ["location"]);
    for (const path of ["location.latitude", "location.longitude"]) {
      const e = invalid(() => address.resolve([path], undefined));
      assert.equal(e.field, "update_mask");
      assert.match(e.message, /location is replaced as a whole/);
    }
  });

  it("refuses read-only and unknown paths, naming update_mask", () => {
    for (const path of ["id", "version", "create_time", "updateTime", "shop_name"]) {
      assert.match(invalid(() => address.resolve([path], undefined)).message, /^update_mask: \w+ is output only or cannot be changed/, path);
    }
    assert.match(invalid(() => address.resolve(["isDefault"], undefined)).message, /^update_mask: is_default changes only through SetDefaultAddress$/);
    for (const path of ["roles", "username", "disabled", "create_time"]) assert.equal(invalid(() => profile.resolve([path], undefined)).field, "update_mask", path);
    for (const path of ["", ".", "owner_id", "lineOne", "Line1", "city.name", "preferences.", "preferences.colour", "preferences.currency_code.x", "recipient-name"]) {
      assert.match(invalid(() => profile.resolve([path], undefined)).message + invalid(() => address.resolve([path], undefined)).message, /unknown field|cannot be changed|output only/, path);
    }
    assert.match(invalid(() => address.resolve(["owner_id"], undefined)).message, /^update_mask: unknown field "owner_id"$/);
    // Nothing is selected when one path of many is wrong.
    assert.equal(invalid(() => address.resolve(["city", "favourite_colour"], undefined)).field, "update_mask");
  });

  it("echoes at most 64 characters of a hostile path", () => {
    const { message } = invalid(() => address.resolve(["x".repeat(10_000)], undefined));
    assert.ok(message.length < 120, message);
  });

  it("names the mask field the method uses", () => {
    const custom = createUpdateMaskResolver({ schema: AddressSchema, updatable: ["city"], maskField: "mask" });
    assert.equal(invalid(() => custom.resolve(["nope"], undefined)).field, "mask");
  });

  it("refuses at construction an updatable list that does not match the schema", () => {
    for (const updatable of [["cty"], ["recipientName"], ["city.name"], ["location", "location.latitude"], ["city", "city"], ["preferences.x"]]) {
      assert.throws(() => createUpdateMaskResolver({ schema: updatable[0]?.startsWith("pref") ? UserSchema : AddressSchema, updatable }), /update mask of grocery\./, String(updatable));
    }
  });
});
