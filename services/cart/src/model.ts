/** The cart service's domain types: plain data, independent of the wire format and of the database. */

/** A cart's own row: who owns it, its name and its version. */
export interface CartRecord {
  readonly id: string;
  readonly ownerId: string;
  readonly name: string;
  readonly version: bigint;
  /** Milliseconds since the epoch. */
  readonly createTime: number;
  /** Milliseconds since the epoch. */
  readonly updateTime: number;
}

/** The item of an AddItem call after validation. */
export interface NewItem {
  readonly productId: string;
  readonly shopId: string;
  readonly name: string;
  readonly currencyCode: string;
  readonly unitPriceMinor: bigint;
  readonly quantity: number;
}

/** One line of a cart, keyed by (productId, shopId), with its place in the cart. */
export interface CartLine extends NewItem {
  /** Orders lines by when they were first added: the cart version that created the line. */
  readonly position: bigint;
}

/** A cart with its lines, ordered by position. */
export interface CartView extends CartRecord {
  readonly items: readonly CartLine[];
}

/** What an idempotent AddItem stores as its result: a CartView with bigints as strings. */
export interface CartSnapshot {
  id: string;
  ownerId: string;
  name: string;
  version: string;
  createTime: number;
  updateTime: number;
  items: { productId: string; shopId: string; name: string; currencyCode: string; unitPriceMinor: string; quantity: number; position: string }[];
}

export function toSnapshot(view: CartView): CartSnapshot {
  return {
    id: view.id,
    ownerId: view.ownerId,
    name: view.name,
    version: view.version.toString(),
    createTime: view.createTime,
    updateTime: view.updateTime,
    items: view.items.map((l) => ({ ...l, unitPriceMinor: l.unitPriceMinor.toString(), position: l.position.toString() })),
  };
}

export function fromSnapshot(s: CartSnapshot): CartView {
  return {
    id: s.id,
    ownerId: s.ownerId,
    name: s.name,
    version: BigInt(s.version),
    createTime: s.createTime,
    updateTime: s.updateTime,
    items: s.items.map((l) => ({ ...l, unitPriceMinor: BigInt(l.unitPriceMinor), position: BigInt(l.position) })),
  };
}
