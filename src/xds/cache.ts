// The snapshot cache: per node group (client flavor), per type URL, the current resources, each encoded
// once per version (Any bytes plus ready-made SotW and Delta response fields). Streams watch a group.
import { createHash } from 'node:crypto';
import { encodeMessage, typeNameOf } from './proto.js';
import { deltaResourceField, encodeAny, sotwResourceField } from './wire.js';
import { isIstioTypeUrl } from './types.js';

export interface EncodedResource {
  readonly name: string;
  /** Content hash: equal versions mean equal bytes, across restarts and servers. */
  readonly version: string;
  /** Type URL carried inside the Any (the response type, or the MCP envelope for Istio types). */
  readonly anyType: string;
  readonly any: Buffer;
  readonly sotwField: Buffer;
  readonly deltaField: Buffer;
}

export interface TypeSnapshot {
  readonly typeUrl: string;
  /** Hash of (name, version) pairs: per type, content-derived. */
  readonly version: string;
  readonly resources: ReadonlyMap<string, EncodedResource>;
}

export function contentHash(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('base64url').slice(0, 16);
}

/** Encode one resource: `message` is the full protobuf name of `obj`; `anyType` the Any type URL. */
export function encodeResource(name: string, anyType: string, obj: Record<string, unknown>): EncodedResource {
  const value = encodeMessage(typeNameOf(anyType), obj);
  const any = encodeAny(anyType, value);
  const version = contentHash(any);
  return Object.freeze({ name, version, anyType, any, sotwField: sotwResourceField(any), deltaField: deltaResourceField(name, version, any) });
}

export function typeSnapshot(typeUrl: string, resources: ReadonlyMap<string, EncodedResource>): TypeSnapshot {
  const names = [...resources.keys()].sort();
  const h = createHash('sha256');
  for (const n of names) h.update(n).update('\u0000').update(resources.get(n)!.version).update('\u0000');
  return Object.freeze({ typeUrl, version: names.length ? h.digest('base64url').slice(0, 16) : '0', resources });
}

export type GroupWatcher = (changedTypes: ReadonlySet<string>) => void;

/** Type URLs of one group: Envoy types by exact URL; Istio kinds by kind (any API version maps to it). */
function cacheKey(typeUrl: string): string {
  return isIstioTypeUrl(typeUrl) ? `istio:${typeUrl.slice(typeUrl.lastIndexOf('/') + 1)}` : typeUrl;
}

interface Group {
  readonly types: Map<string, TypeSnapshot>;
  readonly watchers: Set<GroupWatcher>;
  seq: number;
}

export class SnapshotCache {
  private readonly groups = new Map<string, Group>();

  private group(name: string): Group {
    let g = this.groups.get(name);
    if (!g) this.groups.set(name, (g = { types: new Map(), watchers: new Set(), seq: 0 }));
    return g;
  }

  /**
   * Replace a group's resources for the given types (types not given are left alone). Returns the types whose
   * version changed; watchers are told about exactly those, once.
   */
  set(groupName: string, byType: ReadonlyMap<string, ReadonlyMap<string, EncodedResource>>): Set<string> {
    const g = this.group(groupName);
    const changed = new Set<string>();
    for (const [typeUrl, resources] of byType) {
      const key = cacheKey(typeUrl);
      const next = typeSnapshot(typeUrl, resources);
      const prev = g.types.get(key);
      if (prev && prev.version === next.version) continue;
      g.types.set(key, next);
      changed.add(typeUrl);
    }
    if (changed.size > 0) {
      g.seq++;
      for (const w of [...g.watchers]) {
        try {
          w(changed);
        } catch {
          // one broken stream must not stop the fan-out to the others
        }
      }
    }
    return changed;
  }

  /** The current resources of a type; an empty snapshot when the group has none (yet). */
  get(groupName: string, typeUrl: string): TypeSnapshot {
    return this.groups.get(groupName)?.types.get(cacheKey(typeUrl)) ?? typeSnapshot(typeUrl, new Map());
  }

  /** Whether this cache knows the type at all (Envoy's four, or an Istio kind it serves). */
  serves(groupName: string, typeUrl: string): boolean {
    return this.groups.get(groupName)?.types.has(cacheKey(typeUrl)) ?? false;
  }

  watch(groupName: string, fn: GroupWatcher): () => void {
    const g = this.group(groupName);
    g.watchers.add(fn);
    return () => g.watchers.delete(fn);
  }

  /** For the admin API: every group's types with versions and resource counts. */
  describe(): Record<string, Record<string, { version: string; resources: number }>> {
    const out: Record<string, Record<string, { version: string; resources: number }>> = {};
    for (const [name, g] of this.groups) {
      const types: Record<string, { version: string; resources: number }> = {};
      for (const t of g.types.values()) types[t.typeUrl] = { version: t.version, resources: t.resources.size };
      out[name] = types;
    }
    return out;
  }
}
