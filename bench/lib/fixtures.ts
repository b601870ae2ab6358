/** What the benchmarks seed through the API: one centre in Bengaluru, shops around it, addresses and cart items. */
import { home, shop } from "../../test/addresses.js";
import { destination, type Point } from "../../test/geo.js";

export const centre: Point = { latitude: 12.9716, longitude: 77.5946 };

/** The `i`-th of a spread of points 0.2–4.1 km from the centre, on bearings 37° apart. */
export function around(i: number): Point {
  return destination(centre, 0.2 + (i % 40) * 0.1, (i * 37) % 360);
}

export const homeAddress = (label: string) => home({ label, location: centre });

/** The `i`-th shop, at `around(i)`. */
export const shopAddress = (i: number) => shop(`Shop ${i}`, around(i));

export const item = (productId: string) => ({ productId, shopId: "shop-1", name: `Product ${productId}`, unitPrice: { currencyCode: "INR", amountMinor: 4500n }, quantity: 1 });
