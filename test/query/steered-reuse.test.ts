/** How long a steered answer may be reused: 60 s at most, and never past the snapshot's next override or admin expiry. */
import t from 'tap'
import { STEERED_REUSE_MS } from '../../src/query/index.js'
import { createReuseClock, earliestExpiryAfter } from '../../src/query/steered-reuse.js'
import type { SteeringView } from '../../src/steering/index.js'

const T0 = 1_800_000_000_000

function view(overrideExpiries: (number | undefined)[], adminExpiries: (number | undefined)[]): SteeringView {
  return {
    setup: { targets: adminExpiries.map((_, i) => ({ id: `t${i}` })) },
    overrides: { records: overrideExpiries.map((expiresAtMs) => ({ expiresAtMs })) },
    targetStates: { adminRecord: (t: number, nowMs: number) => (adminExpiries[t] !== undefined && nowMs < (adminExpiries[t] as number) ? { expiresAtMs: adminExpiries[t] } : undefined) },
  } as unknown as SteeringView
}

t.test('the earliest expiry after now, of overrides and admin records; past ones do not count', async (t) => {
  t.equal(earliestExpiryAfter(view([], []), T0), Infinity)
  t.equal(earliestExpiryAfter(view([T0 - 1, T0 + 5000, undefined], []), T0), T0 + 5000, 'an already expired override is ignored')
  t.equal(earliestExpiryAfter(view([T0 + 5000], [undefined, T0 + 2000]), T0), T0 + 2000, 'an admin record expiring sooner')
})

t.test('the clock: 60 s at most, the next expiry when sooner, recomputed once it passes', async (t) => {
  const clock = createReuseClock()
  const v = view([T0 + 1000, T0 + 90_000], [])
  t.equal(clock(v, T0), T0 + 1000, 'the override expiring in 1 s bounds it')
  t.equal(clock(v, T0 + 500), T0 + 1000)
  t.equal(clock(v, T0 + 1000), T0 + 1000 + STEERED_REUSE_MS, 'after it: 60 s (the next expiry is 89 s away)')
  t.equal(clock(v, T0 + 40_000), T0 + 90_000, 'the second expiry bounds it when it is nearer than 60 s')
  t.equal(clock(view([], []), T0), T0 + STEERED_REUSE_MS, 'another snapshot is computed afresh')
})
