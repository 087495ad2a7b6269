// Decisions as operators see them: the JSON of /v1/events and the stream, and one log line per decision
// (applied or refused) carrying the same JSON, so logs alone tell what was done and on what evidence.
import type { Logger } from '../core/log.js';
import type { MeshState, RecordedDecision } from '../mesh/state.js';

/** A recorded decision with its ISO time: what /v1/events, /v1/stream and the log show. */
export type DecisionJson = RecordedDecision & { readonly time: string };

export function decisionJson(e: RecordedDecision): DecisionJson {
  return { ...e, time: new Date(e.at).toISOString() };
}

/**
 * Log every decision at info: "decision applied" or "decision refused" with the decision under
 * `decision`. A decision refused only because it changes nothing (a policy restating the current
 * state) is logged at debug: it is not a refusal anyone acts on. Returns the unsubscribe function.
 */
export function logDecisions(mesh: MeshState, log: Logger): () => void {
  return mesh.subscribe((_snap, changes) => {
    for (const c of changes) {
      if (c.applied) log.info('decision applied', { decision: decisionJson(c) });
      else if (c.refused === 'no change') log.debug('decision changed nothing', { decision: decisionJson(c) });
      else log.info('decision refused', { decision: decisionJson(c) });
    }
  });
}
