// Deep freezing of validated configuration: shared by the config loader and the code that receives a
// configuration validated elsewhere (a worker thread), without loading the validator.

/** Freeze an object graph in place and return it. */
export function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o as object)) deepFreeze(v);
  }
  return o;
}
