// The upstream clients' own errors carry meshmedic's stable codes (docs/errors.md), and each one is
// answered as its class says: status, public code, retry verdict.
import t from 'tap';
import { ERROR_CODES, MeshmedicError } from '../../src/core/errors.js';
import { BAD_RESPONSE, BODY_TIMEOUT, classifyUpstreamError, CONNECT_FAILED, CONNECT_TIMEOUT, HEADERS_TIMEOUT, QUEUE_TIMEOUT, RESET, UpstreamError, type UpstreamErrorCode } from '../../src/proxy/failure.js';
import { H2ConnectTimeoutError } from '../../src/proxy/h2client.js';

t.test('each upstream error code is answered as its class', async (t) => {
  const want: [UpstreamErrorCode, typeof RESET][] = [
    ['MM_ERR_UPSTREAM_CLOSED', CONNECT_FAILED],
    ['MM_ERR_UPSTREAM_CONNECT_TIMEOUT', CONNECT_TIMEOUT],
    ['MM_ERR_UPSTREAM_HEADERS_TIMEOUT', HEADERS_TIMEOUT],
    ['MM_ERR_UPSTREAM_BODY_TIMEOUT', BODY_TIMEOUT],
    ['MM_ERR_UPSTREAM_BUSY', QUEUE_TIMEOUT],
    ['MM_ERR_UPSTREAM_BAD_RESPONSE', BAD_RESPONSE],
    ['MM_ERR_UPSTREAM_RESET', RESET],
    ['MM_ERR_UPSTREAM_ABORTED', RESET],
  ];
  for (const [code, cls] of want) {
    const err = new UpstreamError(code, 'x');
    t.ok(err instanceof MeshmedicError, `${code}: a MeshmedicError`);
    t.ok(code in ERROR_CODES, `${code}: declared (and so documented)`);
    t.equal(classifyUpstreamError(err), cls, `${code} → ${cls.status} ${cls.code}`);
  }
  t.equal(classifyUpstreamError(new H2ConnectTimeoutError('http://127.0.0.1:1', 5)), CONNECT_TIMEOUT, 'the h2c connect timeout is a connect timeout');
  t.equal(classifyUpstreamError(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' })).code, 'MM_ERR_UPSTREAM_CONNECT');
  t.equal(classifyUpstreamError(Object.assign(new Error('old'), { code: 'UND_ERR_HEADERS_TIMEOUT' })), RESET, 'a borrowed undici code means nothing here any more');
});
