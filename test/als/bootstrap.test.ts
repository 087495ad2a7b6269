// The Envoy bootstrap that streams access logs to meshmedic and takes EDS from it is a valid v3 Bootstrap
// (every field checked against Envoy's own messages), and the control-mode example config is valid.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { encodeMessage, loadProto, messageType } from '../../src/xds/proto.js';
import { controlConfig } from '../../src/cli/control.js';
import { fromProto3Json } from '../helpers/proto3-json.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

t.test('bootstrap-als.yaml decodes as envoy.config.bootstrap.v3.Bootstrap', async (t) => {
  loadProto('envoy/config/bootstrap/v3/bootstrap.proto');
  loadProto('envoy/extensions/access_loggers/grpc/v3/als.proto');
  const doc = fromProto3Json('envoy.config.bootstrap.v3.Bootstrap', parse(readFileSync(`${root}mesh-config/envoy/bootstrap-als.yaml`, 'utf8'))) as Record<string, unknown>;
  let bytes: Uint8Array = new Uint8Array(0);
  t.doesNotThrow(() => (bytes = encodeMessage('envoy.config.bootstrap.v3.Bootstrap', doc)), 'every field exists in Envoy\'s messages');
  const b = messageType('envoy.config.bootstrap.v3.Bootstrap').toObject(messageType('envoy.config.bootstrap.v3.Bootstrap').decode(bytes), { enums: String }) as any;
  const hcmAny = b.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
  const hcm = messageType('envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager').decode(hcmAny.value) as any;
  const loggerAny = hcm.access_log[0].typed_config;
  t.equal(loggerAny.type_url, 'type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig');
  const logger = messageType('envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig').toObject(
    messageType('envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig').decode(loggerAny.value), { enums: String }) as any;
  t.equal(logger.common_config.transport_api_version, 'V3', 'ALS v3');
  t.equal(logger.common_config.grpc_service.envoy_grpc.cluster_name, 'meshmedic_xds', 'logs go to the same control plane as ADS');
  t.ok(logger.common_config.log_name, 'a log_name (required by the ALS identifier)');
  const hello = b.static_resources.clusters.find((c: { name: string }) => c.name === 'hello');
  t.equal(hello.type, 'EDS', 'the team\'s cluster takes endpoints over EDS');
  t.ok(hello.eds_cluster_config.eds_config.ads, 'from ADS');
  t.throws(() => encodeMessage('envoy.config.bootstrap.v3.Bootstrap', { ...doc, static_resourcez: {} }), /static_resourcez/, 'a misspelt field would be caught');
});

t.test('mesh-config/control.yaml is a valid control-mode config', async (t) => {
  const v = controlConfig({ xds: '127.0.0.1:0', config: `${root}mesh-config/control.yaml` });
  t.ok(v.valid, v.valid ? 'valid' : v.errors.join('; '));
  if (v.valid) {
    t.equal(v.result.als.enabled, true);
    t.equal(v.result.outbound.enabled, false, 'no proxy listener in control mode');
    t.equal(v.result.als.clusters['outbound|8080||hello.default.svc.cluster.local'], 'hello');
  }
});
