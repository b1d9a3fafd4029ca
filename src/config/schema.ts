/**
 * The configuration file's schema (JSON Schema, checked with ajv) and the
 * TypeScript shape it guarantees. Defaults live here, next to the keys, so the
 * schema is the one place that says what a key means and what it defaults to.
 * Key names are promises to operators' scripts: add keys, never rename them.
 */

export interface ZoneConfig {
  readonly origin: string
  readonly file: string
}

export interface TcpGuardConfig {
  readonly maxConnections: number
  readonly maxPerClient: number
  readonly idleTimeoutMs: number
  readonly maxPipelined: number
}

export interface SteerdnsConfig {
  /** Node identity in NSID, CHAOS id.server/hostname.bind and every log line. */
  readonly identity: string
  readonly listen: readonly string[]
  readonly zones: readonly ZoneConfig[]
  readonly dns: {
    /** Cap on UDP responses whatever the client advertises (1232: DNS flag day 2020). */
    readonly maxUdpResponseBytes: number
    /** Answer NSID requests (RFC 5001) with the identity. */
    readonly nsid: boolean
    /** CHAOS version.bind answer; "" refuses the name. */
    readonly version: string
    /** How often zone files are checked for changes; 0 disables polling (SIGHUP still reloads). */
    readonly zonePollIntervalMs: number
  }
  readonly guard: { readonly tcp: TcpGuardConfig }
  readonly log: { readonly level: string; readonly queries: boolean }
}

const listenPattern = '^(\\[[0-9A-Fa-f:.]+\\]|[0-9.]+):[0-9]{1,5}$'

/** JSON Schema for the file; ajv fills defaults in place (useDefaults). */
export const configSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    identity: { type: 'string', minLength: 1, maxLength: 255 },
    listen: { type: 'array', items: { type: 'string', pattern: listenPattern }, minItems: 1, default: ['127.0.0.1:5353'] },
    zones: {
      type: 'array',
      default: [],
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['origin', 'file'],
        properties: { origin: { type: 'string', minLength: 1 }, file: { type: 'string', minLength: 1 } },
      },
    },
    dns: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        maxUdpResponseBytes: { type: 'integer', minimum: 512, maximum: 65535, default: 1232 },
        nsid: { type: 'boolean', default: true },
        version: { type: 'string', maxLength: 255, default: 'steerdns' },
        zonePollIntervalMs: { type: 'integer', minimum: 0, default: 2000 },
      },
    },
    guard: {
      type: 'object',
      additionalProperties: true,
      default: {},
      properties: {
        tcp: {
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: {
            maxConnections: { type: 'integer', minimum: 1, default: 10000 },
            maxPerClient: { type: 'integer', minimum: 1, default: 64 },
            idleTimeoutMs: { type: 'integer', minimum: 100, default: 10000 },
            maxPipelined: { type: 'integer', minimum: 1, default: 100 },
          },
        },
      },
    },
    log: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        level: { enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'info' },
        queries: { type: 'boolean', default: false },
      },
    },
  },
} as const
