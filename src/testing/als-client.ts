// An Envoy-like access-log client for tests, benchmarks and demos: builds StreamAccessLogsMessage batches
// with Envoy's own message types (from the protos in @grpc/grpc-js-xds) and streams them over gRPC.
import * as grpc from '@grpc/grpc-js';
import { encodeMessage, loadProto } from '../xds/proto.js';
import { ALS_SERVICE_DEFINITION } from '../als/service.js';

const MESSAGE = 'envoy.service.accesslog.v3.StreamAccessLogsMessage';

/** What a test says about one HTTP request; everything else in the entry is filled like Envoy would. */
export interface HttpLogInput {
  cluster: string;
  /** Upstream host `IP:port` ('' for none, e.g. no healthy upstream). */
  upstream: string;
  code?: number;
  /** ResponseFlags field names set to true, e.g. ['upstream_connection_failure']. */
  flags?: string[];
  upstreamMs?: number;
  totalMs?: number;
  sampleRate?: number;
  path?: string;
}

function duration(ms: number): { seconds: number; nanos: number } {
  const seconds = Math.floor(ms / 1000);
  return { seconds, nanos: Math.round((ms - seconds * 1000) * 1e6) };
}

function address(hostPort: string): Record<string, unknown> | undefined {
  if (!hostPort) return undefined;
  const i = hostPort.lastIndexOf(':');
  const host = hostPort.slice(0, i).replace(/^\[|\]$/g, '');
  return { socket_address: { address: host, port_value: Number(hostPort.slice(i + 1)) } };
}

/** One HTTPAccessLogEntry as a plain object in Envoy's field names. */
export function httpLogEntry(e: HttpLogInput, startMs = Date.now()): Record<string, unknown> {
  const common: Record<string, unknown> = {
    sample_rate: e.sampleRate ?? 1,
    downstream_remote_address: { socket_address: { address: '10.1.0.7', port_value: 43512 } },
    start_time: { seconds: Math.floor(startMs / 1000), nanos: (startMs % 1000) * 1e6 },
    time_to_last_rx_byte: duration(0.05),
    upstream_cluster: e.cluster,
    route_name: 'default',
    upstream_request_attempt_count: 1,
    duration: duration(e.totalMs ?? (e.upstreamMs ?? 5) + 0.3),
  };
  const up = address(e.upstream);
  if (up) {
    common.upstream_remote_address = up;
    common.upstream_local_address = { socket_address: { address: '10.1.0.9', port_value: 51000 } };
    common.time_to_first_upstream_tx_byte = duration(0.1);
    common.time_to_last_upstream_tx_byte = duration(0.12);
    common.time_to_first_upstream_rx_byte = duration((e.upstreamMs ?? 5) * 0.9);
    common.time_to_last_upstream_rx_byte = duration(e.upstreamMs ?? 5);
  }
  if (e.flags?.length) common.response_flags = Object.fromEntries(e.flags.map((f) => [f, true]));
  const entry: Record<string, unknown> = {
    common_properties: common,
    protocol_version: 'HTTP11',
    request: { request_method: 'GET', scheme: 'http', authority: e.cluster, path: e.path ?? '/api/v1/items', user_agent: 'curl/8.5', request_id: 'f4b0e2a1-7c55-4d1e-9b1a-2b8f3f4d5e6a', request_headers_bytes: 180 },
  };
  if (e.code !== undefined && e.code > 0) entry.response = { response_code: { value: e.code }, response_headers_bytes: 120, response_body_bytes: 512 };
  return entry;
}

/** Encode one StreamAccessLogsMessage of HTTP entries (with the Identifier when `node` is given). */
export function encodeHttpLogs(entries: readonly HttpLogInput[], node?: { id: string; cluster?: string }, logName = 'meshmedic'): Buffer {
  loadProto('envoy/service/accesslog/v3/als.proto');
  const msg: Record<string, unknown> = { http_logs: { log_entry: entries.map((e) => httpLogEntry(e)) } };
  if (node) msg.identifier = { node: { id: node.id, cluster: node.cluster ?? 'envoy' }, log_name: logName };
  return Buffer.from(encodeMessage(MESSAGE, msg));
}

/** Encode a StreamAccessLogsMessage of TCP entries: upstream host and whether the connection failed. */
export function encodeTcpLogs(entries: readonly { cluster: string; upstream: string; failed: boolean }[]): Buffer {
  loadProto('envoy/service/accesslog/v3/als.proto');
  const log_entry = entries.map((e) => ({
    common_properties: {
      sample_rate: 1,
      upstream_cluster: e.cluster,
      upstream_remote_address: address(e.upstream),
      ...(e.failed ? { response_flags: { upstream_connection_failure: true } } : {}),
      duration: duration(3),
    },
    connection_properties: { received_bytes: 100, sent_bytes: 200 },
  }));
  return Buffer.from(encodeMessage(MESSAGE, { tcp_logs: { log_entry } }));
}

export interface AccessLogStream {
  /** Write one encoded message; resolves when the transport takes more (backpressure). */
  send(message: Buffer): Promise<void>;
  /** Close the stream; resolves with the server's status. */
  end(): Promise<grpc.StatusObject | undefined>;
  close(): void;
}

const AlsClient = grpc.makeGenericClientConstructor(ALS_SERVICE_DEFINITION as unknown as grpc.ServiceDefinition, 'AccessLogService');

/** Open a StreamAccessLogs stream to `address` (host:port), plaintext. */
export function openAccessLogStream(address: string): AccessLogStream {
  const client = new AlsClient(address, grpc.credentials.createInsecure());
  let status: grpc.StatusObject | undefined;
  let finished!: () => void;
  const done = new Promise<void>((r) => (finished = r));
  const call = (client as unknown as { StreamAccessLogs(cb: (err: grpc.ServiceError | null) => void): grpc.ClientWritableStream<Buffer> }).StreamAccessLogs((err) => {
    if (err) status = { code: err.code, details: err.details, metadata: err.metadata };
    finished();
  });
  call.on('status', (s: grpc.StatusObject) => (status = s));
  call.on('error', () => {});
  return {
    send: (m) => new Promise<void>((resolve) => {
      if (call.write(m)) resolve();
      else call.once('drain', () => resolve());
    }),
    end: async () => {
      call.end();
      await done;
      client.close();
      return status;
    },
    close: () => {
      call.cancel();
      client.close();
    },
  };
}
