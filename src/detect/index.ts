// The detection module: pure detectors over per-endpoint windows, registered by name.
export * from './types.js';
export * from './features.js';
export * from './robust.js';
export * from './arl.js';
export * from './consecutive.js';
export * from './envoy.js';
export * from './peer.js';
export * from './starved.js';
export * from './baseline.js';
export * from './registry.js';
export * from './error-cusum.js';
