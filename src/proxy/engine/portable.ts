// The portable HTTP/1 engine: llhttp compiled to WebAssembly (the build undici maintains and ships), fed
// from the socket's 'data' events. It uses no Node internals, so a Node release cannot break it; it costs
// a copy of each read into wasm memory and a JS↔wasm call per header field and value.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Socket } from 'node:net';
import {
  Http1ParseError,
  type ClientReads,
  type Http1Engine,
  type Http1Parser,
  type Http1ReadMode,
  type RequestEvents,
  type ResponseEvents,
} from './types.js';
import { readGarbagePacer, type ReadGarbagePacer } from './read-garbage.js';

// The few WebAssembly declarations needed here (the project's TypeScript libs carry no DOM/wasm types).
interface WasmApi {
  readonly Module: new (bytes: Uint8Array) => object;
  readonly Instance: new (module: object, imports: object) => { readonly exports: unknown };
}
const wasmApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

interface LlhttpExports {
  readonly memory: { readonly buffer: ArrayBuffer };
  llhttp_alloc(type: number): number;
  llhttp_free(parser: number): void;
  llhttp_execute(parser: number, data: number, len: number): number;
  llhttp_finish(parser: number): number;
  llhttp_get_method(parser: number): number;
  llhttp_get_http_major(parser: number): number;
  llhttp_get_http_minor(parser: number): number;
  llhttp_get_error_reason(parser: number): number;
  llhttp_get_error_pos(parser: number): number;
  malloc(size: number): number;
  free(ptr: number): void;
}

interface LlhttpConstants {
  readonly ERROR: Readonly<Record<string, number>>;
  readonly TYPE: { readonly REQUEST: number; readonly RESPONSE: number };
  readonly METHODS: Readonly<Record<string, number>>;
}

/** One wasm instance serves every parser of the process: parsing is synchronous, one execute at a time. */
interface Llhttp {
  readonly exports: LlhttpExports;
  readonly REQUEST: number;
  readonly RESPONSE: number;
  readonly OK: number;
  readonly PAUSED: number;
  readonly PAUSED_UPGRADE: number;
  readonly USER: number;
  /** Method name by llhttp's method index. */
  readonly methods: readonly string[];
  /** `HPE_<NAME>` by llhttp's error number. */
  readonly errorCodes: readonly string[];
}

let llhttp: Llhttp | null = null;

// The execute in progress (restored on return, so a parser callback may drive another parser).
let current: PortableParser | null = null;
let currentChunk: Buffer | null = null;
let currentBase = 0;
// The wasm-side input buffer, grown to the largest read seen, and a view of it (renewed when the wasm
// memory grows, which replaces its ArrayBuffer).
let inputPtr = 0;
let inputSize = 0;
let inputView: Uint8Array | null = null;

/** Load and instantiate the wasm parser (once); throws when undici's llhttp build cannot be found. */
export function loadLlhttp(): Llhttp {
  if (llhttp !== null) return llhttp;
  const require = createRequire(import.meta.url);
  // undici has no "exports" map; resolve its directory through package.json and load the files by path.
  const dir = join(dirname(require.resolve('undici/package.json')), 'lib', 'llhttp');
  const constants = require(join(dir, 'constants.js')) as LlhttpConstants;
  let module: object | null = null;
  try {
    module = new wasmApi.Module(require(join(dir, 'llhttp_simd-wasm.js')) as Buffer);
  } catch {
    // no wasm SIMD on this CPU/runtime: the plain build below
  }
  module ??= new wasmApi.Module(require(join(dir, 'llhttp-wasm.js')) as Buffer);
  const instance = new wasmApi.Instance(module, {
    env: {
      wasm_on_message_begin: onMessageBegin,
      wasm_on_url: onUrl,
      wasm_on_status: onStatus,
      wasm_on_header_field: onHeaderField,
      wasm_on_header_value: onHeaderValue,
      wasm_on_headers_complete: onHeadersComplete,
      wasm_on_body: onBody,
      wasm_on_message_complete: onMessageComplete,
    },
  });
  const methods: string[] = [];
  for (const [name, n] of Object.entries(constants.METHODS)) methods[n] = name;
  const errorCodes: string[] = [];
  for (const [name, n] of Object.entries(constants.ERROR)) errorCodes[n] = `HPE_${name}`;
  const E = constants.ERROR;
  llhttp = {
    exports: instance.exports as unknown as LlhttpExports,
    REQUEST: constants.TYPE.REQUEST,
    RESPONSE: constants.TYPE.RESPONSE,
    OK: E.OK!,
    PAUSED: E.PAUSED!,
    PAUSED_UPGRADE: E.PAUSED_UPGRADE!,
    USER: E.USER!,
    methods,
    errorCodes,
  };
  return llhttp;
}

