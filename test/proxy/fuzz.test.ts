// Property test of the HTTP/1 proxy: seeded random byte streams from both sides, checked against a
// reference model of request/response pairing. Clients pipeline valid requests (GET, POST with a
// Content-Length or chunked body, split into random writes) and sometimes end with an invalid one; each
// request's path tells the upstream how to answer (valid forms, interim responses, extra bytes after
// the response, bad status, garbage, bad chunking, reset). The model: every client gets exactly the
// answers to its own valid requests, in order (upstream faults as 502), then one 4xx/5xx for an invalid
// request and a close; no response ever carries another request's id. Bounded in time; the seed is
// printed (MM_FUZZ_SEED=… reruns one).
import net from 'node:net';
import t from 'tap';
import { seededRandom } from '../../src/core/random.js';
import { portableEngine } from '../../src/proxy/engine/portable.js';
import { BODY_AS_FRAMED, type RequestEvents, type ResponseEvents } from '../../src/proxy/engine/types.js';
import { rawServer, startTestProxy } from './helpers.js';

const SEED = process.env.MM_FUZZ_SEED !== undefined ? Number(process.env.MM_FUZZ_SEED) : (Date.now() ^ (process.pid << 8)) >>> 0;
const BUDGET_MS = Number(process.env.MM_FUZZ_MS ?? 3000);

/** How the upstream answers, named in the request path. */
const GOOD = ['cl', 'chunked', 'close', 'status204', 'interim', 'extra', 'status500'] as const;
const BAD = ['badstatus', 'garbage', 'badchunk', 'reset', 'te-gzip'] as const;
type Scenario = (typeof GOOD)[number] | (typeof BAD)[number];

/** The invalid requests a client may end its pipeline with, and the statuses the proxy may answer. */
const INVALID: [string, RegExp][] = [
  ['garbage request line', /^(400)$/],
  ['bad header name', /^(400)$/],
  ['two content-lengths', /^(400)$/],
  ['http/0.9', /^(505)$/],
  ['two hosts', /^(400)$/],
  ['bad chunk size', /^(400)$/],
];

function pick<T>(rnd: () => number, xs: readonly T[]): T {
  return xs[Math.floor(rnd() * xs.length)]!;
}

/** Split `buf` into 1–4 random pieces. */
function split(rnd: () => number, buf: Buffer): Buffer[] {
  const n = 1 + Math.floor(rnd() * 4);
  const cuts = Array.from({ length: n - 1 }, () => Math.floor(rnd() * buf.length)).sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const c of [...cuts, buf.length]) {
    if (c > prev) out.push(buf.subarray(prev, c));
    prev = c;
  }
  return out;
}

