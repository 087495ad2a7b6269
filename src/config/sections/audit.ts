// Tamper-evident audit log settings (src/audit/): where the log lives, how often it is fsynced and signed, rotation.
import { durationMs } from './common.js';

/** Where the log goes when enabled without a directory (a pod: mount a volume there). */
export const DEFAULT_AUDIT_DIR = '/var/lib/meshmedic/audit';

export const auditSchema = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    enabled: { type: 'boolean', default: false, description: 'append every decision, operator call and config load to a signed Merkle log' },
    dir: { type: 'string', maxLength: 4096, default: '', description: `directory of the log (created if missing; one sidecar per directory); empty = ${DEFAULT_AUDIT_DIR}` },
    keyFile: { type: 'string', maxLength: 4096, default: '', description: 'PEM Ed25519 key that signs checkpoints; empty = gossip.identityKeyFile if set, else DIR/node-key.pem (created)' },
    fsyncIntervalMs: durationMs(100, 1, 10_000, 'entries are written and fsynced in batches this often'),
    checkpointIntervalMs: durationMs(1000, 10, 3_600_000, 'a signed checkpoint at least this often while there are new entries'),
    retention: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        maxSegmentEntries: { type: 'integer', minimum: 2, maximum: 10_000_000, default: 1_000_000, description: 'start a new segment after this many entries' },
        maxSegmentAgeMs: durationMs(86_400_000, 1000, 31 * 86_400_000, 'start a new segment once the current one is this old'),
        maxSegments: { type: 'integer', minimum: 1, maximum: 100_000, default: 30, description: 'segments kept; the oldest are deleted first, each with its final checkpoint' },
      },
    },
    maxQueued: { type: 'integer', minimum: 0, maximum: 10_000_000, default: 100_000, description: 'entries held in memory while the directory is unwritable; beyond, they are counted and dropped' },
  },
} as const;

export interface AuditConfig {
  readonly enabled: boolean;
  readonly dir: string;
  readonly keyFile: string;
  readonly fsyncIntervalMs: number;
  readonly checkpointIntervalMs: number;
  readonly retention: { readonly maxSegmentEntries: number; readonly maxSegmentAgeMs: number; readonly maxSegments: number };
  readonly maxQueued: number;
}
