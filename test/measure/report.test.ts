// Measurement batches: each report judged on its own with a reason naming the
// field, clients reduced to the configured prefix at once, Probnik reports.
import t from 'tap'
import { formatClientPrefix } from '../../src/measure/client-prefix.js'
import { MeasureErrorCode } from '../../src/measure/measure-error.js'
import { parseRfc3339Ms, validateMeasurementBatch } from '../../src/measure/report.js'
import type { AcceptedReport, BatchContext } from '../../src/measure/report.js'
import { formatAddress } from '../../src/steering/index.js'

const NOW = Date.parse('2026-01-02T03:04:05Z')
const ids = ['sea-1', 'ord-1', 'iad-1']
const ctx: BatchContext = {
  resolveTarget: (id) => (ids.includes(id) ? ids.indexOf(id) : undefined),
  nowMs: NOW,
  ipv4Prefix: 24,
  ipv6Prefix: 48,
  maxAgeSec: 3600,
}

function one(report: unknown, c: BatchContext = ctx): { accepted: readonly AcceptedReport[]; reasons: string[] } {
  const v = validateMeasurementBatch({ reports: [report] }, c)
  return { accepted: v.reports, reasons: v.rejected.map((r) => r.reason) }
}

t.test('a good report: client reduced to its prefix, target resolved, time read', async (t) => {
  const v = validateMeasurementBatch(
    { reports: [{ client: '198.51.100.77', resolver: '192.0.2.53', target: 'ord-1', rttMs: 12.5, at: '2026-01-02T03:00:00Z' }] },
    ctx,
  )
  t.strictSame(v.rejected, [])
  t.equal(v.reports.length, 1)
  const r = v.reports[0] as AcceptedReport
  t.equal(formatClientPrefix(r.client), '198.51.100.0/24')
  t.equal(formatAddress(r.resolver as Uint8Array), '192.0.2.53')
  t.equal(r.target, 1)
  t.equal(r.rttMs, 12.5)
  t.equal(r.atMs, Date.parse('2026-01-02T03:00:00Z'))
  t.equal(r.ok, true)
})

