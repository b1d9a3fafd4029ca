// Probe recipes: the best, challengers and a little seeded exploration in
// Probnik's recipe form; cold starts; address families; and a recipe's ctx
// coming back in a Probnik report lands on the same prefix.
import t from 'tap'
import { createAggregator } from '../../src/measure/aggregator.js'
import { reduceClient } from '../../src/measure/client-prefix.js'
import type { ClientPrefix } from '../../src/measure/client-prefix.js'
import { MeasureErrorCode } from '../../src/measure/measure-error.js'
import { createRecipeMaker } from '../../src/measure/probe-recipe.js'
import type { ProbeRecipeRequest, RecipeTarget } from '../../src/measure/probe-recipe.js'
import { validateMeasurementBatch } from '../../src/measure/report.js'
import type { AcceptedReport } from '../../src/measure/report.js'
import { parseAddress } from '../../src/steering/index.js'

const NOW = Date.parse('2026-01-02T03:00:00Z')
const specs: [string, string, string[], string[]][] = [
  ['a', 'seattle', ['192.0.2.1'], ['2001:db8::a']],
  ['b', 'chicago', ['192.0.2.2'], ['2001:db8::b']],
  ['c', 'ashburn', ['192.0.2.3'], ['2001:db8::c']],
  ['d', 'london', ['192.0.2.4'], ['2001:db8::d']],
  ['e', 'são paulo', ['192.0.2.5'], []],
  ['f', 'tokyo', ['192.0.2.6'], ['2001:db8::f']],
]
const targets: RecipeTarget[] = specs.map(([id, site, v4, v6], index) => ({
  index,
  id,
  site,
  ipv4: v4.map((a) => parseAddress(a) as Uint8Array),
  ipv6: v6.map((a) => parseAddress(a) as Uint8Array),
}))
const ids = specs.map((s) => s[0])
const policy = { ipv4Prefix: 24, ipv6Prefix: 48 }

function prefix(text: string): ClientPrefix {
  const p = reduceClient(text, policy)
  if (typeof p === 'string') throw new Error(p)
  return p
}

/** An aggregator where 198.51.100/24 has a 10 ms, b 20 ms, c 30 ms counting and d with one sample. */
function measured(): ReturnType<typeof createAggregator> {
  const agg = createAggregator({ targetIds: ids, halfLifeSec: 1800, minSamples: 3, maxAgeSec: 3600, hysteresisPct: 10 })
  const client = prefix('198.51.100.7')
  const reports: AcceptedReport[] = []
  for (let i = 0; i < 3; i++) for (const [target, rttMs] of [[0, 10], [1, 20], [2, 30]] as const) reports.push({ client, resolver: undefined, target, rttMs, atMs: NOW, ok: true })
  reports.push({ client, resolver: undefined, target: 3, rttMs: 5, atMs: NOW, ok: true })
  agg.add(reports)
  agg.compile(NOW)
  return agg
}

function request(client: string, agg: ReturnType<typeof createAggregator> | undefined, extra: Partial<ProbeRecipeRequest> = {}): ProbeRecipeRequest {
  const p = prefix(client)
  return { client: p, estimates: agg?.prefixEstimates(p, NOW), targets, nowMs: NOW, seed: 42, ...extra }
}

t.test('a known prefix: its best, the next best, then exploration, in Probnik form', async (t) => {
  const make = createRecipeMaker()
  const recipe = make(request('198.51.100.7', measured()))
  t.strictSame(
    { ...recipe, targets: recipe.targets.slice(0, 3) },
    {
      name: 'steerdns',
      type: 'http_get',
      next: 0,
      pulses: 3,
      pulse_delay: 1000,
      pulse_timeout: 5000,
      ctx: { client: '198.51.100.0/24', ts: NOW, seed: 42 },
      targets: [
        { name: 'a', target: 'http://192.0.2.1/probe', ctx: { role: 'best', site: 'seattle' } },
        { name: 'b', target: 'http://192.0.2.2/probe', ctx: { role: 'challenger', site: 'chicago' } },
        { name: 'c', target: 'http://192.0.2.3/probe', ctx: { role: 'challenger', site: 'ashburn' } },
      ],
    },
  )
  t.equal(recipe.targets.length, 4)
  const explored = recipe.targets[3]
  t.equal(explored?.ctx.role, 'explore')
  t.ok(['d', 'e', 'f'].includes(explored?.name ?? ''), `explored ${explored?.name}`)
  // More challengers than count: those still gathering samples come next (d has one).
  const wide = createRecipeMaker({ challengers: 3, explore: 0 })(request('198.51.100.7', measured()))
  t.strictSame(
    wide.targets.map((x) => [x.name, x.ctx.role]),
    [
      ['a', 'best'],
      ['b', 'challenger'],
      ['c', 'challenger'],
      ['d', 'challenger'],
    ],
  )
})

