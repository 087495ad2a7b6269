// The transport contract the membership protocol runs over: unreliable packets (UDP) and one-shot
// request/response streams (TCP). Real sockets (node-transport.ts) and the simulator (sim.ts) implement it.

export interface Address {
  readonly host: string;
  readonly port: number;
}

export interface TransportHandlers {
  /** A datagram arrived. */
  onPacket(data: Buffer, from: Address): void;
  /** A stream request arrived: return the bytes to answer with, or undefined to close without answering. */
  onStream(data: Buffer, from: Address): Uint8Array | undefined;
}

export interface Transport {
  /** The address this transport receives on (port 0 resolved). */
  readonly local: Address;
  setHandlers(h: TransportHandlers): void;
  /** Best-effort datagram; errors are swallowed (UDP semantics). */
  sendPacket(to: Address, data: Uint8Array): void;
  /** Open a stream, send `data`, call `cb` once with the answer or undefined (error, timeout, closed). */
  request(to: Address, data: Uint8Array, timeoutMs: number, cb: (answer: Buffer | undefined) => void): void;
  close(): Promise<void>;
}

export function sameAddress(a: Address, b: Address): boolean {
  return a.port === b.port && a.host === b.host;
}
