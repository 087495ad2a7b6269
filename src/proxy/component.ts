// The proxy component of a running sidecar: started by src/runtime/sidecar.ts when the config enables it.
import type { Component, ComponentFactory } from '../runtime/context.js';

export const startProxy: ComponentFactory = async (_ctx): Promise<Component> => {
  throw new Error('the proxy component is not built yet');
};