// --- wasm imports: each forwards to the parser executing now (a mismatch is an error, not a crash) ---
function onMessageBegin(p: number): number {
  const c = current;
  return c !== null && c.ptr === p ? c.messageBegin() : -1;
}
function onUrl(p: number, at: number, len: number): number {
  const c = current;
  return c !== null && c.ptr === p ? c.url(at - currentBase, len) : -1;
}
function onStatus(p: number, at: number, len: number): number {
  const c = current;
  return c !== null && c.ptr === p ? c.status(at - currentBase, len) : -1;
}
function onHeaderField(p: number, at: number, len: number): number {
  const c = current;
  return c !== null && c.ptr === p ? c.headerField(at - currentBase, len) : -1;
}
function onHeaderValue(p: number, at: number, len: number): number {
  const c = current;
  return c !== null && c.ptr === p ? c.headerValue(at - currentBase, len) : -1;
}
function onHeadersComplete(p: number, status: number, upgrade: number, keepAlive: number): number {
  const c = current;
  return c !== null && c.ptr === p ? c.headersComplete(status, upgrade === 1, keepAlive === 1) : -1;
}
function onBody(p: number, at: number, len: number): number {
  const c = current;
  return c !== null && c.ptr === p ? c.body(at - currentBase, len) : -1;
}
function onMessageComplete(p: number): number {
  const c = current;
  return c !== null && c.ptr === p ? c.messageComplete() : -1;
}

/** Bytes of an upstream connection's own read buffer (see PortableClientReads). */
const CLIENT_READ_BYTES = 16 * 1024;

/**
 * An upstream socket's reads go into a buffer of its own (net.connect's documented `onread` option), not
 * through 'data' events: no new Buffer and no stream event per read. Body chunks are views of that buffer;
 * a chunk kept past its callback (retainBody) leaves the buffer to its holder and the next read gets a
 * new one, as the native engine's buffer mode does.
 */
class PortableClientReads implements ClientReads {
  parser: PortableParser | null = null;
  /** onBody is delivering a view of the buffer now. */
  lending = false;
  /** A view outlives its read: the next read goes to a new buffer. */
  lent = false;
  private buf: Buffer | null = null;
  readonly connectOptions = {
    onread: {
      // Asked for the buffer of each next read (Node calls this after every read).
      buffer: (): Buffer => {
        if (this.buf === null || this.lent) {
          this.lent = false;
          this.buf = Buffer.allocUnsafeSlow(CLIENT_READ_BYTES);
        }
        return this.buf;
      },
      callback: (n: number, buf: Buffer): boolean => {
        const p = this.parser;
        if (p === null) return true; // not yet parsed (impossible before connect) or closed: dropped
        this.lending = true;
        try {
          p.readView(n === buf.length ? buf : buf.subarray(0, n));
        } finally {
          this.lending = false;
        }
        return p.reading;
      },
    },
  };
}

const OVERFLOW_CODE = 'HPE_HEADER_OVERFLOW';
const PIECE_URL = 0;
const PIECE_STATUS = 1;
const PIECE_FIELD = 2;
const PIECE_VALUE = 3;