/** The upstream's answer for a request naming `scenario` and `id`. */
function answer(scenario: Scenario, id: string, rnd: () => number): { bytes: Buffer; close: boolean } {
  const body = `body-${id}`;
  const cl = (status = 200) => `HTTP/1.1 ${status} X\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
  switch (scenario) {
    case 'cl':
      return { bytes: Buffer.from(cl()), close: false };
    case 'status500':
      return { bytes: Buffer.from(cl(500)), close: false };
    case 'chunked': {
      const a = Math.floor(rnd() * body.length);
      const parts = [body.slice(0, a), body.slice(a)].filter((p) => p !== '');
      return { bytes: Buffer.from(`HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n${parts.map((p) => `${p.length.toString(16)}\r\n${p}\r\n`).join('')}0\r\n\r\n`), close: false };
    }
    case 'close':
      return { bytes: Buffer.from(`HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n${body}`), close: true };
    case 'status204':
      return { bytes: Buffer.from('HTTP/1.1 204 No Content\r\n\r\n'), close: false };
    case 'interim':
      return { bytes: Buffer.from(`HTTP/1.1 100 Continue\r\n\r\n${cl()}`), close: false };
    case 'extra':
      return { bytes: Buffer.from(`${cl()}HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nINJECTED`), close: false };
    case 'badstatus':
      return { bytes: Buffer.from(`HTTP/1.1 999 X\r\nContent-Length: ${body.length}\r\n\r\n${body}`), close: false };
    case 'garbage':
      return { bytes: Buffer.from(`\x00\x7f${'#'.repeat(1 + Math.floor(rnd() * 40))}\r\n\r\n`), close: false };
    case 'badchunk':
      return { bytes: Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'), close: false };
    case 'te-gzip':
      return { bytes: Buffer.from(`HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n${body}`), close: true };
    case 'reset':
      return { bytes: Buffer.alloc(0), close: true };
  }
}

// The test's own parsers (upstream requests, client responses): llhttp through the portable engine.
const engine = portableEngine();

/** An upstream that parses requests (llhttp) and answers each as its path says, in random fragments. */
async function scriptedUpstream(seed: number) {
  const rnd = seededRandom(seed);
  return rawServer((s) => {
    let url = '';
    const events: RequestEvents = {
      onHeadPending() {},
      onBody() {},
      onReadDone() {},
      onParseError: () => s.destroy(),
      onRequestHead(_m, u) {
        url = u;
        return BODY_AS_FRAMED;
      },
      onMessageComplete: () => onRequest(),
    };
    const parser = engine.requestParser(s, events, 65536);
    s.on('close', () => parser.close());
    const onRequest = (): void => {
      const [, , id, scenario] = url.split('/');
      url = '';
      const { bytes, close } = answer(scenario as Scenario, id!, rnd);
      if (bytes.length === 0) {
        s.destroy();
        return;
      }
      // Extra bytes after a response come in the same write: bytes an endpoint sends later, once the
      // connection carries the next request, cannot be told from that request's answer by any HTTP/1
      // client (there is no request id on the wire); the proxy's guarantee is about what it has read.
      const pieces = scenario === 'extra' ? [bytes] : split(rnd, bytes);
      const writeNext = (i: number): void => {
        if (s.destroyed) return;
        if (i === pieces.length) {
          if (close) s.end();
          return;
        }
        s.write(pieces[i]!);
        setImmediate(writeNext, i + 1);
      };
      writeNext(0);
    };
  });
}

interface Expected {
  readonly status: RegExp;
  /** Expected body ('' = not checked). */
  readonly body: string;
}

/** One client connection: its request bytes and the answers the model expects. */
function clientCase(rnd: () => number, conn: number): { bytes: Buffer; expected: Expected[]; closes: boolean; desc: string[] } {
  const n = 1 + Math.floor(rnd() * 4);
  const parts: string[] = [];
  const expected: Expected[] = [];
  const desc: string[] = [];
  const endsInvalid = rnd() < 0.3;
  for (let i = 0; i < n; i++) {
    const id = `${conn}.${i}`;
    const scenario: Scenario = rnd() < 0.75 ? pick(rnd, GOOD) : pick(rnd, BAD);
    const last = i === n - 1 && !endsInvalid;
    const close = last ? 'Connection: close\r\n' : '';
    const kind = rnd();
    const path = `/r/${id}/${scenario}`;
    if (kind < 0.5) parts.push(`GET ${path} HTTP/1.1\r\nHost: svc\r\n${close}\r\n`);
    else if (kind < 0.75) {
      const b = 'x'.repeat(Math.floor(rnd() * 200));
      parts.push(`POST ${path} HTTP/1.1\r\nHost: svc\r\nContent-Length: ${b.length}\r\n${close}\r\n${b}`);
    } else {
      const b = 'y'.repeat(1 + Math.floor(rnd() * 100));
      parts.push(`POST ${path} HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding: chunked\r\n${close}\r\n${b.length.toString(16)}\r\n${b}\r\n0\r\n\r\n`);
    }
    desc.push(`${parts[parts.length - 1]!.split(' ')[0]} ${path}`);
    if ((GOOD as readonly string[]).includes(scenario)) {
      const status = scenario === 'status204' ? /^204$/ : scenario === 'status500' ? /^500$/ : /^200$/;
      expected.push({ status, body: scenario === 'status204' ? '' : `body-${id}` });
    } else expected.push({ status: /^502$/, body: '' });
  }
  if (endsInvalid) {
    const [what, status] = pick(rnd, INVALID);
    const bad: Record<string, string> = {
      'garbage request line': 'HELLO\x01THERE\r\n\r\n',
      'bad header name': 'GET /x HTTP/1.1\r\nHost: svc\r\nBad Header: 1\r\n\r\n',
      'two content-lengths': 'POST /x HTTP/1.1\r\nHost: svc\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab',
      'http/0.9': 'GET /\r\n\r\n',
      'two hosts': 'GET /x HTTP/1.1\r\nHost: svc\r\nHost: svc\r\n\r\n',
      'bad chunk size': 'POST /x HTTP/1.1\r\nHost: svc\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n\r\n',
    };
    parts.push(bad[what]!);
    desc.push(`invalid: ${what}`);
    expected.push({ status, body: '' });
  }
  return { bytes: Buffer.from(parts.join(''), 'latin1'), expected, closes: true, desc };
}

/** Send `bytes` in random pieces; collect the parsed responses until the proxy closes. */
function exchange(port: number, bytes: Buffer, rnd: () => number): Promise<{ responses: { status: number; body: string }[]; raw: string; error: string }> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    const responses: { status: number; body: string }[] = [];
    let raw = '';
    let error = '';
    let status = 0;
    let body = '';
    const events: ResponseEvents = {
      onMessageBegin() {},
      onReadDone() {},
      onParseError: (e) => {
        if (error === '') error = `client parser: ${e.code}`;
      },
      onResponseHead(st) {
        status = st;
        body = '';
        return BODY_AS_FRAMED;
      },
      onBody: (b) => (body += b.toString('latin1')),
      onMessageComplete: () => {
        if (status >= 200) responses.push({ status, body });
      },
    };
    const parser = engine.responseParser(s, events, 65536);
    const timer = setTimeout(() => {
      error = 'no close within 5 s';
      s.destroy();
    }, 5000);
    s.on('data', (c: Buffer) => (raw += c.toString('latin1')));
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(timer);
      parser.finish();
      parser.close();
      resolve({ responses, raw, error });
    });
    const pieces = split(rnd, bytes);
    const writeNext = (i: number): void => {
      if (i < pieces.length && !s.destroyed) {
        s.write(pieces[i]!);
        setImmediate(writeNext, i + 1);
      }
    };
    writeNext(0);
  });
}

t.test(`proxy pairing property (seed ${SEED}, ${BUDGET_MS} ms)`, async (t) => {
  const rnd = seededRandom(SEED);
  const up = await scriptedUpstream(SEED ^ 0x5bd1e995);
  // A small pool: connections are reused and requests queue, where pairing mistakes would show.
  const p = await startTestProxy({ proxy: { connectionsPerEndpoint: 2 }, services: [{ name: 'svc', endpoints: [{ address: `127.0.0.1:${up.port}` }] }] });
  t.teardown(async () => {
    await p.close();
    await up.close();
  });
  const deadline = performance.now() + BUDGET_MS;
  let conns = 0;
  let requests = 0;
  const failures: string[] = [];
  while (performance.now() < deadline && failures.length === 0) {
    // A batch of concurrent client connections.
    const batch = Array.from({ length: 6 }, () => clientCase(rnd, conns++));
    const results = await Promise.all(batch.map((c) => exchange(p.port, c.bytes, rnd)));
    for (let i = 0; i < batch.length; i++) {
      const c = batch[i]!;
      const r = results[i]!;
      requests += c.expected.length;
      const got = r.responses.map((x) => `${x.status}:${x.body}`);
      const ok =
        r.error === '' &&
        r.responses.length === c.expected.length &&
        c.expected.every((e, j) => e.status.test(String(r.responses[j]!.status)) && (e.body === '' || r.responses[j]!.body === e.body)) &&
        !r.raw.includes('INJECTED');
      if (!ok) failures.push(`connection ${conns - batch.length + i}: sent [${c.desc.join(' | ')}], expected [${c.expected.map((e) => `${e.status.source}:${e.body}`).join(', ')}], got [${got.join(', ')}] ${r.error}`);
    }
  }
  t.comment(`${conns} connections, ${requests} requests`);
  t.same(failures, [], `every client got exactly its own answers (reproduce: MM_FUZZ_SEED=${SEED})`);
  t.ok(conns > 0);
});