t.test('client reduction: addresses and long prefixes cut, short prefixes kept, mapped IPv6 is IPv4', async (t) => {
  const cases: [string, string][] = [
    ['198.51.100.77', '198.51.100.0/24'],
    ['198.51.100.77/32', '198.51.100.0/24'],
    ['198.51.100.77/28', '198.51.100.0/24'],
    ['198.51.100.0/24', '198.51.100.0/24'],
    ['198.51.101.9/23', '198.51.100.0/23'], // shorter: kept as given, host bits cleared
    ['10.0.0.0/8', '10.0.0.0/8'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1::/48'],
    ['2001:db8:1:ff00::/56', '2001:db8:1::/48'],
    ['2001:db8::/32', '2001:db8::/32'],
    ['::ffff:198.51.100.77', '198.51.100.0/24'],
    ['::ffff:198.51.100.0/120', '198.51.100.0/24'],
  ]
  for (const [client, want] of cases) {
    const { accepted, reasons } = one({ client, target: 'sea-1', rttMs: 10 })
    t.strictSame(reasons, [], client)
    t.equal(formatClientPrefix((accepted[0] as AcceptedReport).client), want, client)
  }
  // Other configured lengths are honoured.
  const { accepted } = one({ client: '198.51.100.77', target: 'sea-1', rttMs: 10 }, { ...ctx, ipv4Prefix: 22 })
  t.equal(formatClientPrefix((accepted[0] as AcceptedReport).client), '198.51.100.0/22')
  // A mapped resolver is stored as IPv4.
  const mapped = one({ client: '198.51.100.7', resolver: '::ffff:192.0.2.53', target: 'sea-1', rttMs: 10 })
  t.equal(formatAddress((mapped.accepted[0] as AcceptedReport).resolver as Uint8Array), '192.0.2.53')
})

t.test('each bad field is named by its path, with the report index', async (t) => {
  const reports: unknown[] = [
    { client: '198.51.100.7', target: 'sea-1', rttMs: 10 }, // 0 good
    { client: '198.51.100.7', target: 'sea-1', rttMs: 0 }, // 1
    { client: '198.51.100.7', target: 'sea-1', rttMs: 60001 }, // 2
    { client: '198.51.100.7', target: 'sea-1', rttMs: '12' }, // 3
    { client: '198.51.100.7', target: 'nowhere', rttMs: 10 }, // 4
    { client: '198.51.100.999', target: 'sea-1', rttMs: 10 }, // 5
    { client: '198.51.100.0/33', target: 'sea-1', rttMs: 10 }, // 6
    { target: 'sea-1', rttMs: 10 }, // 7
    { client: '198.51.100.7', resolver: '192.0.2.0/24', target: 'sea-1', rttMs: 10 }, // 8
    { client: '198.51.100.7', target: 'sea-1', rttMs: 10, at: 'yesterday' }, // 9
    { client: '198.51.100.7', target: 'sea-1', rttMs: 10, at: '2026-01-02T03:05:06Z' }, // 10: 61 s ahead
    { client: '198.51.100.7', target: 'sea-1', rttMs: 10, at: '2026-01-02T02:04:04Z' }, // 11: 3601 s old
    { client: '198.51.100.7', target: 'sea-1', rttMs: 10, ok: 'yes' }, // 12
    'not an object', // 13
    { client: '0.0.0.0/0', target: 'sea-1', rttMs: 10 }, // 14
    { client: '198.51.100.7', rttMs: -1 }, // 15: two problems
    { client: '198.51.100.7', target: 'sea-1', rttMs: Number.NaN }, // 16
    { client: '198.51.100.7', target: 'sea-1', rttMs: 10, at: '2026-01-02T03:05:05Z' }, // 17: exactly 60 s ahead: fine
  ]
  const v = validateMeasurementBatch({ reports }, ctx)
  t.equal(v.reports.length, 2)
  t.strictSame(v.rejected, [
    { index: 1, reason: 'reports[1].rttMs: must be a number > 0 and <= 60000' },
    { index: 2, reason: 'reports[2].rttMs: must be a number > 0 and <= 60000' },
    { index: 3, reason: 'reports[3].rttMs: must be a number > 0 and <= 60000' },
    { index: 4, reason: 'reports[4].target: unknown target "nowhere"' },
    { index: 5, reason: 'reports[5].client: must be an IP address or prefix, not "198.51.100.999"' },
    { index: 6, reason: 'reports[6].client: prefix length must be 0-32, not "33"' },
    { index: 7, reason: 'reports[7].client: is required' },
    { index: 8, reason: 'reports[8].resolver: must be an IP address, not "192.0.2.0/24"' },
    { index: 9, reason: 'reports[9].at: must be an RFC 3339 time such as "2026-01-02T03:04:05Z"' },
    { index: 10, reason: 'reports[10].at: more than 60 s in the future' },
    { index: 11, reason: 'reports[11].at: older than maxAgeSec (3600 s); it could never count' },
    { index: 12, reason: 'reports[12].ok: must be true or false' },
    { index: 13, reason: 'reports[13]: must be an object' },
    { index: 14, reason: 'reports[14].client: prefix length must be at least 8 for IPv4, not 0' },
    { index: 15, reason: 'reports[15].target: is required; reports[15].rttMs: must be a number > 0 and <= 60000' },
    { index: 16, reason: 'reports[16].rttMs: must be a number > 0 and <= 60000' },
  ])
})

t.test('a failed probe needs no RTT and carries none', async (t) => {
  const { accepted, reasons } = one({ client: '198.51.100.7', target: 'iad-1', ok: false })
  t.strictSame(reasons, [])
  t.strictSame({ ok: accepted[0]?.ok, rttMs: accepted[0]?.rttMs, target: accepted[0]?.target }, { ok: false, rttMs: 0, target: 2 })
  const withRtt = one({ client: '198.51.100.7', target: 'iad-1', ok: false, rttMs: 'timeout' })
  t.strictSame(withRtt.reasons, [], 'a failed probe\'s rttMs is not read')
})

t.test('limits from the context', async (t) => {
  const c = { ...ctx, maxRttMs: 1000, maxFutureSkewSec: 0 }
  t.strictSame(one({ client: '198.51.100.7', target: 'sea-1', rttMs: 1001 }, c).reasons, ['reports[0].rttMs: must be a number > 0 and <= 1000'])
  t.strictSame(one({ client: '198.51.100.7', target: 'sea-1', rttMs: 1, at: '2026-01-02T03:04:06Z' }, c).reasons, ['reports[0].at: more than 0 s in the future'])
  t.strictSame(one({ client: '198.51.100.7/12', target: 'sea-1', rttMs: 1 }, { ...ctx, minIpv4Prefix: 16 }).reasons, [
    'reports[0].client: prefix length must be at least 16 for IPv4, not 12',
  ])
})

t.test('a batch that is not one throws a coded error; too many samples too', async (t) => {
  t.throws(() => validateMeasurementBatch('x', ctx), { code: MeasureErrorCode.BATCH_INVALID })
  t.throws(() => validateMeasurementBatch(null, ctx), { code: MeasureErrorCode.BATCH_INVALID })
  t.throws(() => validateMeasurementBatch({ reports: {} }, ctx), { code: MeasureErrorCode.BATCH_INVALID, problems: [{ path: 'reports' }] })
  const report = { client: '198.51.100.7', target: 'sea-1', rttMs: 10 }
  t.equal(validateMeasurementBatch({ reports: [report, report, report] }, { ...ctx, maxBatchSize: 3 }).reports.length, 3)
  t.throws(() => validateMeasurementBatch({ reports: [report, report, report, report] }, { ...ctx, maxBatchSize: 3 }), {
    code: MeasureErrorCode.BATCH_TOO_LARGE,
  })
  t.strictSame(validateMeasurementBatch({ reports: [] }, ctx), { reports: [], rejected: [] })
})

// What Probnik's PulseProbe hands its reporter: the recipe ctx echoed, one entry per target, one sample per pulse.
const probnikReport = {
  name: 'steerdns',
  type: 'http_get',
  ctx: { client: '198.51.100.0/24', ts: NOW - 5000, seed: 7, resolver: '192.0.2.53' },
  data: [
    {
      name: 'sea-1',
      target: 'http://192.0.2.11/probe',
      data: [
        { start: 1200.5, d: 31.5, sc: 200, size: 100, ttfb: 30 },
        { start: 2300.1, d: 12.25, sc: 200, size: 100, ttfb: 11 },
      ],
    },
    {
      name: 'ord-1',
      target: 'http://192.0.2.12/probe',
      data: [
        { start: 1201, d: 0, sc: 0 }, // timed out: a failure
        { start: 2301, d: 40, sc: 503 }, // answered but broken: a failure
        { start: 3301, d: 'x', sc: 200 }, // bad duration
      ],
    },
    { name: 'lax-9', target: 'http://192.0.2.99/probe', data: [{ start: 1, d: 5, sc: 200 }] },
    { name: 'iad-1', target: 'http://192.0.2.13/probe', data: [{ start: 1, d: 5 }] },
  ],
}

t.test('Probnik reports: pulses become samples, failures by status, reasons with nested paths', async (t) => {
  const v = validateMeasurementBatch({ reports: [{ client: '203.0.113.9', target: 'iad-1', rttMs: 20 }, probnikReport] }, ctx)
  t.strictSame(
    v.reports.map((r) => [formatClientPrefix(r.client), r.target, r.rttMs, r.ok, r.atMs, r.resolver ? formatAddress(r.resolver) : undefined]),
    [
      ['203.0.113.0/24', 2, 20, true, NOW, undefined],
      ['198.51.100.0/24', 0, 31.5, true, NOW, '192.0.2.53'],
      ['198.51.100.0/24', 0, 12.25, true, NOW, '192.0.2.53'],
      ['198.51.100.0/24', 1, 0, false, NOW, '192.0.2.53'],
      ['198.51.100.0/24', 1, 0, false, NOW, '192.0.2.53'],
    ],
  )
  t.strictSame(v.rejected, [
    { index: 1, reason: 'reports[1].data[1].data[2].d: must be a number > 0 and <= 60000' },
    { index: 1, reason: 'reports[1].data[2].name: unknown target "lax-9"' },
    { index: 1, reason: 'reports[1].data[3].data[0].sc: must be an HTTP status code (0 when the request failed)' },
  ])
})

t.test('a bare Probnik report is a batch of one; its client may come from the peer address', async (t) => {
  const bare = validateMeasurementBatch(probnikReport, ctx)
  t.equal(bare.reports.length, 4)
  t.equal(bare.rejected[0]?.reason, 'data[1].data[2].d: must be a number > 0 and <= 60000')
  const noClient = { ...probnikReport, ctx: { ts: 1 } }
  t.strictSame(validateMeasurementBatch(noClient, ctx).rejected, [{ index: 0, reason: 'ctx.client: is required (the recipe ctx carries it)' }])
  const fromPeer = validateMeasurementBatch(noClient, { ...ctx, peerAddress: '2001:db8:7:8::1' })
  t.equal(formatClientPrefix((fromPeer.reports[0] as AcceptedReport).client), '2001:db8:7::/48')
  t.strictSame(validateMeasurementBatch({ ...probnikReport, data: [] }, ctx).rejected, [{ index: 0, reason: 'data: has no targets' }])
  t.throws(() => validateMeasurementBatch(probnikReport, { ...ctx, maxBatchSize: 5 }), { code: MeasureErrorCode.BATCH_TOO_LARGE })
})

t.test('RFC 3339 times', async (t) => {
  const cases: [string, number | undefined][] = [
    ['2026-01-02T03:04:05Z', Date.UTC(2026, 0, 2, 3, 4, 5)],
    ['2026-01-02t03:04:05z', Date.UTC(2026, 0, 2, 3, 4, 5)],
    ['2026-01-02 03:04:05Z', Date.UTC(2026, 0, 2, 3, 4, 5)],
    ['2026-01-02T03:04:05.678Z', Date.UTC(2026, 0, 2, 3, 4, 5, 678)],
    ['2026-01-02T03:04:05.6789123Z', Date.UTC(2026, 0, 2, 3, 4, 5, 678)],
    ['2026-01-02T05:04:05+02:00', Date.UTC(2026, 0, 2, 3, 4, 5)],
    ['2026-01-01T22:04:05-05:00', Date.UTC(2026, 0, 2, 3, 4, 5)],
    ['2026-12-31T23:59:60Z', Date.UTC(2026, 11, 31, 23, 59, 59, 999)],
    ['2026-02-30T00:00:00Z', undefined],
    ['2026-13-01T00:00:00Z', undefined],
    ['2026-01-02T24:00:00Z', undefined],
    ['2026-01-02T03:04:05', undefined],
    ['2026-01-02', undefined],
    ['1767323045000', undefined],
  ]
  for (const [text, want] of cases) t.equal(parseRfc3339Ms(text), want, text)
})
