// Heavy audit appender for crash tests and the append benchmark: `node dist/testing/audit-writer-main.js DIR`.
// Appends decision-shaped entries as fast as it can (or --count of them) and prints "checkpoint SIZE" each time
// a checkpoint is durably stored, "done N MS" at the end; meant to be killed with SIGKILL mid-run.
import { generateKeyPairSync, createPrivateKey } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { systemClock } from '../core/clock.js';
import { AuditLog } from '../audit/log.js';

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { count: { type: 'string' }, 'fsync-ms': { type: 'string' }, 'checkpoint-ms': { type: 'string' }, batch: { type: 'string' } },
  });
  const dir = positionals[0];
  if (!dir) throw new Error('usage: audit-writer-main DIR [--count N] [--fsync-ms 100] [--checkpoint-ms 1000] [--batch 1000]');
  mkdirSync(dir, { recursive: true });
  const keyPath = join(dir, 'node-key.pem');
  let key;
  if (existsSync(keyPath)) key = createPrivateKey(readFileSync(keyPath, 'utf8'));
  else {
    key = generateKeyPairSync('ed25519').privateKey;
    writeFileSync(keyPath, key.export({ format: 'pem', type: 'pkcs8' }));
  }
  const count = values.count ? Number(values.count) : Infinity;
  const batch = Number(values.batch ?? 1000);
  const log = AuditLog.open({
    dir, origin: 'meshmedic.io/audit/writer', privateKey: key, clock: systemClock,
    fsyncIntervalMs: Number(values['fsync-ms'] ?? 100), checkpointIntervalMs: Number(values['checkpoint-ms'] ?? 1000),
    retention: { maxSegmentEntries: 10_000_000, maxSegmentAgeMs: 31 * 86_400_000, maxSegments: 1000 },
    onCheckpoint: (_text, size) => process.stdout.write(`checkpoint ${size}\n`),
    onOutage: (err) => { if (err) process.stderr.write(`outage: ${err.message}\n`); },
  });
  const started = performance.now();
  let n = 0;
  await new Promise<void>((resolve) => {
    const step = () => {
      // Decision-shaped entries; bounded batches so that timers (fsync, checkpoints) keep running.
      for (let i = 0; i < batch && n < count; i++, n++) {
        log.append({ kind: 'decision', at: Date.now(), seq: n, action: n % 3 ? 'weight' : 'eject', target: `svc/10.0.${(n >> 8) & 255}.${n & 255}:8080`, reason: 'latency_peer', source: 'local', applied: true, evidence: { p99Ms: 120.5, medianMs: 31.2, observers: 3 } });
      }
      if (n >= count) resolve();
      else setImmediate(step);
    };
    step();
  });
  const appendedMs = performance.now() - started;
  await log.close();
  const totalMs = performance.now() - started;
  process.stdout.write(`done ${n} ${appendedMs.toFixed(1)} ${totalMs.toFixed(1)}\n`);
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