export class PortableParser implements Http1Parser {
  ptr: number;
  readonly readMode: Http1ReadMode = 'data';
  reading = true;
  private readonly ll: Llhttp;
  private readonly socket: Socket;
  private readonly req: RequestEvents | null;
  private readonly res: ResponseEvents | null;
  private readonly maxHeaderBytes: number;
  private readonly pacer: ReadGarbagePacer;
  // the message head being read
  private headerBytes = 0;
  private target = '';
  private statusText = '';
  private headers: string[] = [];
  private lastWasField = false;
  /** Head pieces noted in the chunk being parsed, not yet strings: [kind, offset, length, …]. */
  private readonly pieces: number[] = [];
  private overflow = false;
  // lifecycle
  private executing = false;
  private closed = false;
  private thrown: unknown = null;
  private readonly onData = (chunk: Buffer): void => this.read(chunk);

  /** This connection reads into its own buffer (an upstream socket set up by clientReads), else null. */
  private readonly own: PortableClientReads | null;
  /** Requests: a head began and has not completed; and whether onHeadPending reported it. */
  private headOpen = false;
  private headReported = false;

  constructor(ll: Llhttp, socket: Socket, req: RequestEvents | null, res: ResponseEvents | null, maxHeaderBytes: number, pacer: ReadGarbagePacer, own: PortableClientReads | null = null) {
    this.ll = ll;
    this.own = own;
    if (own !== null) {
      own.parser = this;
      this.readMode = 'buffer';
    }
    this.pacer = pacer;
    this.socket = socket;
    this.req = req;
    this.res = res;
    this.maxHeaderBytes = maxHeaderBytes;
    this.ptr = ll.exports.llhttp_alloc(req !== null ? ll.REQUEST : ll.RESPONSE);
    if (this.ptr === 0) throw new Error('llhttp_alloc failed (wasm memory exhausted)');
    socket.on('data', this.onData);
  }

  private read(chunk: Buffer): void {
    if (this.closed) return;
    this.pacer.read(chunk.byteLength); // a 'data' read's buffer is garbage once parsed
    this.readView(chunk);
  }

  /** Parse one read and report it (the read's memory is not garbage: a reused buffer's, in buffer mode). */
  readView(chunk: Buffer): void {
    if (this.closed) return;
    const err = this.execute(chunk);
    const ev = (this.req ?? this.res)!;
    if (err !== null) {
      this.close();
      ev.onParseError(err);
      return;
    }
    if (this.headOpen && !this.headReported) {
      this.headReported = true;
      this.req!.onHeadPending();
      if (this.closed) return;
    }
    ev.onReadDone();
  }

  /** Parse one read; null or the parse error. */
  execute(chunk: Buffer): Http1ParseError | null {
    if (this.closed) return null;
    if (this.executing) throw new Error('HTTP/1 parser re-entered while executing');
    const ex = this.ll.exports;
    const len = chunk.length;
    // The shared input buffer serves the outermost execute; one nested in a callback gets its own.
    const nested = current !== null;
    let base: number;
    if (nested) base = ex.malloc(Math.max(len, 1));
    else {
      if (len > inputSize) {
        if (inputPtr !== 0) ex.free(inputPtr);
        inputSize = Math.ceil(len / 65536) * 65536;
        inputPtr = ex.malloc(inputSize);
      }
      base = inputPtr;
    }
    if (base === 0) throw new Error('wasm malloc failed (memory exhausted)');
    if (nested) new Uint8Array(ex.memory.buffer, base, len).set(chunk);
    else {
      let view = inputView;
      if (view === null || view.buffer !== ex.memory.buffer || view.byteOffset !== base || view.length !== inputSize) {
        view = inputView = new Uint8Array(ex.memory.buffer, base, inputSize);
      }
      view.set(chunk);
    }
    const prev = current;
    const prevChunk = currentChunk;
    const prevBase = currentBase;
    current = this;
    currentChunk = chunk;
    currentBase = base;
    this.executing = true;
    let ret: number;
    try {
      ret = ex.llhttp_execute(this.ptr, base, len);
      // A head going on in the next read: its pieces so far become strings while this chunk is at hand.
      if (this.closed) this.pieces.length = 0;
      else this.takePieces();
    } finally {
      this.executing = false;
      current = prev;
      currentChunk = prevChunk;
      currentBase = prevBase;
    }
    const parsed = ret === this.ll.OK ? len : ex.llhttp_get_error_pos(this.ptr) - base;
    if (nested) ex.free(base);
    return this.afterCall(ret, parsed);
  }

