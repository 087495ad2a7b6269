// `meshmedic run` inside a pod: the mounted config is optional and the pod's annotations tune it.
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { defaultComponents } from '../../src/runtime/sidecar.js';
import { validateConfig } from '../../src/config/load.js';

const dir = mkdtempSync(join(tmpdir(), 'mm-pod-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

function run(argv: string[], env: NodeJS.ProcessEnv) {
  const out: string[] = [];
  const err: string[] = [];
  return main(argv, { out: (s) => out.push(s), err: (s) => err.push(s), env }).then((code) => ({ code, out: out.join(''), err: err.join('') }));
}

t.test('annotations tune the config; a bad one is a warning and its default stays', async (t) => {
  const annotations = join(dir, 'annotations');
  writeFileSync(annotations, 'meshmedic.io/policy="envoy-default"\nmeshmedic.io/max-ejection-percent="250"\napp="shop"\n');
  const r = await run(['run', '--check', '--config', join(dir, 'missing-mesh.yaml')], { MESHMEDIC_POD_ANNOTATIONS: annotations });
  t.equal(r.code, 0, r.err);
  const cfg = JSON.parse(r.out);
  t.equal(cfg.healing.policy, 'envoy-default');
  t.equal(cfg.healing.ejection?.maxEjectionPct, undefined, 'the bad value is dropped');
  t.match(r.err, /annotation ignored.*max-ejection-percent/);
});

t.test('without a config file and outside a pod, run is a usage error', async (t) => {
  const r = await run(['run'], {});
  t.equal(r.code, 2);
  t.match(r.err, /--config FILE is required/);
});

t.test('the Kubernetes component starts only in a pod', async (t) => {
  const v = validateConfig({});
  if (!v.valid) throw new Error('defaults invalid');
  t.notOk(defaultComponents(v.result, {}).some((c) => c.name === 'k8s'));
  t.ok(defaultComponents(v.result, { MESHMEDIC_K8S_DISCOVERY: 'true' }).some((c) => c.name === 'k8s'));
});
