// The two HTTP/1 engines side by side: the same bytes, split at every size from 1 byte up, must give the
// same heads, bodies, completions and errors (by llhttp code) on the native and the portable engine, and
// every smuggling vector must be an error on both. Also: close from a callback, header limits, engine
// selection, and that releasing parsers gives their memory back.
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import t from 'tap';
import { BODY_AS_FRAMED, BODY_NONE, selectHttp1Engine, type Http1Engine, type Http1Parser } from '../../src/proxy/engine/index.js';
import type { ClientReads } from '../../src/proxy/engine/types.js';
import { loadLlhttp } from '../../src/proxy/engine/portable.js';

/** A stand-in socket: the engines read it through 'data' events (no handle, so no consume mode). */
class FakeSocket extends EventEmitter {
  paused = false;
  pause(): this {
    this.paused = true;
    return this;
  }
  resume(): this {
    this.paused = false;
    return this;
  }
}

interface Run {
  trace: string[];
  parser: Http1Parser;
  socket: FakeSocket;
  /** What clientReads gave (ownReads), else null. */
  reads: ClientReads | null;
}

interface RunOptions {
  maxHeaderBytes?: number;
  /** Answer response heads with BODY_NONE (a response to HEAD). */
  head?: boolean;
  /** Close the parser from inside this callback. */
  closeOn?: 'head' | 'body' | 'complete';
  /** A response parser reading into the connection's own buffer (clientReads, as upstream sockets do). */
  ownReads?: boolean;
  /** Called in each complete event, after it is traced. */
  onComplete?: (parser: Http1Parser) => void;
}

function run(engine: Http1Engine, kind: 'request' | 'response', chunks: Buffer[], o: RunOptions = {}): Run {
  const socket = new FakeSocket();
  const trace: string[] = [];
  let parser: Http1Parser | null = null;
  const body = (c: Buffer) => {
    const last = trace[trace.length - 1];
    // Body pieces follow the read boundaries, which the two engines share; merge them anyway.
    if (last?.startsWith('body ')) trace[trace.length - 1] = last + c.toString('latin1');
    else trace.push(`body ${c.toString('latin1')}`);
    if (o.closeOn === 'body') parser!.close();
  };
  const common = {
    onBody: body,
    onMessageComplete: () => {
      trace.push('complete');
      o.onComplete?.(parser!);
      if (o.closeOn === 'complete') parser!.close();
    },
    onParseError: (err: { code: string }) => trace.push(`error ${err.code}`),
    onReadDone: () => {},
  };
  const max = o.maxHeaderBytes ?? 16_384;
  const s = socket as unknown as Socket;
  const reads = o.ownReads === true ? engine.clientReads() : null;
  if (o.ownReads === true && reads === null) throw new Error(`${engine.name}: no clientReads`);
  parser =
    kind === 'request'
      ? engine.requestParser(s, {
          ...common,
          onHeadPending: () => trace.push('pending'),
          onRequestHead: (method, url, raw, major, minor, upgrade, keepAlive) => {
            trace.push(`request ${method} ${url} HTTP/${major}.${minor} [${raw.join('|')}] upgrade=${upgrade} keepAlive=${keepAlive}`);
            if (o.closeOn === 'head') parser!.close();
            return BODY_AS_FRAMED;
          },
        }, max)
      : engine.responseParser(s, {
          ...common,
          onMessageBegin: () => trace.push('begin'),
          onResponseHead: (status, text, raw, upgrade, keepAlive) => {
            trace.push(`response ${status} ${text} [${raw.join('|')}] upgrade=${upgrade} keepAlive=${keepAlive}`);
            if (o.closeOn === 'head') parser!.close();
            return o.head ? BODY_NONE : BODY_AS_FRAMED;
          },
        }, max, reads);
  const onread = reads?.connectOptions.onread as { buffer: () => Buffer; callback: (n: number, buf: Buffer) => boolean } | undefined;
  for (const c of chunks) {
    if (onread === undefined) socket.emit('data', c);
    else {
      // As net does: the read lands in the buffer the socket was given, then the callback; then the next buffer.
      const buf = onread.buffer();
      c.copy(buf);
      onread.callback(c.length, buf);
    }
  }
  return { trace, parser, socket, reads };
}

