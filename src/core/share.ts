// Sharing of equal small value objects (an endpoint's locality, its empty labels, a service's empty routing):
// a configuration or a discovery list of thousands of endpoints repeats the same few, each a separate object
// (~50–60 B) unless they are shared. Only frozen objects are handed out, so sharing is never observable.

/** Most distinct objects one `ValueSharer` remembers; past it, objects are frozen but not shared. */
export const MAX_SHARED_VALUES = 4096;

type Primitive = string | number | boolean | null;

/** A plain object whose own values are all primitives (a leaf of a JSON tree), else undefined. */
function leafKey(o: object): string | undefined {
  if (Array.isArray(o) || Object.getPrototypeOf(o) !== Object.prototype) return undefined;
  let key = '';
  for (const [k, v] of Object.entries(o)) {
    if (v !== null && typeof v === 'object') return undefined;
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean' && v !== null) return undefined;
    key += `${JSON.stringify(k)}:${JSON.stringify(v as Primitive)},`;
  }
  return key;
}

/** Hands out one frozen instance per distinct leaf value (same keys in the same order, same values). */
export class ValueSharer {
  private readonly byKey = new Map<string, object>();

  constructor(private readonly max = MAX_SHARED_VALUES) {}

  /** The shared frozen object equal to `o` (`o` itself, frozen, the first time); `o` frozen when it is no leaf. */
  share<T extends object>(o: T): T {
    const key = leafKey(o);
    if (key === undefined) return Object.freeze(o);
    const known = this.byKey.get(key);
    if (known) return known as T;
    Object.freeze(o);
    if (this.byKey.size < this.max) this.byKey.set(key, o);
    return o;
  }

  /** Distinct objects remembered. */
  get size(): number {
    return this.byKey.size;
  }
}

/**
 * Freeze a JSON-like tree (plain objects and arrays) in place, replacing every leaf object with the one
 * shared instance of its value. Returns the root (itself shared if it is a leaf).
 */
export function freezeSharingLeaves<T>(root: T, sharer = new ValueSharer()): T {
  const visit = (v: unknown): unknown => {
    if (v === null || typeof v !== 'object' || Object.isFrozen(v)) return v;
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) v[i] = visit(v[i]);
      return Object.freeze(v);
    }
    const o = v as Record<string, unknown>;
    for (const k of Object.keys(o)) o[k] = visit(o[k]);
    return sharer.share(o);
  };
  return visit(root) as T;
}
