// The xds component of a running sidecar: started by src/runtime/sidecar.ts when the config enables it.
import type { Component, ComponentFactory } from '../runtime/context.js';

export const startXds: ComponentFactory = async (_ctx): Promise<Component> => {
  throw new Error('the xds component is not built yet');
};
