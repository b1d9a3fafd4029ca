/**
 * How long a steered answer may be reused from the answer cache. Events
 * (health, admin, overrides, a new map) swap the steering snapshot and end
 * reuse at once. What changes with time alone is bounded here: the expiry
 * of an override or an admin record is exact (the earliest one after now in
 * the snapshot); the rest — a map entry going stale (staleAfterSec, an hour
 * by default), the TTL rising again after the ttl.max window that follows a
 * change — may lag by up to STEERED_REUSE_MS, which only keeps a lower TTL
 * or a soon-stale answer a little longer.
 */
import type { SteeringView } from '../steering/index.js'
import { STEERED_REUSE_MS } from './answer-cache.js'

/** Until when answers decided from `view` at `nowMs` may be reused; memoized per snapshot. */
export function createReuseClock(): (view: SteeringView, nowMs: number) => number {
  let lastView: SteeringView | undefined
  // The earliest expiry after the time it was computed: valid for any time before it.
  let nextExpiryMs = 0
  return (view, nowMs) => {
    if (view !== lastView || nowMs >= nextExpiryMs) {
      lastView = view
      nextExpiryMs = earliestExpiryAfter(view, nowMs)
    }
    return Math.min(nowMs + STEERED_REUSE_MS, nextExpiryMs)
  }
}

/** The earliest time after `nowMs` at which an override or admin record of `view` expires; Infinity when none does. */
export function earliestExpiryAfter(view: SteeringView, nowMs: number): number {
  let next = Infinity
  for (const r of view.overrides?.records ?? []) {
    if (r.expiresAtMs !== undefined && r.expiresAtMs > nowMs && r.expiresAtMs < next) next = r.expiresAtMs
  }
  const states = view.targetStates
  if (states) {
    for (let t = 0; t < view.setup.targets.length; t++) {
      const expires = states.adminRecord(t, nowMs)?.expiresAtMs
      if (expires !== undefined && expires > nowMs && expires < next) next = expires
    }
  }
  return next
}
