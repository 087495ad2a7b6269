// The xds component of a running sidecar: serves every service of the mesh over ADS (SotW and Delta),
// follows mesh changes with pushes coalesced over a few milliseconds, and exposes ACK/NACK status.
import { parseHostPort } from '../core/address.js';
import type { TimerHandle } from '../core/clock.js';
import type { Config } from '../config/types.js';
import { providesGrpcServices, type Component, type ComponentFactory } from '../runtime/context.js';
import { SnapshotCache } from './cache.js';
import { XdsGenerator } from './generator.js';
import { istioOptionsFrom, type IstioOptions } from './istio.js';
import { DEFAULT_BUILD_OPTIONS, outlierSettingsFrom, type BuildOptions, type ClientFlavor } from './resources.js';
import { AdsServer } from './server.js';
import { xdsServerCredentials } from './tls.js';

/** Build options for one client flavor from the validated config. */
export function buildOptionsFrom(config: Config, flavor: ClientFlavor): BuildOptions {
  const x = config.xds;
  const services = new Map(config.services.map((s) => [s.name, s]));
  const envoyAddr = parseHostPort(x.envoyListener?.address ?? '127.0.0.1:17100', { allowPortZero: true });
  return {
    ...DEFAULT_BUILD_OPTIONS,
    flavor,
    ejectedAs: x.ejectedAs ?? DEFAULT_BUILD_OPTIONS.ejectedAs,
    weightScale: x.weightScale ?? DEFAULT_BUILD_OPTIONS.weightScale,
    endpointLocalities: flavor === 'grpc' && (x.endpointLocalities ?? true),
    subsetLabel: x.subsetLabel ?? DEFAULT_BUILD_OPTIONS.subsetLabel,
    connectTimeoutMs: x.connectTimeoutMs ?? DEFAULT_BUILD_OPTIONS.connectTimeoutMs,
    envoyListener: {
      name: x.envoyListener?.name ?? DEFAULT_BUILD_OPTIONS.envoyListener.name,
      address: typeof envoyAddr === 'string' ? '127.0.0.1' : envoyAddr.host,
      port: typeof envoyAddr === 'string' ? 17100 : envoyAddr.port,
    },
    outlier: (name) => outlierSettingsFrom(config.healing, services.get(name)?.healing),
    protocol: (name) => services.get(name)?.protocol ?? 'h2c',
  };
}

export const startXds: ComponentFactory = async (ctx): Promise<Component> => {
  const x = ctx.config.xds;
  const hp = parseHostPort(x.listen, { allowPortZero: true });
  if (typeof hp === 'string') throw new Error(`xds.listen: ${hp}`);
  const log = ctx.log.child({ component: 'xds' });
  const cache = new SnapshotCache();
  const istio: IstioOptions | undefined = x.istio?.mcp ? istioOptionsFrom(ctx.config) : undefined;
  const generator = new XdsGenerator(cache, {
    build: { grpc: buildOptionsFrom(ctx.config, 'grpc'), envoy: buildOptionsFrom(ctx.config, 'envoy') },
    ...(istio ? { istio } : {}),
  });
  generator.update(ctx.mesh.snapshot());
  const credentials = await xdsServerCredentials(x.tls ?? { certFile: '', keyFile: '', reloadMs: 60_000 });
  const server = new AdsServer({
    credentials,
    cache,
    limits: x.limits,
    controlPlaneId: x.controlPlaneId,
    defaultFlavor: x.defaultFlavor,
    activate: (f) => generator.activate(f),
    extraServices: [...ctx.components.values()].flatMap((c) => (providesGrpcServices(c) ? c.grpcServices : [])),
    metrics: ctx.metrics,
    log,
  });

  // Coalesce bursts of decisions: one rebuild and one push per window, never a 100 ms debounce.
  let timer: TimerHandle | undefined;
  let immediate: NodeJS.Immediate | undefined;
  const flush = () => {
    timer = undefined;
    immediate = undefined;
    try {
      generator.update(ctx.mesh.snapshot());
    } catch (err) {
      // Fail open: clients keep the last good config; the error is logged with what failed.
      log.error('xDS snapshot build failed; clients keep their last config', { err });
    }
  };
  const unsubscribe = ctx.mesh.subscribe(() => {
    if (timer || immediate) return;
    if (x.coalesceMs > 0) timer = ctx.clock.setTimeout(flush, x.coalesceMs);
    else immediate = setImmediate(flush);
  });

  // CSDS-like status: `?node=ID` for one node; otherwise the first 200 nodes and how many were left out.
  ctx.admin.route('GET', '/v1/xds', (req) => {
    const node = req.query?.get('node') ?? undefined;
    return { status: 200, body: server.status(node !== undefined ? { node } : {}) };
  });

  const address = await server.listen(hp.host, hp.port);
  log.info('xDS server listening', { address });
  return {
    name: 'xds',
    addresses: { xds: address },
    async close(deadlineMs = 1000) {
      unsubscribe();
      timer?.cancel();
      if (immediate) clearImmediate(immediate);
      await server.close(Math.min(deadlineMs, 2000));
    },
  };
};
