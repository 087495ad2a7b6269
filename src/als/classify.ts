// What an Envoy access-log entry says about its upstream endpoint, in meshmedic's outcome classes
// (Envoy's own split: local-origin for connect failures, resets and timeouts; gateway for 502/503/504;
// 5xx; cancelled by the client, which is not charged to the endpoint).
import { Outcome } from '../core/types.js';
import { ENTRY_TCP, Flag, type AlsEntry } from './decode.js';

/** Why an entry carries no observation of an endpoint (label values of meshmedic_als_dropped_total). */
export type NoObservation = 'no_upstream_host' | 'local_reply';

// Envoy answered without an upstream host being involved (no healthy host, no route, overflow, rate
// limit, auth, fault injection, overload, DNS): the entry says nothing about any endpoint.
const LOCAL_REPLY = Flag.NoHealthyUpstream | Flag.NoRouteFound | Flag.UpstreamOverflow | Flag.RateLimited | Flag.Unauthorized
  | Flag.RateLimitServiceError | Flag.FaultInjected | Flag.InvalidEnvoyRequestHeaders | Flag.DownstreamProtocolError
  | Flag.NoFilterConfigFound | Flag.NoClusterFound | Flag.OverloadManager | Flag.DnsResolutionFailure
  | Flag.FailedLocalHealthcheck | Flag.ResponseFromCacheFilter;

// The upstream connection or stream failed: UF, UC, UR, UT, UPE and a maximum stream duration reached.
const LOCAL_ORIGIN = Flag.UpstreamConnectionFailure | Flag.UpstreamConnectionTermination | Flag.UpstreamRemoteReset
  | Flag.UpstreamRequestTimeout | Flag.UpstreamProtocolError | Flag.UpstreamMaxStreamDurationReached;

// The client went away first (DC, DR) or Envoy reset the stream itself (LR): not the endpoint's fault.
const CANCELLED = Flag.DownstreamConnectionTermination | Flag.DownstreamRemoteReset | Flag.LocalReset
  | Flag.StreamIdleTimeout | Flag.DurationTimeout;

/**
 * The outcome to record for the entry's upstream host, or a reason there is none. Upstream failures win
 * over a client that also went away; a response code decides when no flag does.
 */
export function classifyEntry(e: AlsEntry): Outcome | NoObservation {
  if (e.host === '') return 'no_upstream_host';
  const f = e.flags;
  if ((f & LOCAL_ORIGIN) !== 0) return Outcome.LocalOrigin;
  // Envoy answered itself (its own 503/429/404…): the code is not the endpoint's.
  if ((f & LOCAL_REPLY) !== 0) return 'local_reply';
  if (e.kind === ENTRY_TCP) return (f & CANCELLED) !== 0 ? Outcome.Cancelled : Outcome.Success;
  if (e.code === 0) return (f & CANCELLED) !== 0 ? Outcome.Cancelled : 'local_reply';
  if (e.code < 500) return Outcome.Success;
  if (e.code === 502 || e.code === 503 || e.code === 504) return Outcome.Gateway;
  return Outcome.Error5xx;
}

/** The latency sample of an entry in µs: upstream round trip when Envoy recorded it, else the stream's total. */
export function latencyOf(e: AlsEntry): number {
  if (e.upstreamUs >= 0) return e.upstreamUs;
  if (e.totalUs >= 0) return e.totalUs;
  return 1;
}
