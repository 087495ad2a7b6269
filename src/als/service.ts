// envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs: a client stream of batches of access-log
// entries, answered once with an empty StreamAccessLogsResponse when the client closes it. Messages arrive
// as raw bytes and are read in place (see decode.ts); the Identifier on a stream's first message is
// decoded with Envoy's own message type.
import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../core/log.js';
import { messageType, loadProto } from '../xds/proto.js';
import { AccessLogDecoder } from './decode.js';
import { WireError } from './wire.js';
import type { AlsIngestor } from './ingest.js';
import type { GrpcServiceBinding } from '../runtime/context.js';

export const ALS_SERVICE_NAME = 'envoy.service.accesslog.v3.AccessLogService';
const passThrough = (b: Buffer) => b;

export const ALS_SERVICE_DEFINITION = {
  StreamAccessLogs: {
    path: `/${ALS_SERVICE_NAME}/StreamAccessLogs`,
    requestStream: true,
    responseStream: false,
    requestSerialize: passThrough,
    requestDeserialize: passThrough,
    responseSerialize: passThrough,
    responseDeserialize: passThrough,
  },
} as const;


export interface AlsStreamInfo {
  /** From the Identifier on the stream's first message ('' until then). */
  node: string;
  logName: string;
  readonly peer: string;
  readonly startedAt: number;
  /** When the latest message was received (the sidecar's clock), 0 before the first. */
  lastMessageAt: number;
  messages: number;
  entries: number;
}

export interface AlsServiceOptions {
  readonly ingestor: AlsIngestor;
  readonly maxStreams: number;
  readonly maxEntriesPerMessage: number;
  readonly log: Logger;
  readonly now: () => number;
}

let identifierType: ReturnType<typeof messageType> | undefined;
function decodeIdentifier(bytes: Uint8Array): { node: string; logName: string } {
  if (!identifierType) {
    loadProto('envoy/service/accesslog/v3/als.proto');
    identifierType = messageType('envoy.service.accesslog.v3.StreamAccessLogsMessage.Identifier');
  }
  const id = identifierType.decode(bytes) as unknown as { node?: { id?: string; cluster?: string }; log_name?: string };
  return { node: id.node?.id || id.node?.cluster || '', logName: id.log_name ?? '' };
}

export class AlsService {
  readonly streams = new Set<AlsStreamInfo>();
  messages = 0;
  private readonly decoder = new AccessLogDecoder();
  private readonly sink: (e: Parameters<AlsIngestor['ingest']>[0]) => void;
  private lastWarnAt = 0;

  constructor(private readonly opts: AlsServiceOptions) {
    const ingestor = opts.ingestor;
    this.sink = (e) => ingestor.ingest(e);
  }

  binding(): GrpcServiceBinding {
    return {
      definition: ALS_SERVICE_DEFINITION as unknown as grpc.ServiceDefinition,
      implementation: { StreamAccessLogs: (call: grpc.ServerReadableStream<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => this.serve(call, cb) },
    };
  }

  private serve(call: grpc.ServerReadableStream<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>): void {
    if (this.streams.size >= this.opts.maxStreams) {
      cb({ code: grpc.status.RESOURCE_EXHAUSTED, details: `access-log streams limited to als.maxStreams=${this.opts.maxStreams}` });
      return;
    }
    const info: AlsStreamInfo = { node: '', logName: '', peer: call.getPeer(), startedAt: this.opts.now(), lastMessageAt: 0, messages: 0, entries: 0 };
    this.streams.add(info);
    let done = false;
    const finish = (err: grpc.ServiceError | null) => {
      if (done) return;
      done = true;
      this.streams.delete(info);
      if (err) cb(err);
      else cb(null, Buffer.alloc(0));
    };
    call.on('data', (buf: Buffer) => this.onMessage(info, buf));
    call.on('end', () => finish(null));
    call.on('error', () => finish(null));
    call.on('cancelled', () => finish(null));
  }

  private onMessage(info: AlsStreamInfo, buf: Buffer): void {
    const ing = this.opts.ingestor;
    this.messages++;
    info.messages++;
    info.lastMessageAt = this.opts.now();
    ing.beginBatch();
    try {
      const res = this.decoder.decode(buf, this.opts.maxEntriesPerMessage, this.sink);
      info.entries += res.entries;
      if (res.overLimit > 0) ing.drop('batch_too_large', res.overLimit);
      if (res.identifierStart >= 0 && info.node === '' && info.logName === '') {
        const id = decodeIdentifier(buf.subarray(res.identifierStart, res.identifierEnd));
        info.node = id.node;
        info.logName = id.logName;
      }
    } catch (err) {
      // One bad message costs itself (the entries read before the fault were recorded); the stream goes on.
      ing.drop('malformed');
      const now = this.opts.now();
      if (now - this.lastWarnAt >= 10_000) {
        this.lastWarnAt = now;
        this.opts.log.warn('malformed access-log message dropped (further ones counted in meshmedic_als_dropped_total, logged at most every 10 s)', {
          peer: info.peer, node: info.node, error: err instanceof WireError || err instanceof Error ? err.message.slice(0, 200) : String(err),
        });
      }
    }
  }
}
