// For the learning diagnostics: record every point the engine's predictor models are given (the models
// keep only a ring, cleared when an endpoint leaves rotation), per model, in creation order.
import { EndpointModel, type WindowPoint } from '../../src/learn/predictor.js';

/** Starts recording; `take()` returns what was recorded since the last call and starts afresh. */
export function recordPoints(): { take(): WindowPoint[][] } {
  let recorded = new Map<EndpointModel, WindowPoint[]>();
  const push = EndpointModel.prototype.push;
  EndpointModel.prototype.push = function record(this: EndpointModel, p: WindowPoint) {
    let list = recorded.get(this);
    if (!list) recorded.set(this, (list = []));
    list.push({ ...p });
    push.call(this, p);
  };
  return {
    take() {
      const out = [...recorded.values()];
      recorded = new Map();
      return out;
    },
  };
}
