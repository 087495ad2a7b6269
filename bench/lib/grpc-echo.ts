// Shared by the xDS and ALS benchmarks: a gRPC backend that counts calls and notes the time of the last
// one (to time when clients stop calling it), and a free loopback port.
import * as grpc from '@grpc/grpc-js';

export const ECHO_PATH = '/meshmedic.bench.Echo/Hello';

export interface EchoBackend { port: number; calls: number; lastAt: number; server: grpc.Server }

/** A gRPC server on 127.0.0.1 answering ECHO_PATH; `now` stamps each call (ms). */
export async function startEchoBackend(now: () => number): Promise<EchoBackend> {
  const server = new grpc.Server();
  const b: EchoBackend = { port: 0, calls: 0, lastAt: 0, server };
  const id = (x: Buffer) => x;
  server.addService({ Hello: { path: ECHO_PATH, requestStream: false, responseStream: false, requestSerialize: id, requestDeserialize: id, responseSerialize: id, responseDeserialize: id } } as unknown as grpc.ServiceDefinition, {
    Hello: (_c: unknown, cb: grpc.sendUnaryData<Buffer>) => {
      b.calls++;
      b.lastAt = now();
      cb(null, Buffer.alloc(0));
    },
  });
  b.port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  return b;
}

/** A loopback port free at the time of the call (the benchmarks' one helper, re-exported for its callers). */
export { freePort } from './procs.js';
