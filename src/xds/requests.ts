// Decoding of ADS requests off the wire. Decoding never throws: malformed bytes become a `malformed`
// request that the stream answers with INVALID_ARGUMENT, so random bytes cannot crash the server.
import { messageType } from './proto.js';

export interface NodeInfo {
  readonly id: string;
  readonly cluster: string;
  readonly user_agent_name: string;
  readonly locality?: { region?: string; zone?: string; sub_zone?: string };
}

export interface ErrorDetail {
  readonly code: number;
  readonly message: string;
}

export interface SotwRequest {
  readonly malformed?: string;
  readonly version_info: string;
  readonly node?: NodeInfo;
  readonly resource_names: readonly string[];
  readonly type_url: string;
  readonly response_nonce: string;
  readonly error_detail?: ErrorDetail;
}

export interface DeltaRequest {
  readonly malformed?: string;
  readonly node?: NodeInfo;
  readonly type_url: string;
  readonly resource_names_subscribe: readonly string[];
  readonly resource_names_unsubscribe: readonly string[];
  readonly initial_resource_versions: Readonly<Record<string, string>>;
  readonly response_nonce: string;
  readonly error_detail?: ErrorDetail;
}

const TO_OBJECT = { longs: Number, enums: String, defaults: false, arrays: true, objects: true } as const;

function node(n: unknown): NodeInfo | undefined {
  if (!n || typeof n !== 'object') return undefined;
  const o = n as Record<string, unknown>;
  return {
    id: typeof o.id === 'string' ? o.id : '',
    cluster: typeof o.cluster === 'string' ? o.cluster : '',
    user_agent_name: typeof o.user_agent_name === 'string' ? o.user_agent_name : '',
    ...(o.locality && typeof o.locality === 'object' ? { locality: o.locality as NodeInfo['locality'] } : {}),
  };
}

function errorDetail(e: unknown): ErrorDetail | undefined {
  if (!e || typeof e !== 'object') return undefined;
  const o = e as Record<string, unknown>;
  return { code: typeof o.code === 'number' ? o.code : 0, message: typeof o.message === 'string' ? o.message : '' };
}

export function decodeSotwRequest(buf: Buffer): SotwRequest {
  try {
    const t = messageType('envoy.service.discovery.v3.DiscoveryRequest');
    const o = t.toObject(t.decode(buf), TO_OBJECT) as Record<string, unknown>;
    return {
      version_info: (o.version_info as string) ?? '',
      node: node(o.node),
      resource_names: (o.resource_names as string[]) ?? [],
      type_url: (o.type_url as string) ?? '',
      response_nonce: (o.response_nonce as string) ?? '',
      error_detail: errorDetail(o.error_detail),
    };
  } catch (err) {
    return { malformed: `DiscoveryRequest does not decode: ${(err as Error).message}`, version_info: '', resource_names: [], type_url: '', response_nonce: '' };
  }
}

export function decodeDeltaRequest(buf: Buffer): DeltaRequest {
  try {
    const t = messageType('envoy.service.discovery.v3.DeltaDiscoveryRequest');
    const o = t.toObject(t.decode(buf), TO_OBJECT) as Record<string, unknown>;
    return {
      node: node(o.node),
      type_url: (o.type_url as string) ?? '',
      resource_names_subscribe: (o.resource_names_subscribe as string[]) ?? [],
      resource_names_unsubscribe: (o.resource_names_unsubscribe as string[]) ?? [],
      initial_resource_versions: (o.initial_resource_versions as Record<string, string>) ?? {},
      response_nonce: (o.response_nonce as string) ?? '',
      error_detail: errorDetail(o.error_detail),
    };
  } catch (err) {
    return { malformed: `DeltaDiscoveryRequest does not decode: ${(err as Error).message}`, type_url: '', resource_names_subscribe: [], resource_names_unsubscribe: [], initial_resource_versions: {}, response_nonce: '' };
  }
}
