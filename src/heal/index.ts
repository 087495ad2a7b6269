// The healing module: policies behind one interface, guards, and the engine that runs them.
export * from './policy.js';
export * from './guards.js';
export * from './meshmedic.js';
export * from './envoy-default.js';
export * from './none.js';
export * from './registry.js';
export * from './engine.js';
