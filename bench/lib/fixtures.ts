/** What the benchmarks seed through the API: one centre in Bengaluru, shops around it, addresses and cart items. */
import { AddressKind } from "@local-e-grocery/gen/grocery/address/v1/address_pb.js";
import { destination, type Point } from "../../test/geo.js";

export const centre: Point = { latitude: 12.9716, longitude: 77.5946 };

/** The `i`-th of a spread of points 0.2–4.1 km from the centre, on bearings 37° apart. */
export function around(i: number): Point {
  return destination(centre, 0.2 + (i % 40) * 0.1, (i * 37) % 360);
}

export const homeAddress = (label: string) => ({
  kind: AddressKind.HOME,
  label,
  recipientName: "Asha Rao",
  phoneNumber: "+919876543210",
  line1: "12 MG Road",
  city: "Bengaluru",
  state: "Karnataka",
  postalCode: "560001",
  countryCode: "IN",
  location: centre,
});

/** The `i`-th shop, at `around(i)`. */
export const shopAddress = (i: number) => ({
  ...homeAddress(`Shop ${i}`),
  kind: AddressKind.SHOP,
  shopName: `Shop ${i}`,
  recipientName: "",
  location: around(i),
});

export const item = (productId: string) => ({ productId, shopId: "shop-1", name: `Product ${productId}`, unitPrice: { currencyCode: "INR", amountMinor: 4500n }, quantity: 1 });