  finish(): Http1ParseError | null {
    if (this.closed) return null;
    if (this.executing) throw new Error('HTTP/1 parser re-entered while executing');
    const prev = current;
    current = this;
    this.executing = true;
    let ret: number;
    try {
      ret = this.ll.exports.llhttp_finish(this.ptr);
    } finally {
      this.executing = false;
      current = prev;
    }
    return this.afterCall(ret, 0);
  }

  /** After llhttp returned: deferred release, a callback's exception, or the error. */
  private afterCall(ret: number, parsed: number): Http1ParseError | null {
    const ll = this.ll;
    if (this.thrown !== null) {
      const t = this.thrown;
      this.thrown = null;
      this.close();
      throw t;
    }
    if (this.closed) {
      this.release();
      return null;
    }
    if (ret === ll.OK) return null;
    if (ret === ll.PAUSED_UPGRADE || ret === ll.PAUSED) {
      // An upgrade (or a pause nobody asked for): what follows is not HTTP/1 for this parser.
      this.close();
      return null;
    }
    if (this.overflow) return new Http1ParseError(OVERFLOW_CODE, 'header overflow', parsed);
    const code = ll.errorCodes[ret] ?? `HPE_${ret}`;
    return new Http1ParseError(code, this.errorReason(), parsed);
  }

  private errorReason(): string {
    const ex = this.ll.exports;
    const at = ex.llhttp_get_error_reason(this.ptr);
    if (at === 0) return '';
    const mem = new Uint8Array(ex.memory.buffer);
    let end = at;
    while (end < mem.length && mem[end] !== 0 && end - at < 256) end++;
    return Buffer.from(mem.buffer, at, end - at).toString('latin1');
  }

  pauseReads(): void {
    if (!this.reading || this.closed) return;
    this.reading = false;
    this.socket.pause();
  }

  resumeReads(): void {
    if (this.reading || this.closed) return;
    this.reading = true;
    this.socket.resume();
  }

  /** llhttp in WebAssembly calls back cheaply: onMessageBegin is always made. */
  wantBegin(_on: boolean): void {}

