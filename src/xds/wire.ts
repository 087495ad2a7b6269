// Hand-assembled protobuf frames for DiscoveryResponse and DeltaDiscoveryResponse: each resource is encoded
// once per version into a ready-made field (tag + length + bytes), so a push to N streams only concatenates
// cached pieces with the per-stream nonce instead of re-serializing N times.

const enc = new TextEncoder();

function varintLength(n: number): number {
  let len = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    len++;
  }
  return len;
}

function writeVarint(buf: Uint8Array, pos: number, n: number): number {
  while (n >= 0x80) {
    buf[pos++] = (n % 128) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[pos++] = n;
  return pos;
}

/** A length-delimited field: tag (field, wire type 2), length, bytes. */
export function lengthDelimited(field: number, bytes: Uint8Array): Buffer {
  const tag = (field << 3) | 2;
  const out = Buffer.allocUnsafe(varintLength(tag) + varintLength(bytes.length) + bytes.length);
  let p = writeVarint(out, 0, tag);
  p = writeVarint(out, p, bytes.length);
  out.set(bytes, p);
  return out;
}

export function stringField(field: number, s: string): Buffer {
  return s === '' ? EMPTY : lengthDelimited(field, enc.encode(s));
}

const EMPTY = Buffer.alloc(0);

/** `google.protobuf.Any` bytes: type_url = 1, value = 2. */
export function encodeAny(typeUrl: string, value: Uint8Array): Buffer {
  return Buffer.concat([stringField(1, typeUrl), value.length ? lengthDelimited(2, value) : EMPTY]);
}

// DiscoveryResponse fields: version_info 1, resources 2, type_url 4, nonce 5, control_plane 6.
export const SOTW_RESOURCES_FIELD = 2;
// DeltaDiscoveryResponse: system_version_info 1, resources 2, type_url 4, nonce 5, removed_resources 6, control_plane 7.
export const DELTA_RESOURCES_FIELD = 2;

/** `resources` entry of a SotW response, ready to concatenate. */
export function sotwResourceField(anyBytes: Uint8Array): Buffer {
  return lengthDelimited(SOTW_RESOURCES_FIELD, anyBytes);
}

/** `resources` entry of a Delta response: a `Resource{version 1, resource 2, name 3}`. */
export function deltaResourceField(name: string, version: string, anyBytes: Uint8Array): Buffer {
  const inner = Buffer.concat([stringField(1, version), lengthDelimited(2, anyBytes), stringField(3, name)]);
  return lengthDelimited(DELTA_RESOURCES_FIELD, inner);
}

/** `control_plane` (`ControlPlane{identifier 1}`) of a response. */
export function controlPlaneField(field: number, identifier: string): Buffer {
  return identifier ? lengthDelimited(field, stringField(1, identifier)) : EMPTY;
}

/**
 * A DiscoveryResponse frame. `head` is the cached version_info + type_url + control_plane part; the
 * resource fields are the cached per-resource pieces; only the nonce is new.
 */
export function sotwFrame(head: Buffer, resources: readonly Buffer[], nonce: string): Buffer {
  const parts: Buffer[] = [head];
  for (const r of resources) parts.push(r);
  parts.push(stringField(5, nonce));
  return Buffer.concat(parts);
}

export function sotwHead(versionInfo: string, typeUrl: string, controlPlane: string): Buffer {
  return Buffer.concat([stringField(1, versionInfo), stringField(4, typeUrl), controlPlaneField(6, controlPlane)]);
}

export function deltaFrame(head: Buffer, resources: readonly Buffer[], removed: readonly string[], nonce: string): Buffer {
  const parts: Buffer[] = [head];
  for (const r of resources) parts.push(r);
  for (const name of removed) parts.push(lengthDelimited(6, enc.encode(name)));
  parts.push(stringField(5, nonce));
  return Buffer.concat(parts);
}

export function deltaHead(systemVersion: string, typeUrl: string, controlPlane: string): Buffer {
  return Buffer.concat([stringField(1, systemVersion), stringField(4, typeUrl), controlPlaneField(7, controlPlane)]);
}
