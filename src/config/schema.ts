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

export interface RrlConfig {
  readonly enabled: boolean
  readonly responsesPerSecond: number
  readonly nxdomainsPerSecond: number
  readonly errorsPerSecond: number
  /** Referrals; defaults to responsesPerSecond. */
  readonly referralsPerSecond: number | undefined
  readonly windowSec: number
  /** Every Nth limited response is sent truncated (0: drop all, 1: truncate all). */
  readonly slip: number
  readonly ipv4Prefix: number
  readonly ipv6Prefix: number
  /** CIDRs never limited. */
  readonly exempt: readonly string[]
  /** Accounts kept at most (LRU), so spoofed floods cannot exhaust memory. */
  readonly maxEntries: number
}

export interface CookieConfig {
  readonly enabled: boolean
  /** 32 hex digits (RFC 9018 server secret, shared by every node of an anycast set); "" picks a random one per process. */
  readonly secret: string
  /** The secret before the last rotation, still accepted; "" for none. */
  readonly previousSecret: string
  /** Answer BADCOOKIE to a query with an invalid server cookie instead of treating it as client-only (RFC 7873 section 5.2.3). */
  readonly require: boolean
}

/** An active health check: exactly one of `http` (GET, expecting `expectStatus`) or `tcp` (connect). */
export interface HealthCheckConfig {
  /** http:// or https:// URL. */
  readonly http: string | undefined
  /** HOST:PORT ([v6]:PORT). */
  readonly tcp: string | undefined
  readonly expectStatus: number
  readonly intervalMs: number
  readonly timeoutMs: number
  /** Consecutive successes that make a down (or unknown) target up. */
  readonly rise: number
  /** Consecutive failures that make an up (or unknown) target down. */
  readonly fall: number
}

export interface TargetConfig {
  readonly id: string
  readonly site: string
  readonly ipv4: readonly string[]
  readonly ipv6: readonly string[]
  readonly location: { readonly lat: number; readonly lon: number }
  /** Relative share of load among near-equal targets (capacity weight). */
  readonly capacity: number
  readonly tags: readonly string[]
  /** Absent: no active check (the target counts as healthy unless passive health says otherwise). */
  readonly health: HealthCheckConfig | undefined
}

export interface HealthConfig {
  /** Passive health: a target is degraded when, over `windowSec`, at least `minReports` measurements of it came in and `failurePct` % or more failed. */
  readonly passive: { readonly failurePct: number; readonly minReports: number; readonly windowSec: number }
  /** Reported load (fraction of capacity, PATCH /v1/targets/{id} { load }) above which a target sheds new decisions. */
  readonly overloadWatermark: number
  /** How long the first check round may hold the start (targets not yet decided stay "unknown", which serves). */
  readonly startupWaitMs: number
}

export type AllDownPolicy = 'best' | 'all' | 'static'

export interface ServiceConfig {
  /** Steered name, internal form after loading (lowercase, no trailing dot). */
  readonly name: string
  /** Target ids and `tag:NAME` selectors. */
  readonly pool: readonly string[]
  /** Targets per answer. */
  readonly answers: number
  readonly ttl: { readonly min: number; readonly max: number }
  readonly allDown: AllDownPolicy
}

export interface MapConfig {
  /** Map file loaded at start (absent: empty map); `serve --map` overrides. */
  readonly file: string | undefined
  /** Client addresses are reduced to these prefixes for load-sharing hashes and measurements. */
  readonly ipv4Prefix: number
  readonly ipv6Prefix: number
  /** Candidates within this percentage of the best score share load by capacity. */
  readonly tolerancePct: number
  /** Map entries older than this fall back to geo. */
  readonly staleAfterSec: number
}

export type ApiRole = 'ingest' | 'operate' | 'read'

export interface ApiTokenConfig {
  /** Who the token belongs to: the audit log and metrics name it, never the secret. */
  readonly name: string
  readonly token: string
  readonly roles: readonly ApiRole[]
}

export interface ApiConfig {
  /** HOST:PORT of the HTTP control plane; `serve --api` overrides; "" turns the API off. */
  readonly listen: string
  readonly tokens: readonly ApiTokenConfig[]
  /** Paths answered without a token (health checks and Prometheus scrapers); [] requires `read` for them too. */
  readonly openPaths: readonly string[]
  /** CIDRs that may connect to the API at all (guard: "who may reach the API"). */
  readonly allow: readonly string[]
  /** Request bodies above this are refused with 413. */
  readonly bodyLimitBytes: number
  /** Requests per minute per token (or per address without one), @fastify/rate-limit; 0 turns limiting off. */
  readonly rateLimitPerMinute: number
}