  /** Body chunks are views of the read; only a connection's own reused buffer must then be renewed. */
  retainBody(): void {
    const own = this.own;
    if (own !== null && own.lending) own.lent = true;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.own !== null) this.own.parser = null;
    this.socket.removeListener('data', this.onData);
    if (!this.executing) this.release();
  }

  private release(): void {
    if (this.ptr !== 0) {
      this.ll.exports.llhttp_free(this.ptr);
      this.ptr = 0;
    }
    this.headers = [];
  }

  // --- callbacks from llhttp (offsets are into the chunk being executed) ---
  messageBegin(): number {
    if (this.closed) return -1; // closed from a callback: stop at once
    this.headerBytes = 0;
    this.pieces.length = 0; // a previous message's trailers: dropped with its headers
    this.target = '';
    this.statusText = '';
    this.headers = [];
    this.lastWasField = false;
    if (this.req !== null) {
      this.headOpen = true; // reported as pending if the read ends before the head does (readView)
      return 0;
    }
    try {
      this.res!.onMessageBegin();
    } catch (err) {
      this.thrown = err;
      return -1;
    }
    return this.closed ? -1 : 0;
  }

  /** Count head bytes as node:http does (target, reason phrase, names, values); past the limit → 431. */
  private track(len: number): boolean {
    this.headerBytes += len;
    if (this.headerBytes >= this.maxHeaderBytes) {
      this.overflow = true;
      return false;
    }
    return true;
  }

  // Pieces of the head (target, reason, names, values) are noted as offsets into the chunk being parsed
  // and made strings together (takePieces): one decoding of the head instead of one per piece.
  url(off: number, len: number): number {
    return this.piece(PIECE_URL, off, len);
  }

  status(off: number, len: number): number {
    return this.piece(PIECE_STATUS, off, len);
  }

  headerField(off: number, len: number): number {
    return this.piece(PIECE_FIELD, off, len);
  }

  headerValue(off: number, len: number): number {
    return this.piece(PIECE_VALUE, off, len);
  }

  private piece(kind: number, off: number, len: number): number {
    if (this.closed || !this.track(len)) return -1;
    this.pieces.push(kind, off, len);
    return 0;
  }

  /** Make strings of the pieces noted in the chunk being parsed (before the head is used, or the chunk left). */
  private takePieces(): void {
    const q = this.pieces;
    if (q.length === 0) return;
    const from = q[1]!;
    const text = currentChunk!.toString('latin1', from, q[q.length - 2]! + q[q.length - 1]!);
    for (let i = 0; i < q.length; i += 3) {
      const at = q[i + 1]! - from;
      const s = text.slice(at, at + q[i + 2]!);
      const kind = q[i]!;
      if (kind === PIECE_URL) this.target += s;
      else if (kind === PIECE_STATUS) this.statusText += s;
      else {
        const h = this.headers;
        if (kind === PIECE_FIELD) {
          if (this.lastWasField) h[h.length - 1] += s;
          else {
            if ((h.length & 1) === 1) h.push(''); // the previous field had an empty value
            h.push(s);
            this.lastWasField = true;
          }
        } else if (this.lastWasField) {
          h.push(s);
          this.lastWasField = false;
        } else h[h.length - 1] += s;
      }
    }
    q.length = 0;
  }

  headersComplete(status: number, upgrade: boolean, keepAlive: boolean): number {
    if (this.closed) return -1;
    this.takePieces();
    const h = this.headers;
    if ((h.length & 1) === 1) h.push('');
    // llhttp leaves trailing whitespace in a value; node:http (and so the native engine) trims it.
    for (let i = 1; i < h.length; i += 2) {
      const v = h[i]!;
      const last = v.charCodeAt(v.length - 1);
      if (last === 0x20 || last === 0x09) h[i] = v.replace(/[ \t]+$/, '');
    }
    this.headers = [];
    this.lastWasField = false;
    this.headOpen = false;
    this.headReported = false;
    try {
      if (this.req !== null) {
        const ex = this.ll.exports;
        const method = this.ll.methods[ex.llhttp_get_method(this.ptr)];
        if (method === undefined) return -1;
        const r = this.req.onRequestHead(method, this.target, h, ex.llhttp_get_http_major(this.ptr), ex.llhttp_get_http_minor(this.ptr), upgrade, keepAlive);
        return this.closed ? -1 : r;
      }
      const r = this.res!.onResponseHead(status, this.statusText, h, upgrade, keepAlive);
      return this.closed ? -1 : r;
    } catch (err) {
      this.thrown = err;
      return -1;
    }
  }

  body(off: number, len: number): number {
    if (this.closed) return -1;
    try {
      (this.req ?? this.res)!.onBody(currentChunk!.subarray(off, off + len));
    } catch (err) {
      this.thrown = err;
      return -1;
    }
    return this.closed ? -1 : 0;
  }

  messageComplete(): number {
    if (this.closed) return -1;
    try {
      (this.req ?? this.res)!.onMessageComplete();
    } catch (err) {
      this.thrown = err;
      return -1;
    }
    return this.closed ? -1 : 0;
  }
}

/** The portable engine; throws if the wasm parser cannot be loaded. */
export function portableEngine(): Http1Engine {
  const ll = loadLlhttp();
  const pacer = readGarbagePacer();
  return {
    name: 'portable',
    readMode: 'data',
    requestParser: (socket, events, maxHeaderBytes) => new PortableParser(ll, socket, events, null, maxHeaderBytes, pacer),
    clientReads: () => new PortableClientReads(),
    responseParser: (socket, events, maxHeaderBytes, reads) =>
      new PortableParser(ll, socket, null, events, maxHeaderBytes, pacer, reads instanceof PortableClientReads ? reads : null),
  };
}
