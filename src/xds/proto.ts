// Loads Envoy's v3 xDS API (the protos shipped by @grpc/grpc-js-xds, never copied here) plus meshmedic's
// own minimal Istio protos into one protobufjs root, once per process; resources are encoded with it.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import * as protoLoader from '@grpc/proto-loader';

const require = createRequire(import.meta.url);

/** The four include dirs that `envoy/service/discovery/v3/ads.proto` needs, plus the project's `proto/`. */
export function protoIncludeDirs(): string[] {
  const xdsRoot = dirname(require.resolve('@grpc/grpc-js-xds/package.json'));
  const deps = join(xdsRoot, 'deps');
  // src/xds/proto.ts and dist/xds/proto.js both sit two levels below the package root.
  const own = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'proto');
  return [join(deps, 'envoy-api'), join(deps, 'xds'), join(deps, 'googleapis'), join(deps, 'protoc-gen-validate'), own];
}

/** Every file whose messages meshmedic encodes or decodes. */
export const XDS_PROTO_FILES: readonly string[] = Object.freeze([
  'envoy/service/discovery/v3/ads.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
  'istio/mcp/v1alpha1/resource.proto',
  'istio/networking/v1alpha3/destination_rule.proto',
  'istio/networking/v1alpha3/virtual_service.proto',
]);

let cachedRoot: protobuf.Root | undefined;

/** The shared protobufjs root (snake_case field names, as in the .proto files and Envoy's docs). */
export function xdsRoot(): protobuf.Root {
  if (cachedRoot) return cachedRoot;
  const dirs = protoIncludeDirs();
  const root = new protobuf.Root();
  root.resolvePath = (origin: string, target: string): string => {
    if (isAbsolute(target)) return target;
    for (const d of dirs) {
      const full = join(d, target);
      if (existsSync(full)) return full;
    }
    // protobufjs serves google/protobuf/*.proto from its bundled copies when the file is not found.
    return protobuf.util.path.resolve(origin, target);
  };
  root.loadSync([...XDS_PROTO_FILES], { keepCase: true });
  root.resolveAll();
  cachedRoot = root;
  return root;
}

/** Load one more .proto from the include dirs into the shared root (e.g. the Envoy bootstrap, for checks). */
export function loadProto(file: string): void {
  const root = xdsRoot();
  if (root.files.some((f) => f.endsWith(file))) return;
  root.loadSync(file, { keepCase: true });
  root.resolveAll();
}

/** Look up a message type by its full name (`envoy.config.cluster.v3.Cluster`). */
export function messageType(fullName: string): protobuf.Type {
  return xdsRoot().lookupType(fullName);
}

/** The type name inside a type URL (`type.googleapis.com/x.y.Z` → `x.y.Z`). */
export function typeNameOf(typeUrl: string): string {
  return typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
}

/**
 * Encode a plain object (snake_case fields; nested `google.protobuf.Any` written as `{'@type': url, ...fields}`)
 * as the given message. Throws with the field path when the object does not fit the message.
 */
export function encodeMessage(fullName: string, obj: Record<string, unknown>): Uint8Array {
  const t = messageType(fullName);
  const problems: string[] = [];
  checkFields(t, obj, fullName, problems);
  if (problems.length) throw new Error(`cannot encode ${fullName}: ${problems.join('; ')}`);
  return t.encode(t.fromObject(obj)).finish();
}

/** Decode bytes into a plain object (for tests, logs and the admin API). */
export function decodeMessage(fullName: string, bytes: Uint8Array): Record<string, unknown> {
  const t = messageType(fullName);
  return t.toObject(t.decode(bytes), { longs: Number, enums: String, defaults: false, arrays: true, json: true });
}

/** Decode a `google.protobuf.Any` payload into `{'@type', ...fields}`. */
export function decodeAny(typeUrl: string, value: Uint8Array): Record<string, unknown> {
  return { '@type': typeUrl, ...decodeMessage(typeNameOf(typeUrl), value) };
}

// protobufjs's fromObject silently drops unknown keys: a misspelt field would vanish from the config.
// Walk the object against the message descriptors and report every unknown field with its path.
function checkFields(t: protobuf.Type, obj: unknown, path: string, problems: string[]): void {
  if (!obj || typeof obj !== 'object' || Array.isArray(obj) || obj instanceof Uint8Array) return;
  let type = t;
  const o = obj as Record<string, unknown>;
  if (t.fullName === '.google.protobuf.Any' && typeof o['@type'] === 'string') {
    const inner = xdsRoot().lookup(typeNameOf(o['@type']));
    if (!(inner instanceof protobuf.Type)) {
      problems.push(`${path}: unknown Any type ${o['@type']}`);
      return;
    }
    type = inner;
  }
  for (const [k, v] of Object.entries(o)) {
    if (k === '@type') continue;
    const f = type.fields[k];
    if (!f) {
      problems.push(`${path}.${k}: no such field in ${type.fullName.slice(1)}`);
      continue;
    }
    f.resolve();
    if (!(f.resolvedType instanceof protobuf.Type)) continue;
    if (f.map) {
      for (const [mk, mv] of Object.entries((v ?? {}) as Record<string, unknown>)) checkFields(f.resolvedType, mv, `${path}.${k}[${mk}]`, problems);
    } else if (Array.isArray(v)) {
      // Elements of one list come from the same builder code: checking the first few finds a misspelt
      // field without walking a 1,000-endpoint assignment on every encode.
      const n = Math.min(v.length, 4);
      for (let i = 0; i < n; i++) checkFields(f.resolvedType, v[i], `${path}.${k}[${i}]`, problems);
    } else {
      checkFields(f.resolvedType, v, `${path}.${k}`, problems);
    }
  }
}

let cachedPackage: protoLoader.PackageDefinition | undefined;

/** The same API as a @grpc/proto-loader package definition (for gRPC clients: tests, benchmarks, tools). */
export function xdsPackageDefinition(): protoLoader.PackageDefinition {
  cachedPackage ??= protoLoader.loadSync([...XDS_PROTO_FILES], {
    keepCase: true,
    longs: Number,
    enums: String,
    defaults: false,
    arrays: true,
    oneofs: true,
    includeDirs: protoIncludeDirs(),
  });
  return cachedPackage;
}
