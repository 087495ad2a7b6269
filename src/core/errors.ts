// Every public error has a stable code, declared once here and documented in docs/errors.md.

export const ERROR_CODES = {
  MM_ERR_CONFIG_INVALID: 'the configuration does not match the schema',
  MM_ERR_CONFIG_READ: 'the configuration file cannot be read or parsed',
  MM_ERR_USAGE: 'the command line is wrong',
  MM_ERR_NO_ENDPOINT: 'no usable endpoint for the service',
  MM_ERR_UNKNOWN_SERVICE: 'the request names no known service',
  MM_ERR_UPSTREAM_CONNECT: 'the endpoint refused or failed the connection',
  MM_ERR_UPSTREAM_RESET: 'the endpoint reset the connection or sent a bad response',
  MM_ERR_UPSTREAM_TIMEOUT: 'the endpoint did not answer in time',
  MM_ERR_BAD_REQUEST: 'the request is malformed',
  MM_ERR_UPSTREAM_BUSY: 'no connection to the endpoint was free in time (proxy.queueTimeoutMs)',
  MM_ERR_DRAIN_DEADLINE: 'the sidecar shut down (proxy.drainTimeoutMs passed) before the endpoint answered',
  MM_ERR_REQUEST_TIMEOUT: 'the client sent the request head or body too slowly (proxy.requestHeadersTimeoutMs, proxy.requestBodyMinBytesPerSecond)',
  MM_ERR_NOT_FOUND: 'no such resource',
  MM_ERR_UNAUTHORIZED: 'a valid admin token is required',
  MM_ERR_ADDRESS: 'an address is not HOST:PORT with an IP literal or a numeric port',
  MM_ERR_INTERNAL: 'an internal error (a bug): the request failed, the sidecar kept running',
  MM_ERR_CONFLICT: 'the request conflicts with the current state',
  MM_ERR_ADMISSION_REVIEW: 'the webhook got a body that is not an AdmissionReview with a request and a uid',
  MM_ERR_ADMISSION_VERSION: 'the webhook got an AdmissionReview in a version other than admission.k8s.io/v1',
  MM_ERR_PAYLOAD_TOO_LARGE: 'the request body exceeds the size limit',
  MM_ERR_UNSUPPORTED_MEDIA_TYPE: 'the request body is not application/json',
  MM_ERR_METHOD_NOT_ALLOWED: 'the HTTP method is not allowed on this path',
  MM_ERR_GOSSIP_BIND: 'the gossip address cannot be bound for both UDP and TCP',
  MM_ERR_WORKER_START: 'a proxy worker process (proxy.workers) could not start, e.g. its listener could not be bound: the sidecar does not start',
  MM_ERR_WORKER_SHARING: 'proxy.workerSharing asks for reuseport on a Node that cannot bind with SO_REUSEPORT',
  MM_ERR_GOSSIP_IDENTITY: 'the gossip identity key file cannot be read, written, or is not an Ed25519 PEM key',
  MM_ERR_AUDIT_UNAVAILABLE: 'the audit log directory cannot be written (full, missing, read-only): proxying and healing go on, entries queue',
  MM_ERR_AUDIT_KEY: 'the audit signing key file cannot be read, written, or is not an Ed25519 PEM key',
  MM_ERR_AUDIT_TAMPERED: 'the audit log fails verification: an entry or checkpoint was altered, removed, reordered or forged',
  MM_ERR_AUDIT_FORK: 'a witness saw two checkpoints of one log that are not consistent (a fork or a rewrite)',
  MM_ERR_AUDIT_WITNESS_STATE: 'the witness state file (witness.json) cannot be read, is not valid, or cannot be written: the witness starts without memory of what it cosigned',
  MM_ERR_HTTP1_ENGINE: 'the HTTP/1 engine named by proxy.http1Engine cannot run on this Node (auto falls back instead)',
  MM_ERR_ADMIN_HOST: 'the Host header of an admin request names neither the admin listener, localhost, nor an allowed host name (DNS rebinding defence)',
  MM_ERR_ADMIN_READ_ONLY: 'the admin API is read-only (admin.readOnly): changes are refused',
  MM_ERR_GUARD_REFUSED: 'an operator ejection or drain was refused by a healing guard (max ejection %, panic, rate limit); "force": true overrides',
  MM_ERR_K8S_API: 'a Kubernetes API request failed (network, timeout, an error status or an answer that is not the expected JSON); the caller retries later',
  MM_ERR_K8S_CONFIG: 'no usable Kubernetes API credentials: the kubeconfig cannot be read, is not valid, names a missing context, cluster or user, or uses an exec plugin or auth-provider (not supported); or not in a pod and nothing else given',
  MM_ERR_GOSSIP_KEYS: 'gossip.keysFile cannot be read, holds no key, or holds something that is not a base64 AES-256 key',
  MM_ERR_LEARN_POLICY: 'the learned policy file (healing.policyFile, --policy-file) cannot be read, is not valid JSON, has another format or version, fails its checksum, or has the wrong shape (exit 2)',
  MM_ERR_LEARN_FEDERATED: 'a gossiped federated baseline vector was refused (malformed, another version, too large, a NaN, infinite or out-of-range parameter, bad signature, unknown sender, replay, stale or future stamp, rate limit): it is dropped and counted; nothing else changes',
  MM_ERR_UPSTREAM_CONNECT_TIMEOUT: 'the connection to the endpoint was not established within proxy.connectTimeoutMs (answered as MM_ERR_UPSTREAM_TIMEOUT)',
  MM_ERR_UPSTREAM_HEADERS_TIMEOUT: 'the endpoint sent no response head in time (answered as MM_ERR_UPSTREAM_TIMEOUT)',
  MM_ERR_UPSTREAM_BODY_TIMEOUT: 'the endpoint stopped sending the response body (answered as MM_ERR_UPSTREAM_TIMEOUT)',
  MM_ERR_UPSTREAM_CLOSED: 'the connections to the endpoint were closed (the endpoint was removed, or the sidecar is stopping) before the request was sent (answered as MM_ERR_UPSTREAM_CONNECT)',
  MM_ERR_UPSTREAM_BAD_RESPONSE: 'the endpoint sent a response the proxy cannot forward: malformed, an unknown status, a protocol upgrade nobody asked for (answered as MM_ERR_UPSTREAM_RESET)',
  MM_ERR_UPSTREAM_ABORTED: 'the request to the endpoint was abandoned by the proxy: the client went away, or a deadline cut it (answered as MM_ERR_UPSTREAM_RESET)',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class MeshmedicError extends Error {
  readonly code: ErrorCode;
  readonly details: readonly string[];
  constructor(code: ErrorCode, message: string, details: readonly string[] = []) {
    super(message);
    this.name = 'MeshmedicError';
    this.code = code;
    this.details = details;
  }
}

/** Validation results never throw: they collect every problem. */
export type Validated<T> = { valid: true; result: T } | { valid: false; errors: string[] };