function withoutPending(trace: readonly string[]): string[] {
  return trace.filter((e) => e !== 'pending');
}

function split(bytes: string, size: number): Buffer[] {
  const b = Buffer.from(bytes, 'latin1');
  const out: Buffer[] = [];
  for (let i = 0; i < b.length; i += size) out.push(b.subarray(i, i + size));
  return out;
}

const REQUESTS: [string, string][] = [
  ['GET', 'GET /a?b=c HTTP/1.1\r\nHost: svc\r\nAccept: */*\r\n\r\n'],
  ['POST with length', 'POST /up HTTP/1.1\r\nHost: svc\r\nContent-Length: 11\r\n\r\nhello world'],
  ['chunked with extension and trailer', 'POST /c HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n'],
  ['pipelined', 'GET /1 HTTP/1.1\r\nHost: svc\r\n\r\nPOST /2 HTTP/1.1\r\nHost: svc\r\nContent-Length: 3\r\n\r\nabcGET /3 HTTP/1.1\r\nHost: svc\r\nConnection: close\r\n\r\n'],
  ['HTTP/1.0 keep-alive', 'GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n'],
  ['HTTP/1.0', 'GET / HTTP/1.0\r\n\r\n'],
  ['websocket upgrade', 'GET /ws HTTP/1.1\r\nHost: svc\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n'],
  ['CONNECT', 'CONNECT svc:443 HTTP/1.1\r\nHost: svc:443\r\n\r\n'],
  ['empty and padded values', 'GET / HTTP/1.1\r\nHost: svc\r\nX-Empty:\r\nX-Pad:   v  \r\nX-Tab:\tv\t\r\n\r\n'],
  // The native engine ends a bodyless request from its head callback; the next message must still end.
  ['bodyless then chunked', 'GET /1 HTTP/1.1\r\nHost: svc\r\n\r\nPOST /2 HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /3 HTTP/1.1\r\nHost: svc\r\n\r\n'],
  ['zero lengths, 0 and 00', 'POST /z HTTP/1.1\r\nHost: svc\r\nContent-Length: 0\r\n\r\nPOST /zz HTTP/1.1\r\nHost: svc\r\nContent-Length: 00\r\n\r\nPOST /l HTTP/1.1\r\nHost: svc\r\nContent-Length: 2\r\n\r\nokGET /n HTTP/1.1\r\nHost: svc\r\n\r\n'],
  ['40 headers', `GET / HTTP/1.1\r\nHost: svc\r\n${Array.from({ length: 40 }, (_, i) => `X-H${i}: v${i}\r\n`).join('')}\r\n`],
  ['absolute-form target', 'GET http://payments/x HTTP/1.1\r\nHost: payments\r\n\r\n'],
  ['obs-text value', 'GET / HTTP/1.1\r\nHost: svc\r\nX-Latin: caf\xe9\r\n\r\n'],
  // smuggling and malformed input: must be errors on both engines
  ['CL + TE', 'POST / HTTP/1.1\r\nHost: svc\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: svc\r\n\r\n'],
  ['TE + CL', 'POST / HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n'],
  ['space before colon', 'POST / HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n'],
  ['obs-fold', 'GET / HTTP/1.1\r\nHost: svc\r\nX-A: a\r\n b\r\n\r\n'],
  ['xchunked', 'POST / HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n'],
  ['chunked not last', 'POST / HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n'],
  ['duplicate Content-Length', 'POST / HTTP/1.1\r\nHost: svc\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!'],
  ['listed Content-Length', 'POST / HTTP/1.1\r\nHost: svc\r\nContent-Length: 5, 5\r\n\r\nhello'],
  ['Content-Length +5', 'POST / HTTP/1.1\r\nHost: svc\r\nContent-Length: +5\r\n\r\nhello'],
  ['Content-Length -1', 'POST / HTTP/1.1\r\nHost: svc\r\nContent-Length: -1\r\n\r\n'],
  ['Content-Length 0x5', 'POST / HTTP/1.1\r\nHost: svc\r\nContent-Length: 0x5\r\n\r\nhello'],
  ['Content-Length abc', 'POST / HTTP/1.1\r\nHost: svc\r\nContent-Length: abc\r\n\r\n'],
  ['chunk size overflow', 'POST / HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff1\r\nx\r\n0\r\n\r\n'],
  ['bad chunk size', 'POST / HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n'],
  ['bare LF', 'GET / HTTP/1.1\nHost: svc\n\n'],
  ['bare LF in headers', 'GET / HTTP/1.1\r\nHost: svc\nX: y\r\n\r\n'],
  ['bare CR', 'GET / HTTP/1.1\r\nHost: svc\rX: y\r\n\r\n'],
  ['bad header name', 'GET / HTTP/1.1\r\nHost: svc\r\nBad Header: x\r\n\r\n'],
  ['garbage', 'HELLO THERE\r\n\r\n'],
  ['bad version', 'GET / HTTP/9.9\r\nHost: svc\r\n\r\n'],
  ['NUL in value', 'GET / HTTP/1.1\r\nHost: svc\r\nX: a\x00b\r\n\r\n'],
  ['valid then garbage', 'GET /ok HTTP/1.1\r\nHost: svc\r\n\r\n\x01\x02garbage'],
];

