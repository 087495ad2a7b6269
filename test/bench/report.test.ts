// The result-table writer (Markdown/text tables, marked README sections) and the wrk report parser.
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fmt, markers, ratio, renderMarkdown, renderText, replaceSection, updateMarkdownFile } from '../../bench/lib/report.js';
import { parseWrk, wrkDurationMs } from '../../bench/lib/wrk.js';
import { quantile, summarize } from '../../bench/lib/loadgen.js';

t.test('fmt and ratio', async (t) => {
  t.equal(fmt(12345), '12,345');
  t.equal(fmt(1.234567), '1.23');
  t.equal(fmt(null), '–');
  t.equal(fmt(NaN), '–');
  t.equal(fmt('x'), 'x');
  t.equal(ratio(3, 4), 0.75);
  t.equal(ratio(3, 0), null);
  t.equal(ratio(undefined, 4), null);
});

t.test('markdown table: header, alignment, escaping, missing cells', async (t) => {
  const md = renderMarkdown({ columns: ['system', 'req/s'], rows: [['a|b', 1000], ['c', null]] });
  t.equal(md, ['| system | req/s |', '|---|---:|', '| a\\|b | 1,000 |', '| c | – |'].join('\n'));
  const txt = renderText({ columns: ['system', 'req/s'], rows: [['haproxy', 51939], ['x', 5]] });
  t.equal(txt.split('\n')[2], 'haproxy  51,939');
  t.equal(txt.split('\n')[3], 'x' + ' '.repeat(13) + '5');
});

t.test('replaceSection replaces between markers and keeps the rest', async (t) => {
  const { start, end } = markers('bench:proxy');
  const doc = `# Bench\n\nintro\n\n${start}\nold table\n${end}\n\n## After\ntext\n`;
  const out = replaceSection(doc, 'bench:proxy', 'new table');
  t.equal(out, `# Bench\n\nintro\n\n${start}\nnew table\n${end}\n\n## After\ntext\n`);
  t.equal(replaceSection(out, 'bench:proxy', 'new table'), out, 'idempotent');
  const appended = replaceSection('# Bench\n', 'bench:scenarios', 'rows', '## Scenarios');
  t.equal(appended, `# Bench\n\n## Scenarios\n\n${markers('bench:scenarios').start}\nrows\n${markers('bench:scenarios').end}\n`);
});

t.test('updateMarkdownFile writes a file', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'mm-report-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const f = path.join(dir, 'README.md');
  writeFileSync(f, '# x\n');
  updateMarkdownFile(f, 's', 'one');
  updateMarkdownFile(f, 's', 'two');
  const text = readFileSync(f, 'utf8');
  t.match(text, /two/);
  t.notMatch(text, /one/);
  t.equal(text.split(markers('s').start).length, 2, 'one section only');
});

t.test('wrk report parsing', async (t) => {
  const out = `Running 3s test @ http://127.0.0.1:39829/
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.31ms    9.41ms 114.92ms   96.02%
    Req/Sec    29.05k     2.89k   32.42k    86.67%
  Latency Distribution
     50%  460.00us
     75%    1.10ms
     90%    2.50ms
     99%    1.02s
  176281 requests in 3.00s, 36.15MB read
  Non-2xx or 3xx responses: 12
  Socket errors: connect 1, read 2, write 0, timeout 4
Requests/sec:  58754.42
Transfer/sec:     12.05MB
`;
  const r = parseWrk(out);
  t.equal(r.rps, 58754.42);
  t.equal(r.requests, 176281);
  t.equal(r.durationS, 3);
  t.equal(r.p50, 0.46);
  t.equal(r.p90, 2.5);
  t.equal(r.p99, 1020);
  t.equal(r.non2xx, 12);
  t.equal(r.socketErrors, 7);
  t.ok(Number.isNaN(parseWrk('nonsense').rps), 'missing figures are NaN, not zero');
  t.equal(wrkDurationMs('2.00m'), 120_000);
  t.ok(Number.isNaN(wrkDurationMs('fast')));
});

t.test('open-loop summaries', async (t) => {
  t.equal(quantile([1, 2, 3, 4], 0.5), 2);
  t.equal(quantile([1, 2, 3, 4], 0.99), 4);
  const s = summarize({ name: "x", start: 0, sched: [0, 10, 20, 30], lat: [1, 2, 3, 100], svc: [1, 2, 3, 50], status: [200, 200, 0, 503], backend: [0, 0, -1, 0], backends: ['a'], errors: {} }, 5);
  t.equal(s.count, 3);
  t.equal(s.failed, 2);
  t.equal(summarize({ name: "x", start: 0, sched: [0, 1], lat: [1, 1], svc: [1, 1], status: [404, 200], backend: [-1, 0], backends: ["a"], errors: {} }).failed, 1, "a 4xx from the proxy is a failure");
  t.equal(s.p50, 3);
  t.equal(s.max, 100);
  t.equal(s.p99Service, 50);
});
