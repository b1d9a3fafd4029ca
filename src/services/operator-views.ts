/**
 * The API's views of operator state (overrides, targets, audit), shared by
 * the local operator service and the shared-store one: the same state gives
 * the same JSON whichever mode a node runs in. Pure: no I/O, clock passed in.
 */
import type { AuditEntry, OverrideView, TargetView } from '../control/index.js'
import { createTargetStates, formatAddress } from '../steering/index.js'
import type { SteeringSetup, SteeringView } from '../steering/index.js'
import type { AuditRecord, StoredOverride } from './operator-events.js'

/** What the target view reads beyond the steering snapshot. */
export interface OperatorFacts {
  readonly admin: ReadonlyMap<string, { readonly changedAtMs: number }>
  readonly adminBy: ReadonlyMap<string, string>
  readonly load: ReadonlyMap<string, { readonly value: number }>
}

export function describeOverride(o: StoredOverride): OverrideView {
  const r = o.record
  const common = { id: r.id, kind: r.kind, reason: r.reason, expiresAt: iso(r.expiresAtMs), createdAt: iso(o.createdAtMs) as string, createdBy: o.createdBy }
  return r.kind === 'pin' ? { ...common, prefix: r.prefix, targets: r.targets } : { ...common, target: r.target, biasMs: r.biasMs }
}

/** Target `index` as GET /v1/targets shows it, from the snapshot DNS answers from. */
export function describeTarget(setup: SteeringSetup, view: SteeringView, facts: OperatorFacts, index: number, nowMs: number): TargetView {
  const target = setup.targets[index]
  const status = (view.targetStates ?? createTargetStates(setup)).describe(index, nowMs)
  const id = status.id
  return {
    id,
    site: target?.site ?? '',
    ipv4: (target?.ipv4 ?? []).map(formatAddress),
    ipv6: (target?.ipv6 ?? []).map(formatAddress),
    location: { lat: target?.latitude ?? 0, lon: target?.longitude ?? 0 },
    health: status.degraded ? 'degraded' : status.health,
    admin: {
      state: status.admin,
      reason: status.reason,
      expiresAt: iso(status.expiresAtMs),
      changedAt: iso(facts.admin.get(id)?.changedAtMs),
      by: facts.admin.has(id) ? facts.adminBy.get(id) : undefined,
    },
    serving: status.serving,
    weight: status.weight,
    capacity: status.capacity,
    load: facts.load.get(id)?.value,
  }
}

/** The newest `limit` entries (at or after `since`, RFC 3339, when given), oldest first. */
export function describeAudit(audit: readonly AuditRecord[], limit: number, since: string | undefined): AuditEntry[] {
  const sinceMs = since === undefined ? undefined : Date.parse(since)
  const entries = sinceMs === undefined || Number.isNaN(sinceMs) ? audit : audit.filter((e) => e.atMs >= sinceMs)
  return entries.slice(-limit).map((e) => ({ at: iso(e.atMs) as string, by: e.by, address: e.address, action: e.action, subject: e.subject, reason: e.reason, change: e.change }))
}

export function iso(ms: number | undefined): string | undefined {
  return ms === undefined || !Number.isFinite(ms) ? undefined : new Date(ms).toISOString()
}
