// Picks the HTTP/1 engine (proxy.http1Engine): `native` (Node's binding, fastest, on Node internals),
// `portable` (llhttp in WebAssembly, no internals) or `auto` (native when its probe passes, else portable
// with one warning). Engines are loaded on first use only, so commands that never proxy never load them.
import { MeshmedicError } from '../../core/errors.js';
import type { Http1Engine } from './types.js';

export type Http1EngineSetting = 'auto' | 'native' | 'portable';

export interface EngineSelection {
  readonly engine: Http1Engine;
  /** Set when `auto` could not use the native engine: why (for the one warning). */
  readonly fallbackReason: string | null;
}

let native: Promise<Http1Engine> | null = null;
let portable: Promise<Http1Engine> | null = null;

function loadNative(): Promise<Http1Engine> {
  native ??= import('./native.js').then((m) => m.nativeEngine());
  return native;
}

function loadPortable(): Promise<Http1Engine> {
  portable ??= import('./portable.js').then((m) => m.portableEngine());
  return portable;
}

function reason(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** How each engine is loaded (tests substitute a failing one). */
export interface EngineLoaders {
  readonly native: () => Promise<Http1Engine>;
  readonly portable: () => Promise<Http1Engine>;
}

const LOADERS: EngineLoaders = { native: loadNative, portable: loadPortable };

/** Load the engine the setting asks for; a forced engine that cannot run is an MM_ERR_HTTP1_ENGINE error. */
export async function selectHttp1Engine(setting: Http1EngineSetting, loaders: EngineLoaders = LOADERS): Promise<EngineSelection> {
  const { native: loadNative, portable: loadPortable } = loaders;
  if (setting === 'portable') {
    try {
      return { engine: await loadPortable(), fallbackReason: null };
    } catch (err) {
      throw new MeshmedicError('MM_ERR_HTTP1_ENGINE', `proxy.http1Engine is "portable" but the WebAssembly llhttp parser cannot be loaded: ${reason(err)}`);
    }
  }
  try {
    return { engine: await loadNative(), fallbackReason: null };
  } catch (err) {
    if (setting === 'native') {
      throw new MeshmedicError('MM_ERR_HTTP1_ENGINE', `proxy.http1Engine is "native" but this Node's HTTP parser binding failed its probe: ${reason(err)} (use "auto" or "portable")`);
    }
    try {
      return { engine: await loadPortable(), fallbackReason: reason(err) };
    } catch (err2) {
      throw new MeshmedicError('MM_ERR_HTTP1_ENGINE', `no HTTP/1 engine can run: native: ${reason(err)}; portable: ${reason(err2)}`);
    }
  }
}

export { BODY_AS_FRAMED, BODY_NONE, Http1ParseError } from './types.js';
export type { Http1Engine, Http1EngineName, Http1Parser, Http1ReadMode, RequestEvents, ResponseEvents } from './types.js';
