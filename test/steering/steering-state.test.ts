/**
 * The snapshot holder: every setter publishes a new view by reference, a view
 * held across a swap keeps deciding as before (the query path holds one per
 * query), views are frozen, and snapshots compiled for another setup are
 * refused rather than steering to the wrong target indices.
 */
import t from 'tap'
import { greatCircleKm } from '../../src/geo/index.js'
import {
  buildSteeringSetup,
  compileOverrides,
  createSteeringState,
  createTargetStates,
  emptyLatencyMap,
  OverrideErrorCode,
  parseClientKey,
  parseMapJson,
  select,
} from '../../src/steering/index.js'
import type { SteeringSetupSpec, SteeringView } from '../../src/steering/index.js'

const spec: SteeringSetupSpec = {
  targets: ['sea-1', 'ord-1'].map((id) => ({ id, site: id, ipv4: ['192.0.2.1'], ipv6: [], location: { lat: 0, lon: 0 }, capacity: 100, tags: [] })),
  services: [{ name: 'api.example.test', pool: ['sea-1', 'ord-1'], answers: 1, ttl: { min: 10, max: 60 }, allDown: 'best' }],
  map: { ipv4Prefix: 24, ipv6Prefix: 48, tolerancePct: 10, staleAfterSec: 3600 },
}
const setup = buildSteeringSetup(spec)
const service = setup.services.get('api.example.test')
if (!service) throw new Error('service missing')
const NOW_MS = Date.parse('2026-11-26T12:00:00Z')
const key = parseClientKey('198.51.100.0/24', 'ecs')
const map = parseMapJson({ version: 1, entries: [{ prefix: '198.51.100.0/24', targets: [{ id: 'sea-1', score: 5, samples: 9 }, { id: 'ord-1', score: 50, samples: 9 }] }] }, (id) =>
  setup.targetIndex.get(id),
)
const answer = (view: SteeringView) => {
  const d = select(service, key, 4, view, NOW_MS)
  return `${d.rule}:${d.targets.map((i) => setup.targets[i]?.id).join(',')}`
}

t.test('setters publish new views; a held view is unchanged', async (t) => {
  const state = createSteeringState({ setup, map, geo: undefined, distanceKm: greatCircleKm })
  const held = state.current()
  t.ok(Object.isFrozen(held), 'published views are frozen')
  t.equal(answer(held), 'map:sea-1')

  state.setOverrides(compileOverrides([{ id: 'p', kind: 'pin', prefix: '198.51.100.0/24', targets: ['ord-1'], reason: 'test' }], setup, { version: 2 }))
  const pinned = state.current()
  t.not(pinned, held)
  t.equal(answer(pinned), 'override:ord-1')
  t.equal(answer(held), 'map:sea-1', 'the held view still has no pin')

  state.setTargetStates(createTargetStates(setup, new Map([['ord-1', { admin: 'down', reason: 'test', changedAtMs: 0 }]])))
  t.equal(answer(state.current()), 'map:sea-1', 'the pinned target is down: the map answers')
  t.equal(answer(pinned), 'override:ord-1', 'the view before the state change still pins')
  t.equal(state.current().overrides, pinned.overrides, 'other parts are carried over by reference')

  state.setMap(emptyLatencyMap(3))
  t.equal(state.current().targetStates?.setup, setup)
  t.equal(answer(pinned), 'override:ord-1')
})

t.test('snapshots built for another setup are refused', async (t) => {
  const other = buildSteeringSetup(spec)
  const state = createSteeringState({ setup, map, geo: undefined, distanceKm: greatCircleKm })
  const before = state.current()
  t.throws(() => state.setOverrides(compileOverrides([], other)), { code: OverrideErrorCode.SETUP_MISMATCH })
  t.throws(() => state.setTargetStates(createTargetStates(other)), { code: OverrideErrorCode.SETUP_MISMATCH })
  t.equal(state.current(), before, 'nothing published')
  t.throws(() => createSteeringState({ setup, map, geo: undefined, distanceKm: greatCircleKm, targetStates: createTargetStates(other) }), {
    code: OverrideErrorCode.SETUP_MISMATCH,
  })
})
