// The Kubernetes manifests that install meshmedic, built from typed models (kubernetes-models), so a
// misspelt or misplaced field fails to compile. `npm run k8s:manifests` writes them to k8s/*.yaml.
import { stringify } from 'yaml';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { Service } from 'kubernetes-models/v1/Service';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ClusterRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole';
import { ClusterRoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding';
import { RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { MutatingWebhookConfiguration } from 'kubernetes-models/admissionregistration.k8s.io/v1/MutatingWebhookConfiguration';
import type { IMutatingWebhook } from 'kubernetes-models/admissionregistration.k8s.io/v1/MutatingWebhook';
import { Certificate } from '@kubernetes-models/cert-manager/cert-manager.io/v1/Certificate';
import { Issuer } from '@kubernetes-models/cert-manager/cert-manager.io/v1/Issuer';
import { CONTROL_NAMESPACE, DEFAULT_EXCLUDED_NAMESPACES, DEFAULT_INJECTOR_CONFIG } from './injector-config.js';
import { INJECT_PATH, INJECT_POD_PATH } from './webhook.js';
import { GOSSIP_KEYS_DIR, INJECT_LABEL_OFF, INJECT_LABEL_ON } from './inject.js';
import { buildDashboard } from './dashboard.js';

export const NAMESPACE = CONTROL_NAMESPACE;
export const WEBHOOK_NAME = 'meshmedic-webhook';
export const WEBHOOK_PORT = 17443;
export const SAMPLE_NAMESPACE = 'shop';
/**
 * Label that opts in every pod of a namespace, or one pod in a namespace without it; "false" on a pod
 * (label or annotation) opts it out.
 */
export const NAMESPACE_LABEL = 'meshmedic.io/inject';
export const DISCOVERY_ROLE = 'meshmedic-discovery';
/** The gossip keyring Secret, one copy per namespace whose pods gossip (created by hand: see docs/kubernetes.md). */
export const GOSSIP_SECRET = DEFAULT_INJECTOR_CONFIG.gossipKeysSecret;
/** Headless Service in front of the xDS/control pods: the gossip seed of every sidecar. */
export const GOSSIP_SERVICE = 'meshmedic-gossip';
export const GOSSIP_SEED = `dns+srv://_gossip._udp.${GOSSIP_SERVICE}.${CONTROL_NAMESPACE}.svc.cluster.local`;
export const XDS_PORT = 17010;
/** The one address every consumer of the xDS/control server uses (istiod's configSources among them). */
export const XDS_ADDRESS = `meshmedic-xds.${CONTROL_NAMESPACE}.svc:${XDS_PORT}`;
/** Where the xDS server's certificate Secret (meshmedic-xds-tls, from cert-manager) is mounted. */
export const XDS_TLS_DIR = '/etc/meshmedic/xds-tls';
export const GATE_ROLE = 'meshmedic-readiness-gate';

const appLabels = { 'app.kubernetes.io/name': 'meshmedic', 'app.kubernetes.io/component': 'webhook' };

/** Anything with validate() and a JSON form: the models. */
interface Model {
  validate(): void;
  toJSON(): unknown;
}

export interface ManifestFile {
  readonly file: string;
  readonly comment: string;
  readonly objects: readonly Model[];
}

export const INJECTOR_YAML = `# Injector settings (see docs/kubernetes.md). Every key is optional.
injector:
  image: ${DEFAULT_INJECTOR_CONFIG.image}
  mode: native            # classic for clusters older than Kubernetes 1.29
  resources:
    cpu: 50m
    memory: 160Mi
    memoryLimit: 256Mi
  footprint: small        # V8 heap flags for a small RSS (default: Node's own heap sizing)
  noProxy: []             # extra NO_PROXY entries for every app container
  readinessGate: false    # true: pods get the gate meshmedic.io/healthy (bind meshmedic-readiness-gate)
  readinessGateMode: direct  # quorum: a pod is marked only once the gossip quorum holds it failing
`;

export const MESH_YAML = `# Mesh settings for every sidecar in this namespace; pod annotations (meshmedic.io/*) override them.
healing:
  policy: meshmedic
  ejection:
    maxEjectionPct: 50
    alwaysEjectOne: true
log:
  level: info
# Encrypted gossip with the other sidecars; seeds: the xDS/control pods (70-istio.yaml). The keys come
# from the Secret ${GOSSIP_SECRET} of this namespace (the injector mounts it); listen and advertise
# addresses are set per pod by the injector.
gossip:
  enabled: true
  join:
    - ${GOSSIP_SEED}
  keysFile: ${GOSSIP_KEYS_DIR}
`;

/** Config of the in-cluster xDS/control server (`meshmedic control`, 70-istio.yaml). */
export const XDS_MESH_YAML = `# meshmedic control: ADS and ALS for Envoy and proxyless gRPC, and an xDS/MCP config source for istiod
# (DestinationRules only, merged with the teams' own) rendered from what it knows: discovered endpoints,
# drains and, through gossip with the sidecars, the mesh-wide ejections. It carries no traffic itself.
admin:
  readOnly: true
xds:
  tls:
    certFile: ${XDS_TLS_DIR}/tls.crt
    keyFile: ${XDS_TLS_DIR}/tls.key
  istio:
    mcp: true
    hostSuffix: .svc.cluster.local
    virtualServices: false
gossip:
  enabled: true
  join:
    - ${GOSSIP_SEED}
  keysFile: ${GOSSIP_KEYS_DIR}
log:
  level: info
`;

export function buildManifests(): ManifestFile[] {
  const namespace = new Namespace({
    metadata: { name: NAMESPACE, labels: { 'app.kubernetes.io/name': 'meshmedic', 'meshmedic.io/control-plane': 'true' } },
  });

  const webhookSa = new ServiceAccount({ metadata: { name: WEBHOOK_NAME, namespace: NAMESPACE, labels: appLabels } });
  // The webhook's only API use is the scan for pods that started without the sidecar: list pods and
  // namespaces, and create an Event on each such pod. Nothing it can change, no secrets, no watch.
  const webhookRole = new ClusterRole({
    metadata: { name: WEBHOOK_NAME, labels: { 'app.kubernetes.io/name': 'meshmedic' } },
    rules: [
      { apiGroups: [''], resources: ['pods', 'namespaces'], verbs: ['list'] },
      { apiGroups: [''], resources: ['events'], verbs: ['create'] },
    ],
  });
  const webhookBinding = new ClusterRoleBinding({
    metadata: { name: WEBHOOK_NAME, labels: { 'app.kubernetes.io/name': 'meshmedic' } },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: WEBHOOK_NAME },
    subjects: [{ kind: 'ServiceAccount', name: WEBHOOK_NAME, namespace: NAMESPACE }],
  });

  // Least privilege for discovery: read-only Services and EndpointSlices, the only kinds it reads.
  const discoveryRole = new ClusterRole({
    metadata: { name: DISCOVERY_ROLE, labels: { 'app.kubernetes.io/name': 'meshmedic' } },
    rules: [
      { apiGroups: [''], resources: ['services'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['get', 'list', 'watch'] },
    ],
  });

  // For the readiness gate (off by default): a sidecar sets the meshmedic.io/healthy condition of its
  // own pod and of the pods it ejects. Bind it per namespace, for the workloads that enable the gate.
  const gateRole = new ClusterRole({
    metadata: { name: GATE_ROLE, labels: { 'app.kubernetes.io/name': 'meshmedic' } },
    rules: [{ apiGroups: [''], resources: ['pods/status'], verbs: ['patch'] }],
  });

  const injectorConfig = new ConfigMap({
    metadata: { name: WEBHOOK_NAME, namespace: NAMESPACE, labels: appLabels },
    data: { 'injector.yaml': INJECTOR_YAML },
  });

  const deployment = new Deployment({
    metadata: { name: WEBHOOK_NAME, namespace: NAMESPACE, labels: appLabels },
    spec: {
      replicas: 2,
      selector: { matchLabels: appLabels },
      template: {
        metadata: {
          labels: { ...appLabels, [NAMESPACE_LABEL]: 'false' },
          // Its /metrics is on the HTTPS port (the scrape config must trust or skip-verify its certificate).
          annotations: { 'prometheus.io/scrape': 'true', 'prometheus.io/scheme': 'https', 'prometheus.io/port': String(WEBHOOK_PORT), 'prometheus.io/path': '/metrics' },
        },
        spec: {
          serviceAccountName: WEBHOOK_NAME,
          securityContext: { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } },
          affinity: {
            podAntiAffinity: {
              preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 100, podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: appLabels } } }],
            },
          },
          containers: [
            {
              name: 'webhook',
              image: DEFAULT_INJECTOR_CONFIG.image,
              imagePullPolicy: 'IfNotPresent',
              args: ['webhook', '--listen', `0.0.0.0:${WEBHOOK_PORT}`, '--tls-cert', '/etc/meshmedic/tls/tls.crt', '--tls-key', '/etc/meshmedic/tls/tls.key', '--config', '/etc/meshmedic/injector/injector.yaml', '--missing-sidecar-interval', '60s'],
              // Events name the replica that reported; its own namespace is never scanned.
              env: [
                { name: 'POD_NAME', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.name' } } },
                { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } } },
              ],
              ports: [{ name: 'https', containerPort: WEBHOOK_PORT, protocol: 'TCP' }],
              readinessProbe: { httpGet: { path: '/healthz', port: 'https', scheme: 'HTTPS' }, periodSeconds: 5 },
              livenessProbe: { httpGet: { path: '/healthz', port: 'https', scheme: 'HTTPS' }, periodSeconds: 10, failureThreshold: 3 },
              resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '128Mi' } },
              securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, privileged: false, capabilities: { drop: ['ALL'] } },
              volumeMounts: [
                { name: 'tls', mountPath: '/etc/meshmedic/tls', readOnly: true },
                { name: 'injector', mountPath: '/etc/meshmedic/injector', readOnly: true },
              ],
            },
          ],
          volumes: [
            { name: 'tls', secret: { secretName: `${WEBHOOK_NAME}-tls` } },
            { name: 'injector', configMap: { name: WEBHOOK_NAME } },
          ],
        },
      },
    },
  });

  const pdb = new PodDisruptionBudget({
    metadata: { name: WEBHOOK_NAME, namespace: NAMESPACE, labels: appLabels },
    spec: { minAvailable: 1, selector: { matchLabels: appLabels } },
  });

  const service = new Service({
    metadata: { name: WEBHOOK_NAME, namespace: NAMESPACE, labels: appLabels },
    spec: { selector: appLabels, ports: [{ name: 'https', port: 443, targetPort: 'https', protocol: 'TCP' }] },
  });

  const issuer = new Issuer({
    metadata: { name: `${WEBHOOK_NAME}-selfsigned`, namespace: NAMESPACE },
    spec: { selfSigned: {} },
  });
  const certificate = new Certificate({
    metadata: { name: WEBHOOK_NAME, namespace: NAMESPACE },
    spec: {
      secretName: `${WEBHOOK_NAME}-tls`,
      dnsNames: [`${WEBHOOK_NAME}.${NAMESPACE}.svc`, `${WEBHOOK_NAME}.${NAMESPACE}.svc.cluster.local`],
      duration: '2160h',
      renewBefore: '360h',
      privateKey: { algorithm: 'ECDSA', size: 256, rotationPolicy: 'Always' },
      issuerRef: { name: `${WEBHOOK_NAME}-selfsigned`, kind: 'Issuer' },
    },
  });

  const common = {
    admissionReviewVersions: ['v1'],
    sideEffects: 'None',
    // Fail open: if the webhook is down, pods start without the sidecar rather than not at all.
    failurePolicy: 'Ignore',
    timeoutSeconds: 5,
    matchPolicy: 'Equivalent',
    // Called again if a later webhook changes the pod; the status annotation keeps that a no-op.
    reinvocationPolicy: 'IfNeeded',
    rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], scope: 'Namespaced' }],
  } satisfies Partial<IMutatingWebhook>;
  const excluded = [...DEFAULT_EXCLUDED_NAMESPACES, NAMESPACE];
  const webhookConfig = new MutatingWebhookConfiguration({
    metadata: {
      name: 'meshmedic-injector',
      labels: { 'app.kubernetes.io/name': 'meshmedic' },
      // cert-manager's CA injector fills in caBundle from the Certificate's secret.
      annotations: { 'cert-manager.io/inject-ca-from': `${NAMESPACE}/${WEBHOOK_NAME}` },
    },
    webhooks: [
      {
        name: 'namespace.inject.meshmedic.io',
        clientConfig: { service: { name: WEBHOOK_NAME, namespace: NAMESPACE, path: INJECT_PATH, port: 443 } },
        namespaceSelector: {
          matchExpressions: [
            { key: NAMESPACE_LABEL, operator: 'In', values: [...INJECT_LABEL_ON] },
            { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: excluded },
          ],
        },
        objectSelector: { matchExpressions: [{ key: NAMESPACE_LABEL, operator: 'NotIn', values: [...INJECT_LABEL_OFF] }] },
        ...common,
      },
      {
        // Pods opted in by their own label in namespaces without the label. A label, not an annotation:
        // the API server can select on labels only, so it calls the webhook for these pods alone.
        name: 'pod.inject.meshmedic.io',
        clientConfig: { service: { name: WEBHOOK_NAME, namespace: NAMESPACE, path: INJECT_POD_PATH, port: 443 } },
        namespaceSelector: {
          matchExpressions: [
            { key: NAMESPACE_LABEL, operator: 'DoesNotExist' },
            { key: 'kubernetes.io/metadata.name', operator: 'NotIn', values: excluded },
          ],
        },
        objectSelector: { matchExpressions: [{ key: NAMESPACE_LABEL, operator: 'In', values: [...INJECT_LABEL_ON] }] },
        ...common,
      },
    ],
  });

  const sampleNs = new Namespace({ metadata: { name: SAMPLE_NAMESPACE, labels: { [NAMESPACE_LABEL]: 'enabled' } } });
  const meshConfig = new ConfigMap({
    metadata: { name: DEFAULT_INJECTOR_CONFIG.meshConfigMap, namespace: SAMPLE_NAMESPACE, labels: { 'app.kubernetes.io/name': 'meshmedic' } },
    data: { 'mesh.yaml': MESH_YAML },
  });
  const sampleSa = new ServiceAccount({ metadata: { name: 'reviews', namespace: SAMPLE_NAMESPACE } });
  // Discovery is scoped to the pod's own namespace by default, so a RoleBinding there is enough, and only
  // for the workload's service account (not every service account of the namespace).
  const sampleBinding = new RoleBinding({
    metadata: { name: DISCOVERY_ROLE, namespace: SAMPLE_NAMESPACE },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: DISCOVERY_ROLE },
    subjects: [{ kind: 'ServiceAccount', name: 'reviews', namespace: SAMPLE_NAMESPACE }],
  });
  const sampleLabels = { app: 'reviews', version: 'v1' };
  const sampleDeployment = new Deployment({
    metadata: { name: 'reviews-v1', namespace: SAMPLE_NAMESPACE, labels: sampleLabels },
    spec: {
      replicas: 3,
      selector: { matchLabels: sampleLabels },
      template: {
        metadata: {
          labels: sampleLabels,
          annotations: {
            // Tuning for this service (table in docs/kubernetes.md).
            'meshmedic.io/policy': 'meshmedic',
            'meshmedic.io/consecutive-5xx': '5',
            'meshmedic.io/latency-eject-ratio': '3',
            'meshmedic.io/base-ejection-time': '30s',
            'meshmedic.io/max-ejection-percent': '34',
            'meshmedic.io/proxy-memory-limit': '192Mi',
            // Prometheus scrapes the sidecar's admin port (the injector adds these when absent).
            'prometheus.io/scrape': 'true',
            'prometheus.io/port': String(DEFAULT_INJECTOR_CONFIG.ports.admin),
            'prometheus.io/path': '/metrics',
          },
        },
        spec: {
          serviceAccountName: 'reviews',
          containers: [
            {
              name: 'reviews',
              image: 'istio/examples-bookinfo-reviews-v1:1.20.2',
              ports: [{ name: 'http', containerPort: 9080, protocol: 'TCP' }],
              readinessProbe: { httpGet: { path: '/health', port: 'http' }, periodSeconds: 5 },
              resources: { requests: { cpu: '100m', memory: '256Mi' }, limits: { memory: '512Mi' } },
              securityContext: { allowPrivilegeEscalation: false, runAsNonRoot: true, runAsUser: 1000, capabilities: { drop: ['ALL'] } },
            },
          ],
        },
      },
    },
  });
  const sampleService = new Service({
    metadata: { name: 'reviews', namespace: SAMPLE_NAMESPACE, labels: { app: 'reviews' } },
    spec: { selector: { app: 'reviews' }, ports: [{ name: 'http', port: 9080, targetPort: 'http', protocol: 'TCP' }] },
  });

  const dashboard = new ConfigMap({
    metadata: {
      name: 'meshmedic-grafana-dashboard',
      namespace: NAMESPACE,
      // Grafana's dashboard sidecar (kube-prometheus-stack) loads ConfigMaps with this label.
      labels: { 'app.kubernetes.io/name': 'meshmedic', grafana_dashboard: '1' },
    },
    data: { 'meshmedic.json': JSON.stringify(buildDashboard(), null, 2) + '\n' },
  });

  const xdsLabels = { 'app.kubernetes.io/name': 'meshmedic', 'app.kubernetes.io/component': 'xds' };
  const xdsConfig = new ConfigMap({
    metadata: { name: 'meshmedic-xds', namespace: NAMESPACE, labels: xdsLabels },
    data: { 'mesh.yaml': XDS_MESH_YAML },
  });
  const xdsSa = new ServiceAccount({ metadata: { name: 'meshmedic-xds', namespace: NAMESPACE, labels: xdsLabels } });
  const xdsBinding = new ClusterRoleBinding({
    metadata: { name: `${DISCOVERY_ROLE}-xds` },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: DISCOVERY_ROLE },
    subjects: [{ kind: 'ServiceAccount', name: 'meshmedic-xds', namespace: NAMESPACE }],
  });
  const gossipPort = DEFAULT_INJECTOR_CONFIG.ports.gossip;
  const xdsDeployment = new Deployment({
    metadata: { name: 'meshmedic-xds', namespace: NAMESPACE, labels: xdsLabels },
    spec: {
      replicas: 2,
      selector: { matchLabels: xdsLabels },
      template: {
        metadata: {
          labels: { ...xdsLabels, [NAMESPACE_LABEL]: 'false', 'sidecar.istio.io/inject': 'false' },
          annotations: { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '17000', 'prometheus.io/path': '/metrics' },
        },
        spec: {
          serviceAccountName: 'meshmedic-xds',
          securityContext: { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: { type: 'RuntimeDefault' } },
          affinity: {
            podAntiAffinity: {
              preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 100, podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: xdsLabels } } }],
            },
          },
          containers: [
            {
              name: 'meshmedic',
              image: DEFAULT_INJECTOR_CONFIG.image,
              args: ['control', '--xds', `0.0.0.0:${XDS_PORT}`, '--admin', '0.0.0.0:17000', '--config', '/etc/meshmedic/mesh/mesh.yaml'],
              env: [
                { name: 'MESHMEDIC_K8S_DISCOVERY', value: 'true' },
                { name: 'POD_NAME', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.name' } } },
                { name: 'POD_IP', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'status.podIP' } } },
                { name: 'MESHMEDIC_NODE__ID', value: `${NAMESPACE}/$(POD_NAME)` },
                { name: 'MESHMEDIC_GOSSIP__LISTEN', value: `0.0.0.0:${gossipPort}` },
                { name: 'MESHMEDIC_GOSSIP__ADVERTISE', value: `$(POD_IP):${gossipPort}` },
              ],
              ports: [
                { name: 'grpc-xds', containerPort: XDS_PORT, protocol: 'TCP' },
                { name: 'http-admin', containerPort: 17000, protocol: 'TCP' },
                { name: 'gossip-udp', containerPort: gossipPort, protocol: 'UDP' },
                { name: 'gossip-tcp', containerPort: gossipPort, protocol: 'TCP' },
              ],
              readinessProbe: { httpGet: { path: '/readyz', port: 'http-admin' }, periodSeconds: 5 },
              livenessProbe: { httpGet: { path: '/healthz', port: 'http-admin' }, periodSeconds: 10 },
              resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '512Mi' } },
              securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, privileged: false, capabilities: { drop: ['ALL'] } },
              volumeMounts: [
                { name: 'mesh', mountPath: '/etc/meshmedic/mesh', readOnly: true },
                { name: 'gossip-keys', mountPath: GOSSIP_KEYS_DIR, readOnly: true },
                { name: 'xds-tls', mountPath: XDS_TLS_DIR, readOnly: true },
              ],
            },
          ],
          // Not optional: without its keyring the pod waits for the Secret rather than gossip in the clear.
          volumes: [
            { name: 'mesh', configMap: { name: 'meshmedic-xds' } },
            { name: 'gossip-keys', secret: { secretName: GOSSIP_SECRET } },
            { name: 'xds-tls', secret: { secretName: 'meshmedic-xds-tls' } },
          ],
        },
      },
    },
  });
  const xdsService = new Service({
    metadata: { name: 'meshmedic-xds', namespace: NAMESPACE, labels: xdsLabels },
    // The port name's grpc- prefix tells Istio the protocol.
    spec: { selector: xdsLabels, ports: [{ name: 'grpc-xds', port: XDS_PORT, targetPort: 'grpc-xds', protocol: 'TCP' }] },
  });
  // The xDS server's certificate, from the self-signed Issuer of 20-certificate.yaml (clients trust ca.crt).
  const xdsCertificate = new Certificate({
    metadata: { name: 'meshmedic-xds', namespace: NAMESPACE, labels: xdsLabels },
    spec: {
      secretName: 'meshmedic-xds-tls',
      dnsNames: [`meshmedic-xds.${NAMESPACE}.svc`, `meshmedic-xds.${NAMESPACE}.svc.cluster.local`],
      duration: '2160h',
      renewBefore: '360h',
      privateKey: { algorithm: 'ECDSA', size: 256, rotationPolicy: 'Always' },
      issuerRef: { name: `${WEBHOOK_NAME}-selfsigned`, kind: 'Issuer' },
    },
  });
  const xdsPdb = new PodDisruptionBudget({
    metadata: { name: 'meshmedic-xds', namespace: NAMESPACE, labels: xdsLabels },
    spec: { minAvailable: 1, selector: { matchLabels: xdsLabels } },
  });
  // Gossip seeds: SRV records _gossip._udp of this headless Service; not-ready pods are published too (a
  // seed must be found before it is ready).
  const gossipService = new Service({
    metadata: { name: GOSSIP_SERVICE, namespace: NAMESPACE, labels: xdsLabels },
    spec: {
      clusterIP: 'None',
      publishNotReadyAddresses: true,
      selector: xdsLabels,
      ports: [
        { name: 'gossip', port: gossipPort, targetPort: 'gossip-udp', protocol: 'UDP' },
        { name: 'gossip-tcp', port: gossipPort, targetPort: 'gossip-tcp', protocol: 'TCP' },
      ],
    },
  });
  const optedIn = { matchExpressions: [{ key: NAMESPACE_LABEL, operator: 'In', values: [...INJECT_LABEL_ON] }] };
  // Only the mesh reaches xDS and gossip: opted-in namespaces and pods, the other replicas, and istiod's
  // namespace. The admin port (probes, metrics) stays open.
  const xdsPolicy = new NetworkPolicy({
    metadata: { name: 'meshmedic-xds', namespace: NAMESPACE, labels: xdsLabels },
    spec: {
      podSelector: { matchLabels: xdsLabels },
      policyTypes: ['Ingress'],
      ingress: [
        {
          from: [
            { namespaceSelector: optedIn },
            { namespaceSelector: {}, podSelector: optedIn },
            { podSelector: { matchLabels: xdsLabels } },
            { namespaceSelector: { matchExpressions: [{ key: 'kubernetes.io/metadata.name', operator: 'In', values: ['istio-system'] }] } },
          ],
          ports: [
            { port: XDS_PORT, protocol: 'TCP' },
            { port: gossipPort, protocol: 'UDP' },
            { port: gossipPort, protocol: 'TCP' },
          ],
        },
        { ports: [{ port: 17000, protocol: 'TCP' }] },
      ],
    },
  });

  return [
    { file: '00-namespace.yaml', comment: 'The namespace of the injection webhook.', objects: [namespace] },
    { file: '10-rbac.yaml', comment: 'Service accounts and least-privilege RBAC: the webhook lists pods and namespaces and creates Events (its scan for pods missing the sidecar); discovery reads Services and EndpointSlices; the readiness gate patches pod status (bind it where enabled).', objects: [webhookSa, webhookRole, webhookBinding, discoveryRole, gateRole] },
    { file: '20-certificate.yaml', comment: 'The webhook certificate from cert-manager (docs/kubernetes.md has the openssl path without cert-manager).', objects: [issuer, certificate] },
    { file: '30-webhook.yaml', comment: 'The injection webhook: settings, Deployment, disruption budget and Service.', objects: [injectorConfig, deployment, pdb, service] },
    { file: '40-mutatingwebhook.yaml', comment: 'Registration with the API server: the label meshmedic.io/inject=true on a namespace or a pod opts in; fails open.', objects: [webhookConfig] },
    { file: '50-sample-app.yaml', comment: 'A sample application in an opted-in namespace, tuned by annotations, with its mesh ConfigMap and discovery binding.', objects: [sampleNs, meshConfig, sampleSa, sampleBinding, sampleDeployment, sampleService] },
    { file: '60-grafana-dashboard.yaml', comment: 'The Grafana dashboard as a ConfigMap for the Grafana dashboard sidecar (also in grafana-dashboard.json).', objects: [dashboard] },
    {
      file: '70-istio.yaml',
      comment: `The xDS/control server (optional): an xDS/MCP config source for istiod, ADS/ALS for Envoy, and the gossip seed of the sidecars. Create its gossip keyring first (docs/kubernetes.md), then add to istiod's meshConfig:\n#   configSources: [{address: "k8s://"}, {address: "xds://${XDS_ADDRESS}"}]`,
      objects: [xdsConfig, xdsSa, xdsBinding, xdsCertificate, xdsDeployment, xdsPdb, xdsService, gossipService, xdsPolicy],
    },
  ];
}

const HEADER = '# Generated by `npm run k8s:manifests` from src/k8s/manifests.ts. Do not edit by hand.\n';

/** Render every manifest file (and the dashboard JSON) to text: file name → content. */
export function renderManifests(): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of buildManifests()) {
    const docs = m.objects.map((o) => stringify(JSON.parse(JSON.stringify(o)), { lineWidth: 0 }).trimEnd());
    out.set(m.file, `${HEADER}# ${m.comment}\n---\n${docs.join('\n---\n')}\n`);
  }
  out.set('grafana-dashboard.json', JSON.stringify(buildDashboard(), null, 2) + '\n');
  // `kubectl apply -k k8s/` installs the core (not the sample application nor the Istio wiring).
  const core = buildManifests().map((m) => m.file).filter((f) => !f.startsWith('50-') && !f.startsWith('70-'));
  const kustomization = { apiVersion: 'kustomize.config.k8s.io/v1beta1', kind: 'Kustomization', resources: core };
  out.set('kustomization.yaml', `${HEADER}# The core install: kubectl apply -k k8s/ (then 50-sample-app.yaml and 70-istio.yaml as wanted).\n${stringify(kustomization)}`);
  return out;
}
