/**
 * What the HTTP control plane needs from the rest of the server. main.ts
 * builds these from the steering state, the measurement pipeline and the
 * state directory; control/ only translates HTTP to these calls and back, so
 * every route can be tested with app.inject() and fakes.
 *
 * Methods that change state resolve only once the change is durable (written
 * to the state directory) and published to the data plane; they throw
 * ApiProblem for a request the caller can fix.
 */

/** Who made a request: the token's configured name, or "anonymous" on an open path. */
export interface Caller {
  readonly name: string
  readonly address: string
}

export interface RejectedReport {
  readonly index: number
  readonly reason: string
}

export interface MeasurementsService {
  /** Validates each report on its own; the accepted ones are durable when this resolves. */
  ingest(body: unknown, caller: Caller): Promise<{ accepted: number; rejected: readonly RejectedReport[] }>
}

export interface MapSummary {
  readonly version: number
  readonly entries: number
  /** RFC 3339, when known. */
  readonly generatedAt: string | undefined
  /** Seconds since generatedAt, when known. */
  readonly ageSec: number | undefined
  /** Entries by family, and how many of them are older than map.staleAfterSec. */
  readonly coverage: { readonly ipv4Entries: number; readonly ipv6Entries: number; readonly staleEntries: number }
  /** Where the current map came from. */
  readonly source: 'compiled' | 'imported' | 'file' | 'state' | 'empty'
}

export interface MapService {
  summary(): MapSummary
  /** The current map in the `--map` JSON form. */
  exportJson(): unknown
  /** Replaces the map with one computed elsewhere (same JSON as `--map`). */
  importJson(body: unknown, caller: Caller): Promise<MapSummary>
}

export interface TargetView {
  readonly id: string
  readonly site: string
  readonly ipv4: readonly string[]
  readonly ipv6: readonly string[]
  /** Where the target is (the configured location), for maps. */
  readonly location: { readonly lat: number; readonly lon: number }
  /** unknown | up | down | degraded (health checks); "unknown" until checks exist. */
  readonly health: string
  readonly admin: { readonly state: 'up' | 'down' | 'drain'; readonly reason: string | undefined; readonly expiresAt: string | undefined; readonly changedAt: string | undefined; readonly by: string | undefined }
  /** True when the target receives new clients. */
  readonly serving: boolean
  /** Load-sharing weight: the admin weight when set, else the configured capacity. */
  readonly weight: number
  readonly capacity: number
  /** Last reported load (0..1 of capacity), when reported. */
  readonly load: number | undefined
}

export interface TargetPatch {
  readonly state?: 'up' | 'down' | 'drain'
  readonly weight?: number | null
  readonly load?: number
  readonly reason?: string
  readonly expiresAt?: string | null
}

export interface TargetsService {
  list(): readonly TargetView[]
  /** Undefined for an unknown id. */
  patch(id: string, patch: TargetPatch, caller: Caller): Promise<TargetView | undefined>
}

export interface OverrideView {
  readonly id: string
  readonly kind: 'pin' | 'bias'
  readonly prefix?: string
  readonly targets?: readonly string[]
  readonly target?: string
  readonly biasMs?: number
  readonly reason: string
  readonly expiresAt: string | undefined
  readonly createdAt: string
  readonly createdBy: string
}

export interface OverridesService {
  list(): readonly OverrideView[]
  create(body: unknown, caller: Caller): Promise<OverrideView>
  /** False when no override has that id. */
  remove(id: string, caller: Caller): Promise<boolean>
}

export interface ExplainQuery {
  readonly name: string
  readonly client?: string | undefined
  readonly resolver?: string | undefined
  readonly type?: 'A' | 'AAAA' | undefined
}

export interface ExplainService {
  explain(query: ExplainQuery): { answer: readonly string[]; scopePrefixLen: number; ttlSec: number; trace: unknown }
}

export interface AuditEntry {
  readonly at: string
  readonly by: string
  readonly address: string
  readonly action: string
  readonly subject: string
  readonly reason: string | undefined
  readonly change: unknown
}

export interface AuditService {
  /** Newest last; at most `limit` entries. */
  list(opts: { limit: number; since?: string | undefined }): readonly AuditEntry[]
}

export interface ProbeService {
  /** Probnik recipe for a client address. */
  recipe(client: string): unknown
}

export interface HealthService {
  /** Ready when zones and the map are loaded; reasons list what is not (and the map's age). */
  ready(): { ready: boolean; reasons: readonly string[]; mapVersion: number; mapAgeSec: number | undefined }
}

export interface MetricsService {
  readonly contentType: string
  text(): Promise<string>
}

export interface DecisionsService {
  /** The latest steering decisions, newest first. */
  recent(limit: number): readonly unknown[]
}

export interface ControlServices {
  readonly measurements: MeasurementsService
  readonly map: MapService
  readonly targets: TargetsService
  readonly overrides: OverridesService
  readonly explain: ExplainService
  readonly audit: AuditService
  readonly probe: ProbeService
  readonly health: HealthService
  readonly metrics: MetricsService
  readonly decisions: DecisionsService
}
