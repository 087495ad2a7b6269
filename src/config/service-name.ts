// The pattern a service name must match, in a module of its own: Kubernetes discovery checks the names it
// builds against it without loading the configuration schema (every section of it) into the sidecar.

/** A DNS-style service name (lower case, digits, `-`, `.`, `_`; at most 253 characters). */
export const SERVICE_NAME_PATTERN = '^[a-z0-9]([-a-z0-9._]{0,251}[a-z0-9])?$';
