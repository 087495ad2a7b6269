// HAProxy and nginx configs generated for the benchmarks are accepted by the real binaries,
// and their stats/log parsers read what those binaries write.
import t from 'tap';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  haproxyConfig, nginxConfig, haproxyCheckArgs, nginxCheckArgs, parseHaproxyCsv, nginxDisabledCounts,
  BENCH_TIMEOUTS, HAPROXY_HEALING, NGINX_HEALING, HAPROXY_TUNED, HAPROXY_TUNED_NO_RETRIES, NGINX_TUNED, NGINX_TUNED_NO_RETRIES,
} from '../../bench/lib/peers.js';
import { findBinary, runCommand, tempDir } from '../../bench/lib/procs.js';

const servers = [{ host: '127.0.0.1', port: 18081 }, { host: '127.0.0.1', port: 18082 }];
const haproxy = findBinary('haproxy');
const nginx = findBinary('nginx');

t.test('haproxy config: content', async (t) => {
  const plain = haproxyConfig({ listen: { host: '127.0.0.1', port: 18080 }, servers, timeouts: BENCH_TIMEOUTS });
  t.match(plain, /option http-keep-alive/);
  t.notMatch(plain, /nbthread/, 'default threads unless asked');
  t.notMatch(plain, /check/, 'no health checks in the plain benchmark');
  const healing = haproxyConfig({
    listen: { host: '127.0.0.1', port: 18080 }, servers, nbthread: 1, timeouts: BENCH_TIMEOUTS,
    healing: HAPROXY_HEALING, stats: { host: '127.0.0.1', port: 18089 },
  });
  t.match(healing, /nbthread 1/);
  t.match(healing, /observe layer7 error-limit 5 on-error mark-down/);
  t.match(healing, /option httpchk GET \/healthz/);
  t.match(healing, /server e1 127\.0\.0\.1:18082 check/);
  t.match(healing, /stats uri \/stats/);
});

t.test('nginx config: content', async (t) => {
  const c = nginxConfig({ listen: { host: '127.0.0.1', port: 18080 }, servers, workers: 1, timeouts: BENCH_TIMEOUTS, dir: '/tmp/x', healing: NGINX_HEALING });
  t.match(c, /worker_processes 1;/);
  t.match(c, /server 127\.0\.0\.1:18081 max_fails=1 fail_timeout=10s;/);
  t.match(c, /proxy_http_version 1\.1;/);
  t.match(c, /keepalive \d+;/);
  t.match(c, /error_log \/tmp\/x\/error\.log warn;/);
});

t.test('tuned configs: what an expert would set, written out', async (t) => {
  const h = haproxyConfig({ listen: { host: '127.0.0.1', port: 18080 }, servers, timeouts: BENCH_TIMEOUTS, healing: HAPROXY_TUNED });
  t.match(h, /balance leastconn/);
  t.match(h, /retry-on all-retryable-errors/);
  t.match(h, /retries 2/);
  t.match(h, /option redispatch 1/);
  t.match(h, /inter 1000ms fastinter 250ms downinter 250ms fall 2 rise 2 observe layer7 error-limit 3 on-error mark-down/);
  const hn = haproxyConfig({ listen: { host: '127.0.0.1', port: 18080 }, servers, timeouts: BENCH_TIMEOUTS, healing: HAPROXY_TUNED_NO_RETRIES });
  t.match(hn, /retries 0/);
  t.notMatch(hn, /retry-on|redispatch/);
  const n = nginxConfig({ listen: { host: '127.0.0.1', port: 18080 }, servers, workers: 'auto', timeouts: BENCH_TIMEOUTS, dir: '/tmp/x', healing: NGINX_TUNED });
  t.match(n, /zone be 256k;/);
  t.match(n, /random two least_conn;/);
  t.match(n, /max_fails=3 fail_timeout=2s;/);
  t.match(n, /proxy_next_upstream error timeout http_500 http_502 http_503 http_504;/);
  t.match(n, /proxy_next_upstream_tries 3;/);
  t.match(nginxConfig({ listen: { host: '127.0.0.1', port: 18080 }, servers, workers: 'auto', timeouts: BENCH_TIMEOUTS, dir: '/tmp/x', healing: NGINX_TUNED_NO_RETRIES }), /proxy_next_upstream_tries 1;/);
});