const RESPONSES: [string, string, RunOptions?][] = [
  ['length', 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello'],
  ['chunked', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n'],
  ['204', 'HTTP/1.1 204 No Content\r\nX: y\r\n\r\n'],
  ['304', 'HTTP/1.1 304 Not Modified\r\nETag: "x"\r\n\r\n'],
  ['to HEAD', 'HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n', { head: true }],
  ['100 then 200', 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'],
  ['103 early hints', 'HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n'],
  ['close-delimited', 'HTTP/1.1 200 OK\r\n\r\nuntil the end'],
  ['HTTP/1.0 response', 'HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok'],
  ['Connection: close', 'HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok'],
  ['empty reason', 'HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n'],
  ['101 upgrade', 'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nnot http'],
  ['two responses in one read', 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil'],
  ['length then chunked', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\n\r\n'],
  ['CL + TE', 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
  ['bad status line', 'HTTP/1.1 2000 OK\r\n\r\n'],
  ['garbage', 'NOT HTTP AT ALL\r\n\r\n'],
  ['bad chunk', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n'],
];

const SMUGGLING = /CL \+ TE|TE \+ CL|space before colon|obs-fold|xchunked|chunked not last|Content-Length|chunk size|bad chunk|bare|bad header|garbage|bad version|NUL|bad status/;

t.test('native and portable agree on every split of every message', async (t) => {
  const native = (await selectHttp1Engine('native')).engine;
  const portable = (await selectHttp1Engine('portable')).engine;
  t.equal(native.name, 'native');
  t.equal(portable.name, 'portable');
  const cases: ['request' | 'response', string, string, RunOptions][] = [
    ...REQUESTS.map(([n, b]) => ['request', n, b, {}] as ['request', string, string, RunOptions]),
    ...RESPONSES.map(([n, b, o]) => ['response', n, b, o ?? {}] as ['response', string, string, RunOptions]),
  ];
  for (const [kind, name, bytes, o] of cases) {
    const whole = run(portable, kind, split(bytes, bytes.length), o);
    const ref = run(native, kind, split(bytes, bytes.length), o);
    if (kind === 'response') {
      // The end of the stream completes a close-delimited body.
      for (const r of [whole, ref]) {
        const err = r.parser.finish();
        if (err !== null) r.trace.push(`finish ${err.code}`);
      }
    }
    t.same(whole.trace, ref.trace, `${kind} ${name}: same events as the native engine`);
    if (SMUGGLING.test(name) && !/valid then garbage|two responses/.test(name)) {
      t.match(whole.trace[whole.trace.length - 1] ?? '', /^error HPE_/, `${kind} ${name}: rejected`);
      t.notOk(whole.trace.some((e) => e.includes('smuggled')), `${kind} ${name}: nothing smuggled`);
    }
    let splitsDiffer = 0;
    for (let size = 1; size < Math.min(bytes.length, 64); size++) {
      const a = run(portable, kind, split(bytes, size), o);
      const b = run(native, kind, split(bytes, size), o);
      if (kind === 'response') {
        for (const r of [a, b]) {
          const err = r.parser.finish();
          if (err !== null) r.trace.push(`finish ${err.code}`);
        }
      }
      // A head split over reads is reported pending (requests); otherwise the events are those of one read.
      if (JSON.stringify(a.trace) !== JSON.stringify(b.trace) || JSON.stringify(withoutPending(a.trace)) !== JSON.stringify(withoutPending(whole.trace))) {
        splitsDiffer++;
        if (splitsDiffer === 1) t.same(a.trace, b.trace, `${kind} ${name} in ${size}-byte reads`);
      }
      a.parser.close();
      b.parser.close();
      if (kind === 'response') {
        // Upstream sockets read into a buffer of their own (bodies are views of it): the same events.
        for (const e of [native, portable]) {
          const c = run(e, kind, split(bytes, size), { ...o, ownReads: true });
          const err = c.parser.finish();
          if (err !== null) c.trace.push(`finish ${err.code}`);
          if (JSON.stringify(c.trace) !== JSON.stringify(whole.trace)) {
            splitsDiffer++;
            t.same(c.trace, whole.trace, `${kind} ${name} in ${size}-byte reads into the ${e.name} engine's own buffer`);
          }
          c.parser.close();
        }
      }
    }
    t.equal(splitsDiffer, 0, `${kind} ${name}: every read size gives the same events`);
    whole.parser.close();
    ref.parser.close();
  }
});

t.test('a request head left incomplete by a read is reported pending once, as that read ends', async (t) => {
  const head = 'request GET /1 HTTP/1.1 [Host|a] upgrade=false keepAlive=true';
  for (const setting of ['native', 'portable'] as const) {
    const e = (await selectHttp1Engine(setting)).engine;
    const r = run(e, 'request', []);
    const feed = (bytes: string): string[] => {
      const from = r.trace.length;
      r.socket.emit('data', Buffer.from(bytes, 'latin1'));
      return r.trace.slice(from);
    };
    t.same(feed('GET /1 HTTP/1.1\r\nHost: a\r\n\r\n'), [head, 'complete'], `${setting}: a head within one read is not`);
    t.same(feed('\r\n'), [], `${setting}: empty lines between requests are not a head`);
    t.same(feed('\r\n\r\n'), [], `${setting}: nor are several`);
    t.same(feed('G'), ['pending'], `${setting}: one byte of a head is`);
    t.same(feed('ET /1 HTTP/1.1\r\nHo'), [], `${setting}: once`);
    t.same(feed('st: a\r\n\r\n'), [head, 'complete'], `${setting}: then the head`);
    t.same(feed('GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HT'), [head, 'complete', 'pending'], `${setting}: a head begun after a message ended in the same read`);
    t.same(feed('TP/1.1\r\nHost: a\r\n\r\n'), ['request GET /2 HTTP/1.1 [Host|a] upgrade=false keepAlive=true', 'complete'], `${setting}: completed`);
    const post = 'request POST /p HTTP/1.1 [Host|a|Content-Length|3] upgrade=false keepAlive=true';
    t.same(feed('POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nab'), [post, 'body ab'], `${setting}: a body in progress is not a head`);
    t.same(feed('c'), ['complete'], `${setting}: nor the rest of it`); // (the trace merges the body pieces)
    t.same(feed('c\r\n'.slice(1)), [], `${setting}: an empty line after a body is not a head`);
    t.same(feed('GE'), ['pending'], `${setting}: the next head is`);
    r.parser.close();
  }
});

t.test('header limits: the same boundary on both engines, reported as HPE_HEADER_OVERFLOW', async (t) => {
  const engines = [(await selectHttp1Engine('native')).engine, (await selectHttp1Engine('portable')).engine];
  for (const len of [10, 90, 95, 100, 101, 110, 20_000]) {
    const bytes = `GET /${'u'.repeat(len)} HTTP/1.1\r\nHost: svc\r\nX: ${'v'.repeat(len)}\r\n\r\n`;
    const traces = engines.map((e) => run(e, 'request', [Buffer.from(bytes)], { maxHeaderBytes: 200 }).trace);
    t.same(traces[1], traces[0], `url and value of ${len} bytes`);
    if (len > 150) t.same(traces[1], ['error HPE_HEADER_OVERFLOW']);
  }
  const longStatus = `HTTP/1.1 200 ${'r'.repeat(300)}\r\nContent-Length: 0\r\n\r\n`;
  const traces = engines.map((e) => run(e, 'response', [Buffer.from(longStatus)], { maxHeaderBytes: 200 }).trace);
  t.same(traces[1], traces[0], 'a long reason phrase counts too');
});

t.test('closing from a callback stops the events at once', async (t) => {
  const engines = [(await selectHttp1Engine('native')).engine, (await selectHttp1Engine('portable')).engine];
  const bytes = 'POST /1 HTTP/1.1\r\nHost: svc\r\nContent-Length: 3\r\n\r\nabcGET /2 HTTP/1.1\r\nHost: svc\r\n\r\n';
  for (const e of engines) {
    for (const closeOn of ['head', 'body', 'complete'] as const) {
      const r = run(e, 'request', [Buffer.from(bytes)], { closeOn });
      const want = { head: 1, body: 2, complete: 3 }[closeOn];
      t.equal(r.trace.length, want, `${e.name}: nothing after close in on-${closeOn}: ${r.trace.join('; ')}`);
      r.socket.emit('data', Buffer.from('GET /3 HTTP/1.1\r\nHost: svc\r\n\r\n'));
      t.equal(r.trace.length, want, `${e.name}: a closed parser ignores later reads`);
      r.parser.close(); // idempotent
    }
  }
});

t.test('wantBegin(false) may leave the begin event out; wantBegin(true) brings it back', async (t) => {
  const response = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';
  for (const setting of ['native', 'portable'] as const) {
    const e = (await selectHttp1Engine(setting)).engine;
    for (const ownReads of [false, true]) {
      let rewant = false;
      const r = run(e, 'response', [], {
        ownReads,
        onComplete: (p) => {
          if (rewant) p.wantBegin(true);
        },
      });
      const feed = (bytes: string): void => {
        if (!ownReads) return void r.socket.emit('data', Buffer.from(bytes, 'latin1'));
        const onread = r.reads!.connectOptions.onread as { buffer: () => Buffer; callback: (n: number, buf: Buffer) => boolean };
        const buf = onread.buffer();
        const n = buf.write(bytes, 'latin1');
        onread.callback(n, buf);
      };
      const how = `${setting}${ownReads ? ', own buffer' : ''}`;
      r.parser.wantBegin(false);
      feed(response);
      const head = 'response 200 OK [Content-Length|2] upgrade=false keepAlive=true';
      // The portable engine always reports it (a call within WebAssembly costs little); the native one leaves it out.
      t.same(r.trace, setting === 'native' ? [head, 'body ok', 'complete'] : ['begin', head, 'body ok', 'complete'], `${how}: not wanted`);
      r.trace.length = 0;
      r.parser.wantBegin(true);
      feed(response);
      t.same(r.trace, ['begin', head, 'body ok', 'complete'], `${how}: wanted again`);
      r.trace.length = 0;
      // Wanted again within a read: bytes after a response are seen beginning (as a client connection needs).
      r.parser.wantBegin(false);
      rewant = true;
      feed(`${response}HTTP/1.1 2`);
      t.same(r.trace.slice(-2), ['complete', 'begin'], `${how}: the next message's begin is reported in the same read`);
      r.parser.close();
    }
  }
});

t.test('pauseReads/resumeReads drive the socket', async (t) => {
  for (const setting of ['native', 'portable'] as const) {
    const e = (await selectHttp1Engine(setting)).engine;
    const r = run(e, 'request', []);
    t.equal(r.parser.reading, true);
    r.parser.pauseReads();
    t.equal(r.parser.reading, false);
    t.equal(r.socket.paused, true, `${setting}: socket paused`);
    r.parser.resumeReads();
    t.equal(r.socket.paused, false, `${setting}: socket resumed`);
    t.equal(r.parser.readMode, 'data', `${setting}: a socket without a handle is read through 'data'`);
    r.parser.close();
  }
});

t.test('a callback may drive another parser (portable engine, shared wasm instance)', async (t) => {
  const e = (await selectHttp1Engine('portable')).engine;
  const inner = run(e, 'response', []);
  const outer = new FakeSocket();
  const seen: string[] = [];
  const p = e.requestParser(outer as unknown as Socket, {
    onHeadPending: () => {},
    onRequestHead: (m, url) => {
      seen.push(`${m} ${url}`);
      inner.socket.emit('data', Buffer.from('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'));
      return BODY_AS_FRAMED;
    },
    onBody: (c) => seen.push(`body ${c.toString()}`),
    onMessageComplete: () => seen.push('complete'),
    onParseError: (err) => seen.push(`error ${err.code}`),
    onReadDone: () => {},
  }, 16_384);
  outer.emit('data', Buffer.from('POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody'));
  t.same(seen, ['POST /x', 'body body', 'complete']);
  t.same(inner.trace, ['begin', 'response 200 OK [Content-Length|2] upgrade=false keepAlive=true', 'body ok', 'complete']);
  p.close();
  inner.parser.close();
});

t.test('an exception in a callback reaches the caller and the parser is released', async (t) => {
  const e = (await selectHttp1Engine('portable')).engine;
  const s = new FakeSocket();
  const p = e.requestParser(s as unknown as Socket, {
    onHeadPending: () => {},
    onRequestHead: () => {
      throw new Error('handler bug');
    },
    onBody: () => {},
    onMessageComplete: () => {},
    onParseError: () => {},
    onReadDone: () => {},
  }, 16_384);
  t.throws(() => s.emit('data', Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n\r\n')), /handler bug/);
  t.equal(s.listenerCount('data'), 0, 'detached from the socket');
  p.close();
});

t.test('released portable parsers give their wasm memory back', async (t) => {
  const e = (await selectHttp1Engine('portable')).engine;
  const ll = loadLlhttp();
  const churn = (n: number) => {
    for (let i = 0; i < n; i++) {
      const r = run(e, i % 2 === 0 ? 'request' : 'response', [Buffer.from(i % 2 === 0 ? 'GET / HTTP/1.1\r\nHost: a\r\n\r\n' : 'HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n')]);
      r.parser.close();
    }
  };
  churn(2000);
  const before = ll.exports.memory.buffer.byteLength;
  churn(20_000);
  t.equal(ll.exports.memory.buffer.byteLength, before, `wasm memory stays at ${before} bytes over 20,000 parsers`);
});

t.test('engine selection', async (t) => {
  const auto = await selectHttp1Engine('auto');
  t.equal(auto.engine.name, 'native', 'auto picks the native engine when its probe passes');
  t.equal(auto.fallbackReason, null);
  t.equal(auto.engine.readMode, 'consume');
  const portable = await selectHttp1Engine('portable');
  t.equal(portable.engine.readMode, 'data');
});