export interface MeasureConfig {
  /** How often the map is recompiled from the estimators. */
  readonly compileIntervalSec: number
  /** A sample's weight halves every halfLifeSec. */
  readonly halfLifeSec: number
  /** Samples an estimator needs before it counts. */
  readonly minSamples: number
  /** Estimators without a sample for this long do not count (and reports older than this are refused). */
  readonly maxAgeSec: number
  /** A challenger must beat a prefix's current best by this much to replace it. */
  readonly hysteresisPct: number
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
    /**
     * DNS worker processes. 1: this process answers DNS. N > 1: this process
     * runs the control plane and N workers answer on the same addresses
     * (SO_REUSEPORT for UDP, shared TCP listeners), following its state.
     */
    readonly workers: number
  }
  readonly guard: {
    readonly tcp: TcpGuardConfig
    readonly rrl: RrlConfig
    readonly cookies: CookieConfig
    /** UDP answers to clients without a valid server cookie are truncated above this (anti-amplification). */
    readonly noCookieMaxUdpBytes: number
    /** Who may query: `debug` names (later issues) and CHAOS identity names. CIDR lists. */
    readonly acl: { readonly debug: readonly string[]; readonly chaos: readonly string[] }
  }
  /** `queries`: one structured line per answered query (client, ECS, name, type, rule, targets, rcode), sampled at `querySampleRate`. */
  readonly log: { readonly level: string; readonly queries: boolean; readonly querySampleRate: number }
  readonly targets: readonly TargetConfig[]
  readonly services: readonly ServiceConfig[]
  readonly map: MapConfig
  /** MaxMind databases: `city` (GeoIP2/GeoLite2 City layout) for geo fallback, `asn` optional. */
  readonly geo: { readonly city: string | undefined; readonly asn: string | undefined }
  readonly api: ApiConfig
  readonly measure: MeasureConfig
  readonly health: HealthConfig
  /** Where accepted measurements, the map, overrides, admin states and the audit log persist; relative to the config file; `serve --state` overrides. */
  readonly state: { readonly dir: string }
  /** Where shared state lives: `local` (the state directory, one node) or `redis` (many nodes share it). */
  readonly store: StoreConfig
  /** What this node runs: `all` (DNS and the control plane), `dns` (DNS following the shared state) or `control` (API, ingestion, compile, health checks); `serve --role` overrides. */
  readonly role: NodeRole
}

export type NodeRole = 'all' | 'dns' | 'control'

export interface StoreConfig {
  readonly kind: 'local' | 'redis'
  /** redis://[user:password@]host:port/db (rediss:// for TLS). */
  readonly url: string
  /** Prepended to every key and channel, so several deployments can share one Redis. */
  readonly keyPrefix: string
  /** Longest wait for one Redis command (and for connecting at start); past it, writes answer 503. */
  readonly timeoutMs: number
  /** Expiry of the compile lock; a dead compiling node is replaced after at most this long. */
  readonly lockTtlMs: number
  /** Safety poll of the state version, in case an announcement was lost without a disconnect. */
  readonly pollIntervalMs: number
}

