// Envoy reads YAML/JSON config through the proto3 JSON mapping (Durations as "1.5s", wrapper types as plain
// values, Any with "@type"); protobufjs's fromObject expects the message shapes. Convert, guided by the
// message descriptors, so examples can be checked field by field against Envoy's own messages.
import protobuf from 'protobufjs';
import { xdsRoot, typeNameOf } from '../../src/xds/proto.js';

const WRAPPERS = new Set(['DoubleValue', 'FloatValue', 'Int64Value', 'UInt64Value', 'Int32Value', 'UInt32Value', 'BoolValue', 'StringValue', 'BytesValue'].map((n) => `.google.protobuf.${n}`));

function duration(v: string): { seconds: number; nanos: number } {
  const m = /^(-?\d+)(?:\.(\d{1,9}))?s$/.exec(v);
  if (!m) throw new Error(`"${v}" is not a proto3 JSON Duration`);
  return { seconds: Number(m[1]), nanos: Number((m[2] ?? '').padEnd(9, '0')) };
}

function convertValue(f: protobuf.Field, v: unknown): unknown {
  f.resolve();
  const t = f.resolvedType;
  if (!(t instanceof protobuf.Type)) return v;
  if (WRAPPERS.has(t.fullName) && (typeof v !== 'object' || v === null)) return { value: v };
  if (t.fullName === '.google.protobuf.Duration' && typeof v === 'string') return duration(v);
  return fromProto3Json(t, v);
}

/** Convert a proto3-JSON-shaped object of message `type` (a Type or a full name) to protobufjs's shapes. */
export function fromProto3Json(type: protobuf.Type | string, obj: unknown): unknown {
  let t = typeof type === 'string' ? xdsRoot().lookupType(type) : type;
  if (!obj || typeof obj !== 'object' || Array.isArray(obj)) return obj;
  const o = obj as Record<string, unknown>;
  if (t.fullName === '.google.protobuf.Any' && typeof o['@type'] === 'string') {
    const inner = xdsRoot().lookup(typeNameOf(o['@type']));
    if (inner instanceof protobuf.Type) t = inner;
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    const f = t.fields[k];
    if (!f) {
      out[k] = v; // left for encodeMessage to report with its path
      continue;
    }
    if (f.map && v && typeof v === 'object') out[k] = Object.fromEntries(Object.entries(v).map(([mk, mv]) => [mk, convertValue(f, mv)]));
    else if (f.repeated && Array.isArray(v)) out[k] = v.map((x) => convertValue(f, x));
    else out[k] = convertValue(f, v);
  }
  return out;
}
