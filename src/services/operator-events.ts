/**
 * Operator changes as events: the journal `operator` holds one record per
 * change (who, from where, when, why, what), and the current overrides,
 * target admin states, reported loads and the audit log are what replaying
 * them gives. One journal, so a change and its audit entry are durable
 * together or not at all. Pure: no I/O, no clock; the service does both.
 */
import type { OverrideRecord, TargetAdminRecord } from '../steering/index.js'

interface EventBase {
  /** ms since the epoch. */
  readonly at: number
  /** Token name. */
  readonly by: string
  readonly address: string
}

export type OperatorEvent =
  | (EventBase & { readonly type: 'override-add'; readonly record: OverrideRecord })
  | (EventBase & { readonly type: 'override-remove'; readonly id: string })
  | (EventBase & {
      readonly type: 'target-patch'
      readonly id: string
      /** The new admin record; null clears it (back to up at capacity). Absent: unchanged. */
      readonly admin?: TargetAdminRecord | null
      readonly load?: number
    })
  | (EventBase & { readonly type: 'map-import'; readonly version: number; readonly entries: number })

export interface StoredOverride {
  readonly record: OverrideRecord
  readonly createdAtMs: number
  readonly createdBy: string
}

export interface AuditRecord {
  readonly atMs: number
  readonly by: string
  readonly address: string
  readonly action: string
  readonly subject: string
  readonly reason: string | undefined
  readonly change: unknown
}

/** What a checkpoint stores. */
export interface OperatorSnapshot {
  readonly format: 'steerdns-operator/1'
  readonly overrides: readonly StoredOverride[]
  readonly admin: Readonly<Record<string, TargetAdminRecord>>
  /** Token that last set each admin record. */
  readonly adminBy: Readonly<Record<string, string>>
  readonly load: Readonly<Record<string, { readonly value: number; readonly atMs: number }>>
  readonly audit: readonly AuditRecord[]
  readonly nextOverrideNumber: number
}

/** Audit entries kept in memory and in checkpoints; older ones leave with the journal segments a checkpoint deletes. */
export const AUDIT_KEEP = 10_000

/** Mutable state built by applying events in journal order. */
export class OperatorState {
  readonly overrides = new Map<string, StoredOverride>()
  readonly admin = new Map<string, TargetAdminRecord>()
  readonly adminBy = new Map<string, string>()
  readonly load = new Map<string, { value: number; atMs: number }>()
  audit: AuditRecord[] = []
  /** Override ids are "ovr-N"; N never repeats, even after a delete. */
  nextOverrideNumber = 1

  static restore(snapshot: OperatorSnapshot | undefined): OperatorState {
    const state = new OperatorState()
    if (!snapshot) return state
    for (const o of snapshot.overrides) state.overrides.set(o.record.id, o)
    for (const [id, record] of Object.entries(snapshot.admin)) state.admin.set(id, record)
    for (const [id, by] of Object.entries(snapshot.adminBy)) state.adminBy.set(id, by)
    for (const [id, load] of Object.entries(snapshot.load)) state.load.set(id, load)
    state.audit = [...snapshot.audit]
    state.nextOverrideNumber = snapshot.nextOverrideNumber
    return state
  }

  apply(event: OperatorEvent): void {
    switch (event.type) {
      case 'override-add': {
        this.overrides.set(event.record.id, { record: event.record, createdAtMs: event.at, createdBy: event.by })
        const n = /^ovr-(\d+)$/.exec(event.record.id)
        if (n) this.nextOverrideNumber = Math.max(this.nextOverrideNumber, Number(n[1]) + 1)
        this.record(event, 'override.create', event.record.id, event.record.reason, event.record)
        break
      }
      case 'override-remove': {
        const removed = this.overrides.get(event.id)
        this.overrides.delete(event.id)
        this.record(event, 'override.delete', event.id, undefined, removed?.record ?? null)
        break
      }
      case 'target-patch': {
        if (event.admin === null) this.admin.delete(event.id)
        else if (event.admin !== undefined) this.admin.set(event.id, event.admin)
        if (event.admin !== undefined) this.adminBy.set(event.id, event.by)
        if (event.load !== undefined) this.load.set(event.id, { value: event.load, atMs: event.at })
        const change = { ...(event.admin !== undefined ? { admin: event.admin } : {}), ...(event.load !== undefined ? { load: event.load } : {}) }
        this.record(event, 'target.patch', event.id, event.admin?.reason, change)
        break
      }
      case 'map-import':
        this.record(event, 'map.import', `version ${event.version}`, undefined, { version: event.version, entries: event.entries })
        break
    }
  }

  /** Expired overrides are left out: nothing will ever read them again. */
  snapshot(nowMs: number): OperatorSnapshot {
    return {
      format: 'steerdns-operator/1',
      overrides: [...this.overrides.values()].filter((o) => o.record.expiresAtMs === undefined || o.record.expiresAtMs > nowMs),
      admin: Object.fromEntries(this.admin),
      adminBy: Object.fromEntries(this.adminBy),
      load: Object.fromEntries(this.load),
      audit: this.audit,
      nextOverrideNumber: this.nextOverrideNumber,
    }
  }

  private record(event: OperatorEvent, action: string, subject: string, reason: string | undefined, change: unknown): void {
    this.audit.push({ atMs: event.at, by: event.by, address: event.address, action, subject, reason, change })
    // Trim in chunks: one splice per thousand changes, not one per change.
    if (this.audit.length > AUDIT_KEEP + 1000) this.audit = this.audit.slice(-AUDIT_KEEP)
  }
}
