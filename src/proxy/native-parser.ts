// Node's own HTTP/1 parser binding (llhttp, as node:http uses it), shared by the client pool and the
// server side. It is not a documented API: it has been stable across Node 20 and 22, and this is the one
// place that reaches for it (see docs/proxy.md).
import { createRequire } from 'node:module';

export interface HTTPParserInstance {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(data: Buffer): number | (Error & { code?: string; bytesParsed?: number });
  finish(): undefined | (Error & { code?: string });
  consume(handle: unknown): void;
  unconsume(): void;
  remove(): void;
  free(): void;
  /** Delete the native parser (it is otherwise kept alive by a strong handle: a leak per connection). */
  close(): void;
  [key: number]: unknown;
}

export interface HTTPParserCtor {
  new (): HTTPParserInstance;
  REQUEST: number;
  RESPONSE: number;
  kOnMessageBegin: number;
  kOnHeaders: number;
  kOnHeadersComplete: number;
  kOnBody: number;
  kOnMessageComplete: number;
  kOnExecute: number;
  kLenientNone: number;
}

const require = createRequire(import.meta.url);
const common = require('_http_common') as { HTTPParser: HTTPParserCtor; methods: string[] };

export const HTTPParser: HTTPParserCtor = common.HTTPParser;
/** Method names by the parser's method index. */
export const methods: readonly string[] = common.methods;