const idPattern = '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'

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
        workers: { type: 'integer', minimum: 1, maximum: 64, default: 1 },
      },
    },
    guard: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        rrl: {
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: {
            enabled: { type: 'boolean', default: false },
            responsesPerSecond: { type: 'integer', minimum: 1, default: 20 },
            nxdomainsPerSecond: { type: 'integer', minimum: 1, default: 10 },
            errorsPerSecond: { type: 'integer', minimum: 1, default: 10 },
            referralsPerSecond: { type: 'integer', minimum: 1 },
            windowSec: { type: 'integer', minimum: 1, maximum: 3600, default: 5 },
            slip: { type: 'integer', minimum: 0, maximum: 10, default: 2 },
            ipv4Prefix: { type: 'integer', minimum: 8, maximum: 32, default: 24 },
            ipv6Prefix: { type: 'integer', minimum: 16, maximum: 128, default: 56 },
            exempt: { type: 'array', items: { type: 'string' }, default: [] },
            maxEntries: { type: 'integer', minimum: 100, default: 100000 },
          },
        },
        cookies: {
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: {
            enabled: { type: 'boolean', default: false },
            secret: { type: 'string', default: '' },
            previousSecret: { type: 'string', default: '' },
            require: { type: 'boolean', default: false },
          },
        },
        noCookieMaxUdpBytes: { type: 'integer', minimum: 512, maximum: 65535, default: 1232 },
        acl: {
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: {
            debug: { type: 'array', items: { type: 'string' }, default: ['127.0.0.0/8', '::1/128'] },
            chaos: { type: 'array', items: { type: 'string' }, default: ['0.0.0.0/0', '::/0'] },
          },
        },
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
    targets: {
      type: 'array',
      default: [],
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['id', 'location'],
        properties: {
          id: { type: 'string', pattern: idPattern },
          site: { type: 'string', default: '' },
          ipv4: { type: 'array', items: { type: 'string' }, default: [] },
          ipv6: { type: 'array', items: { type: 'string' }, default: [] },
          location: {
            type: 'object',
            additionalProperties: false,
            required: ['lat', 'lon'],
            properties: { lat: { type: 'number', minimum: -90, maximum: 90 }, lon: { type: 'number', minimum: -180, maximum: 180 } },
          },
          capacity: { type: 'number', exclusiveMinimum: 0, default: 100 },
          tags: { type: 'array', items: { type: 'string', pattern: idPattern }, default: [] },
          health: {
            type: 'object',
            additionalProperties: false,
            properties: {
              http: { type: 'string', pattern: '^https?://' },
              tcp: { type: 'string', pattern: listenPattern },
              expectStatus: { type: 'integer', minimum: 100, maximum: 599, default: 200 },
              intervalMs: { type: 'integer', minimum: 100, maximum: 3600000, default: 1000 },
              timeoutMs: { type: 'integer', minimum: 10, maximum: 60000, default: 500 },
              rise: { type: 'integer', minimum: 1, maximum: 100, default: 2 },
              fall: { type: 'integer', minimum: 1, maximum: 100, default: 3 },
            },
          },
        },
      },
    },
    services: {
      type: 'array',
      default: [],
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'pool'],
        properties: {
          name: { type: 'string', minLength: 1 },
          pool: { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1 },
          answers: { type: 'integer', minimum: 1, maximum: 16, default: 1 },
          ttl: {
            type: 'object',
            additionalProperties: false,
            default: {},
            properties: {
              min: { type: 'integer', minimum: 0, maximum: 86400, default: 10 },
              max: { type: 'integer', minimum: 0, maximum: 86400, default: 60 },
            },
          },
          allDown: { enum: ['best', 'all', 'static'], default: 'best' },
        },
      },
    },
    map: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        file: { type: 'string', minLength: 1 },
        ipv4Prefix: { type: 'integer', minimum: 8, maximum: 32, default: 24 },
        ipv6Prefix: { type: 'integer', minimum: 16, maximum: 128, default: 48 },
        tolerancePct: { type: 'number', minimum: 0, maximum: 1000, default: 10 },
        staleAfterSec: { type: 'integer', minimum: 1, default: 3600 },
      },
    },
    geo: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: { city: { type: 'string', minLength: 1 }, asn: { type: 'string', minLength: 1 } },
    },
    log: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        level: { enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'info' },
        queries: { type: 'boolean', default: false },
        querySampleRate: { type: 'number', minimum: 0, maximum: 1, default: 1 },
      },
    },
    api: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        listen: { anyOf: [{ type: 'string', pattern: listenPattern }, { const: '' }], default: '127.0.0.1:8053' },
        tokens: {
          type: 'array',
          default: [],
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['name', 'token', 'roles'],
            properties: {
              name: { type: 'string', pattern: idPattern },
              // 16 characters at least: a short bearer token can be guessed.
              token: { type: 'string', minLength: 16, maxLength: 512 },
              roles: { type: 'array', items: { enum: ['ingest', 'operate', 'read'] }, minItems: 1, uniqueItems: true },
            },
          },
        },
        openPaths: { type: 'array', items: { enum: ['/healthz', '/readyz', '/metrics', '/openapi.json'] }, default: ['/healthz', '/readyz', '/metrics', '/openapi.json'] },
        allow: { type: 'array', items: { type: 'string' }, default: ['0.0.0.0/0', '::/0'] },
        bodyLimitBytes: { type: 'integer', minimum: 1024, maximum: 268435456, default: 8388608 },
        rateLimitPerMinute: { type: 'integer', minimum: 0, default: 600 },
      },
    },
    measure: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        compileIntervalSec: { type: 'number', exclusiveMinimum: 0, maximum: 86400, default: 10 },
        halfLifeSec: { type: 'number', exclusiveMinimum: 0, default: 1800 },
        minSamples: { type: 'integer', minimum: 1, default: 5 },
        maxAgeSec: { type: 'integer', minimum: 1, default: 3600 },
        hysteresisPct: { type: 'number', minimum: 0, maximum: 1000, default: 10 },
      },
    },
    health: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        passive: {
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: {
            failurePct: { type: 'number', exclusiveMinimum: 0, maximum: 100, default: 50 },
            minReports: { type: 'integer', minimum: 1, default: 10 },
            windowSec: { type: 'integer', minimum: 1, maximum: 86400, default: 60 },
          },
        },
        overloadWatermark: { type: 'number', exclusiveMinimum: 0, maximum: 100, default: 0.9 },
        startupWaitMs: { type: 'integer', minimum: 0, maximum: 600000, default: 5000 },
      },
    },
    state: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: { dir: { type: 'string', minLength: 1, default: 'state' } },
    },
    store: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        kind: { enum: ['local', 'redis'], default: 'local' },
        url: { type: 'string', pattern: '^rediss?://', default: 'redis://127.0.0.1:6379/0' },
        keyPrefix: { type: 'string', maxLength: 128, default: 'steerdns:' },
        timeoutMs: { type: 'integer', minimum: 50, maximum: 60000, default: 2000 },
        lockTtlMs: { type: 'integer', minimum: 500, maximum: 600000, default: 10000 },
        pollIntervalMs: { type: 'integer', minimum: 100, maximum: 3600000, default: 5000 },
      },
    },
    role: { enum: ['all', 'dns', 'control'], default: 'all' },
  },
} as const