// scripts/ensure-peers.sh installs both; a missing binary fails here, loudly, rather than skipping.
t.test('haproxy -c accepts the generated configs', async (t) => {
  t.ok(haproxy, 'haproxy is installed (scripts/ensure-peers.sh installs it)');
  if (!haproxy) return;
  const tmp = tempDir('mm-hacheck');
  t.teardown(tmp.remove);
  for (const [name, cfg] of [
    ['plain', haproxyConfig({ listen: { host: '127.0.0.1', port: 18080 }, servers, timeouts: BENCH_TIMEOUTS })],
    ['healing', haproxyConfig({ listen: { host: '127.0.0.1', port: 18080 }, servers, nbthread: 1, timeouts: BENCH_TIMEOUTS, healing: HAPROXY_HEALING, stats: { host: '127.0.0.1', port: 18089 } })],
    ['tuned', haproxyConfig({ listen: { host: '127.0.0.1', port: 18080 }, servers, timeouts: BENCH_TIMEOUTS, healing: HAPROXY_TUNED, stats: { host: '127.0.0.1', port: 18089 } })],
    ['tuned, no retries', haproxyConfig({ listen: { host: '127.0.0.1', port: 18080 }, servers, timeouts: BENCH_TIMEOUTS, healing: HAPROXY_TUNED_NO_RETRIES })],
  ] as const) {
    const f = path.join(tmp.dir, `${name}.cfg`);
    writeFileSync(f, cfg);
    const r = await runCommand(haproxy!, haproxyCheckArgs(f), 20_000);
    t.equal(r.code, 0, `${name}: ${r.stderr.trim() || 'valid'}`);
  }
  const bad = path.join(tmp.dir, 'bad.cfg');
  writeFileSync(bad, haproxyConfig({ listen: { host: '127.0.0.1', port: 18080 }, servers, timeouts: BENCH_TIMEOUTS }).replace('balance roundrobin', 'balance sideways'));
  t.not((await runCommand(haproxy!, haproxyCheckArgs(bad), 20_000)).code, 0, 'a broken config is rejected (the check can fail)');
});

t.test('nginx -t accepts the generated configs', async (t) => {
  t.ok(nginx, 'nginx is installed (scripts/ensure-peers.sh installs it)');
  if (!nginx) return;
  const tmp = tempDir('mm-ngcheck');
  t.teardown(tmp.remove);
  for (const workers of ['auto', 1] as const) {
    const f = path.join(tmp.dir, `nginx-${workers}.conf`);
    writeFileSync(f, nginxConfig({ listen: { host: '127.0.0.1', port: 18080 }, servers, workers, timeouts: BENCH_TIMEOUTS, dir: tmp.dir, healing: NGINX_HEALING }));
    const r = await runCommand(nginx!, nginxCheckArgs(f, tmp.dir), 20_000);
    t.equal(r.code, 0, `workers ${workers}: ${r.stderr.trim() || 'valid'}`);
  }
  for (const [name, healing] of [['tuned', NGINX_TUNED], ['tuned, no retries', NGINX_TUNED_NO_RETRIES]] as const) {
    const f = path.join(tmp.dir, `nginx-${name.replace(/\W+/g, '-')}.conf`);
    writeFileSync(f, nginxConfig({ listen: { host: '127.0.0.1', port: 18080 }, servers, workers: 'auto', timeouts: BENCH_TIMEOUTS, dir: tmp.dir, healing }));
    const r = await runCommand(nginx!, nginxCheckArgs(f, tmp.dir), 20_000);
    t.equal(r.code, 0, `${name}: ${r.stderr.trim() || 'valid'}`);
  }
  const bad = path.join(tmp.dir, 'bad.conf');
  writeFileSync(bad, nginxConfig({ listen: { host: '127.0.0.1', port: 18080 }, servers, workers: 1, timeouts: BENCH_TIMEOUTS, dir: tmp.dir }).replace('proxy_pass', 'proxy_passs'));
  t.not((await runCommand(nginx!, nginxCheckArgs(bad, tmp.dir), 20_000)).code, 0, 'a broken config is rejected (the check can fail)');
});

t.test('parseHaproxyCsv reads server rows of backend be', async (t) => {
  const csv = [
    '# pxname,svname,qcur,status,chkdown,downtime,lastchg,',
    'fe,FRONTEND,0,OPEN,,,,',
    'be,e0,0,UP,0,0,12,',
    'be,e1,0,DOWN,2,7,3,',
    'be,BACKEND,0,UP,0,0,12,',
  ].join('\n');
  t.same(parseHaproxyCsv(csv), [
    { name: 'e0', status: 'UP', chkdown: 0, downtimeS: 0, lastchgS: 12 },
    { name: 'e1', status: 'DOWN', chkdown: 2, downtimeS: 7, lastchgS: 3 },
  ]);
  t.same(parseHaproxyCsv('garbage'), []);
});

t.test('nginxDisabledCounts counts per upstream', async (t) => {
  const log = [
    '2026/11/27 09:00:00 [error] 12#12: *1 connect() failed (111: Connection refused) while connecting to upstream, client: 127.0.0.1, server: , request: "GET / HTTP/1.1", upstream: "http://127.0.0.1:18081/", host: "x"',
    '2026/11/27 09:00:00 [warn] 12#12: *1 upstream server temporarily disabled while connecting to upstream, client: 127.0.0.1, server: , request: "GET / HTTP/1.1", upstream: "http://127.0.0.1:18081/", host: "x"',
    '2026/11/27 09:00:11 [warn] 12#12: *9 upstream server temporarily disabled while connecting to upstream, client: 127.0.0.1, server: , request: "GET / HTTP/1.1", upstream: "http://127.0.0.1:18081/", host: "x"',
  ].join('\n');
  t.same([...nginxDisabledCounts(log)], [['127.0.0.1:18081', 2]]);
});
