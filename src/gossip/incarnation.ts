// Incarnation numbers compared with serial-number arithmetic (RFC 1982) over 32 bits, so no value is a
// ceiling: a member accused at any incarnation can always refute with the next one (a spoofed
// dead(2^32 - 1) cannot pin it dead). 0 is never used (it marks "unknown" in the member table).

const HALF = 0x8000_0000;

/** Signed distance from `b` to `a` in (-2^31, 2^31]: positive when `a` is newer. */
export function incarnationDelta(a: number, b: number): number {
  const d = (a - b) >>> 0;
  return d > HALF ? d - 0x1_0000_0000 : d;
}

/** `a` is newer than `b` (exactly half the circle apart is treated as not newer). */
export function incarnationNewer(a: number, b: number): boolean {
  const d = incarnationDelta(a, b);
  return d > 0 && d < HALF;
}

/** The incarnation after `n`, wrapping past 2^32 - 1 and skipping 0. */
export function nextIncarnation(n: number): number {
  const v = (n + 1) >>> 0;
  return v === 0 ? 1 : v;
}

/**
 * Whether a message from a peer may move a member's incarnation from `known` to `claimed`: within `window`
 * ahead of what we hold. Only the member itself raises its incarnation, one step per refutation, so an
 * unauthenticated claim far ahead is a forgery (or a restart we cannot tell apart from one). `window` 0
 * disables the check (authenticated gossip: every sender holds a cluster key).
 */
export function plausibleJump(claimed: number, known: number, window: number): boolean {
  if (window <= 0) return true;
  return incarnationDelta(claimed, known) <= window;
}
