// The HTTP/1 engine seam: what the proxy's HTTP/1 server side and client pool need from a parser that
// reads a socket. Two engines implement it (native.ts on Node's own binding, portable.ts on llhttp
// compiled to WebAssembly); index.ts picks one. Nothing here loads either engine.
import type { NetConnectOpts, Socket } from 'node:net';

export type Http1EngineName = 'native' | 'portable';

/**
 * How parsed bytes leave the socket. `consume`: the native parser reads the socket's handle itself (no
 * Buffer per read reaches JavaScript); `buffer`: the socket reads into one buffer per connection that is
 * reused (no allocation per read), and Content-Length bodies are handed out as views of it; `data`: the
 * socket's 'data' events feed the parser (a new Buffer per read).
 */
export type Http1ReadMode = 'consume' | 'buffer' | 'data';

/** Returned by a head callback: parse a body as the headers say, or treat the message as bodyless (HEAD). */
export const BODY_AS_FRAMED = 0;
export const BODY_NONE = 1;

/** Malformed HTTP (llhttp's error name in `code`, e.g. HPE_INVALID_CONTENT_LENGTH, HPE_HEADER_OVERFLOW). */
export class Http1ParseError extends Error {
  readonly code: string;
  /** Bytes of the failing read that were accepted before the error. */
  readonly bytesParsed: number;
  constructor(code: string, reason: string, bytesParsed: number) {
    super(reason === '' ? code : `${code}: ${reason}`);
    this.name = 'Http1ParseError';
    this.code = code;
    this.bytesParsed = bytesParsed;
  }
}

/** Callbacks every parser makes (both directions). */
interface ParserEvents {
  onBody(chunk: Buffer): void;
  onMessageComplete(): void;
  /** Malformed input in bytes the engine read from the socket; the parser is closed already. */
  onParseError(err: Http1ParseError): void;
  /** A socket read was parsed without error (activity: timeouts, and "after the parser returned" work). */
  onReadDone(): void;
}

export interface RequestEvents extends ParserEvents {
  /**
   * A request head is incomplete at the end of a read (once per head, as that read ends): the client is
   * sending it in pieces. A head that completes in the read that began it is never reported (the native
   * engine then saves a call from C++ into JavaScript per request). Empty lines between requests are not
   * a head.
   */
  onHeadPending(): void;
  /** A request head; return BODY_AS_FRAMED or BODY_NONE. `rawHeaders` is flat [name, value, …]. */
  onRequestHead(method: string, url: string, rawHeaders: string[], versionMajor: number, versionMinor: number, upgrade: boolean, keepAlive: boolean): number;
}

export interface ResponseEvents extends ParserEvents {
  /** A response starts (its first byte was parsed), unless turned off by wantBegin(false). */
  onMessageBegin(): void;
  /** A response head (interim 1xx included); return BODY_AS_FRAMED or BODY_NONE (answer to HEAD). */
  onResponseHead(status: number, statusText: string, rawHeaders: string[], upgrade: boolean, keepAlive: boolean): number;
}

/** A parser bound to one socket: it reads the socket itself until closed. */
export interface Http1Parser {
  /** Reads are flowing (not paused by backpressure). */
  readonly reading: boolean;
  /** This connection's actual read mode (a native parser falls back to 'data' if it cannot consume). */
  readonly readMode: Http1ReadMode;
  /** Stop reading the socket (backpressure); bytes already read are still parsed. */
  pauseReads(): void;
  /**
   * Called from onBody, or from onReadDone of the same read: a chunk delivered during this read stays
   * referenced after the read (a write that did not complete at once, or a buffered chunk). In `buffer`
   * mode its memory is then left to the holder and the connection reads into a new buffer; other modes
   * never reuse a chunk's memory.
   */
  retainBody(): void;
  /**
   * Response parsers: whether onMessageBegin is wanted (it is at first). While false an engine may leave it out: the native
   * one then saves a call from C++ into JavaScript per message. A client connection turns it off while a
   * request is in flight, when a response beginning is expected and tells it nothing.
   */
  wantBegin(on: boolean): void;
  resumeReads(): void;
  /** The peer ended its stream: complete a message delimited by the end of the connection. */
  finish(): Http1ParseError | null;
  /**
   * Stop reading through the parser and release it completely. Safe inside the parser's own callbacks
   * (the release then happens when the parser returns); idempotent.
   */
  close(): void;
}

/**
 * How an engine wants an upstream socket's reads set up, asked for before the socket is created:
 * `connectOptions` go to net.connect, and the object is handed back to responseParser.
 */
export interface ClientReads {
  readonly connectOptions: Readonly<Pick<NetConnectOpts, 'onread'>>;
}

export interface Http1Engine {
  readonly name: Http1EngineName;
  /** The read mode new connections use. */
  readonly readMode: Http1ReadMode;
  /** Parse requests arriving on `socket` (server side); reading starts at once. */
  requestParser(socket: Socket, events: RequestEvents, maxHeaderBytes: number): Http1Parser;
  /** Read set-up for the next upstream socket (null: none; the socket is created as usual). */
  clientReads(): ClientReads | null;
  /**
   * Parse responses arriving on `socket` (client side); call once the socket is connected. `reads`: what
   * clientReads() gave for this socket.
   */
  responseParser(socket: Socket, events: ResponseEvents, maxHeaderBytes: number, reads?: ClientReads | null): Http1Parser;
}
