// What the data plane served, for the process's own housekeeping: a counter the proxy bumps once per
// forwarded request (an integer increment, no allocation) and the young-generation governor
// (src/runtime/young-generation.ts) reads and resets once per tick to tell a serving process from an idle one.

/** Requests (each attempt, retries included) the proxy began in this process since the last read. */
export const dataPlaneActivity = { requests: 0 };

/** The requests begun since the last call, and start counting again. */
export function takeRequestCount(): number {
  const n = dataPlaneActivity.requests;
  dataPlaneActivity.requests = 0;
  return n;
}