t.test('the published best leads even when another scores lower (hysteresis)', async (t) => {
  const agg = measured()
  const estimates = agg.prefixEstimates(prefix('198.51.100.7'), NOW)
  t.ok(estimates)
  const recipe = createRecipeMaker({ explore: 0 })({ ...request('198.51.100.7', agg), estimates: estimates && { ...estimates, best: 1 } })
  t.strictSame(
    recipe.targets.map((x) => [x.name, x.ctx.role]),
    [
      ['b', 'best'],
      ['a', 'challenger'],
      ['c', 'challenger'],
    ],
  )
})

t.test('exploration is seeded: same seed same recipe, other seeds other picks', async (t) => {
  const make = createRecipeMaker({ explore: 2 })
  const agg = measured()
  t.strictSame(make(request('198.51.100.7', agg)), make(request('198.51.100.7', agg)))
  const picks = new Set<string>()
  for (let seed = 0; seed < 40; seed++) {
    const r = make(request('198.51.100.7', agg, { seed }))
    const explored = r.targets.filter((x) => x.ctx.role === 'explore').map((x) => x.name)
    t.equal(explored.length, 2)
    t.equal(new Set(r.targets.map((x) => x.name)).size, r.targets.length, 'no target twice')
    picks.add(explored.sort().join())
  }
  t.strictSame([...picks].sort(), ['d,e', 'd,f', 'e,f'], 'every pair of the unmeasured three comes up')
})

t.test('a new prefix: hinted targets first, then random ones up to coldStart', async (t) => {
  const make = createRecipeMaker()
  const recipe = make(request('203.0.113.9', undefined, { hint: [3, 1] }))
  t.equal(recipe.ctx.client, '203.0.113.0/24')
  t.strictSame(
    recipe.targets.slice(0, 2).map((x) => [x.name, x.ctx.role]),
    [
      ['d', 'challenger'],
      ['b', 'challenger'],
    ],
  )
  t.equal(recipe.targets.length, 4)
  t.ok(recipe.targets.slice(2).every((x) => x.ctx.role === 'explore'))
  const hinted = make(request('203.0.113.9', undefined, { hint: [5, 4, 3, 2, 1] }))
  t.strictSame(
    hinted.targets.map((x) => x.name),
    ['f', 'e', 'd', 'c', hinted.targets[4]?.name],
    'coldStart hinted targets, then one explored',
  )
  t.ok(['a', 'b'].includes(hinted.targets[4]?.name ?? ''))
})

t.test('IPv6 clients probe IPv6 addresses; targets without one, and ineligible ones, are left out', async (t) => {
  const make = createRecipeMaker({ urlTemplate: 'https://{address}:8443/probe?id={id}&site={site}', coldStart: 6 })
  const recipe = make(request('2001:db8:1:2::9', undefined, { eligible: (i) => i !== 0 }))
  t.equal(recipe.ctx.client, '2001:db8:1::/48')
  t.strictSame(recipe.targets.map((x) => x.name).sort(), ['b', 'c', 'd', 'f'])
  t.equal(recipe.targets.find((x) => x.name === 'b')?.target, 'https://[2001:db8::b]:8443/probe?id=b&site=chicago')
  const v4 = make(request('198.51.100.7', undefined))
  t.equal(v4.targets.find((x) => x.name === 'e')?.target, 'https://192.0.2.5:8443/probe?id=e&site=s%C3%A3o%20paulo')
})

t.test('a recipe\'s ctx comes back in the Probnik report and names the same prefix', async (t) => {
  const recipe = createRecipeMaker()(request('198.51.100.7', measured()))
  const report = {
    name: recipe.name,
    type: recipe.type,
    ctx: recipe.ctx,
    data: recipe.targets.map((x) => ({ name: x.name, target: x.target, data: [{ start: 1, d: 12, sc: 200 }] })),
  }
  const v = validateMeasurementBatch({ reports: [report] }, { resolveTarget: (id) => ids.indexOf(id), nowMs: NOW, maxAgeSec: 3600, ...policy })
  t.strictSame(v.rejected, [])
  t.equal(v.reports.length, recipe.targets.length)
  t.strictSame(v.reports[0]?.client, prefix('198.51.100.7'))
})

t.test('options are checked when the maker is made', async (t) => {
  t.throws(() => createRecipeMaker({ urlTemplate: 'http://example.net/probe' }), { code: MeasureErrorCode.BAD_OPTIONS, problems: [{ path: 'urlTemplate' }] })
  t.throws(() => createRecipeMaker({ pulses: 0, challengers: -1 }), {
    code: MeasureErrorCode.BAD_OPTIONS,
    problems: [{ path: 'challengers' }, { path: 'pulses' }],
  })
})
