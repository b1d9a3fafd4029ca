/**
 * Response rate limiting: budgets per (prefix, category, name), slip, window
 * and recovery, exemptions, the memory bound. Every clock is injected.
 */
import t from 'tap'
import type { Test } from 'tap'
import { createRrl, RRL_ACTION, RRL_CATEGORY } from '../../src/guard/rrl.js'
import type { Rrl, RrlCategory, RrlOptions } from '../../src/guard/rrl.js'
import { parseAddress } from '../../src/steering/index.js'

const { SEND, DROP, SLIP } = RRL_ACTION
const { ANSWER, NXDOMAIN, REFERRAL, ERROR } = RRL_CATEGORY

const bytes = (ip: string) => parseAddress(ip) as Uint8Array

/** The shipped example, steerdns.yaml's guard.rrl. */
const EXAMPLE: RrlOptions = {
  responsesPerSecond: 20,
  nxdomainsPerSecond: 10,
  errorsPerSecond: 10,
  windowSec: 5,
  slip: 2,
  ipv4Prefix: 24,
  ipv6Prefix: 56,
  exempt: ['127.0.0.2/32'],
}

/** `n` checks at `nowMs`, stepping `stepMs` each; the actions in order. */
function burst(rrl: Rrl, ip: string, n: number, nowMs: number, opts: { category?: RrlCategory; name?: string; stepMs?: number } = {}): number[] {
  const client = bytes(ip)
  const out: number[] = []
  for (let i = 0; i < n; i++) out.push(rrl.check(client, opts.category ?? ANSWER, opts.name ?? 'www.example.com', nowMs + i * (opts.stepMs ?? 0)))
  return out
}

const count = (actions: number[], action: number) => actions.filter((a) => a === action).length

t.test('under the rate everything is sent', async (t) => {
  const rrl = createRrl(EXAMPLE)
  // 19/s for 30 s, evenly spaced: always below 20/s.
  const actions = burst(rrl, '192.0.2.1', 19 * 30, 1_000_000, { stepMs: 1000 / 19 })
  t.equal(count(actions, SEND), actions.length, 'all sent')
  t.same(rrl.counters, { sent: actions.length, dropped: 0, slipped: 0 })
  // Exactly at the rate, after a one-second burst used the bucket up: still all sent.
  const at = createRrl(EXAMPLE)
  burst(at, '192.0.2.1', 20, 0)
  t.equal(count(burst(at, '192.0.2.1', 200, 50, { stepMs: 50 }), SEND), 200, '20/s after the burst: all sent')
})

t.test('a burst above the rate is limited with the exact slip ratio', async (t) => {
  const rrl = createRrl(EXAMPLE)
  const actions = burst(rrl, '192.0.2.1', 100, 0)
  t.same(actions.slice(0, 20), Array(20).fill(SEND), 'one second of burst: the first 20 sent')
  // BIND (rrl.c): the first limited response slips, then slip - 1 drop, so slip 2 alternates slip, drop.
  t.same(actions.slice(20), Array.from({ length: 80 }, (_, i) => (i % 2 === 0 ? SLIP : DROP)), 'then slip, drop, slip, drop')
  t.same(rrl.counters, { sent: 20, dropped: 40, slipped: 40 })
  t.equal(rrl.size, 1, 'one account')
})

t.test('conformance R15: 100 identical UDP queries as fast as possible are limited (20/s, slip 2)', async (t) => {
  // check.sh waits up to 20 ms for replies after each send, so its queries are ~20 ms apart;
  // back-to-back (0 ms) is the other extreme. Anything under 50 ms apart (20/s) gets limited.
  for (const stepMs of [0, 1, 20, 25]) {
    const rrl = createRrl(EXAMPLE)
    const actions = burst(rrl, '127.0.0.1', 100, 1_700_000_000_000, { stepMs })
    const limited = count(actions, DROP) + count(actions, SLIP)
    t.ok(limited > 0, `${stepMs} ms apart: ${count(actions, SEND)} sent, ${count(actions, SLIP)} truncated, ${count(actions, DROP)} dropped`)
    t.ok(count(actions, SLIP) > 0 && count(actions, DROP) > 0, `${stepMs} ms apart: both truncated and dropped`)
  }
})

t.test('a query after a quiet gap slips while the account repays a flood (conformance Z02)', async (t) => {
  for (const burstSize of [100, 101]) {
    const rrl = createRrl(EXAMPLE)
    const start = 1_700_000_000_000
    // Either parity of the flood's slip sequence: the re-ask must not depend on it.
    burst(rrl, '127.0.0.1', burstSize, start, { stepMs: 1 })
    const end = start + burstSize
    t.equal(rrl.check(bytes('127.0.0.1'), ANSWER, 'www.example.com', end + 500), SLIP, `after ${burstSize}: 500 ms later the account is in debt, the re-ask gets TC`)
    t.equal(rrl.check(bytes('127.0.0.1'), ANSWER, 'www.example.com', end + 501), DROP, 'a query right behind it is flood-like again: dropped')
    t.equal(rrl.check(bytes('127.0.0.1'), ANSWER, 'www.example.com', end + 502), SLIP, 'and the ratio holds')
  }
  // The gap is one token's time (1000 / rate ms): 49 ms of silence at 20/s is not enough.
  const rrl = createRrl(EXAMPLE)
  const after = burst(rrl, '127.0.0.1', 41, 0, { stepMs: 0 })
  t.equal(after.at(-1), SLIP, 'the flood ended on a slip')
  t.equal(rrl.check(bytes('127.0.0.1'), ANSWER, 'www.example.com', 49), DROP, '49 ms later: still flood-like')
  t.equal(rrl.check(bytes('127.0.0.1'), ANSWER, 'www.example.com', 99), SLIP, '50 ms after that: the sequence restarts')
})

t.test('accounts: names, prefixes, families and categories', async (t) => {
  const cases = [
    // [what, first burst, second burst, shared?]
    ['different names (answers)', ['192.0.2.1', ANSWER, 'a.example.com'], ['192.0.2.1', ANSWER, 'b.example.com'], false],
    ['name case does not matter', ['192.0.2.1', ANSWER, 'a.example.com'], ['192.0.2.1', ANSWER, 'A.eXample.COM'], true],
    ['different /24s', ['192.0.2.1', ANSWER, 'a.example.com'], ['192.0.3.1', ANSWER, 'a.example.com'], false],
    ['two addresses in one /24', ['192.0.2.1', ANSWER, 'a.example.com'], ['192.0.2.254', ANSWER, 'a.example.com'], true],
    ['two addresses in one /56', ['2001:db8:0:ff::1', ANSWER, 'a.example.com'], ['2001:db8:0:1::2', ANSWER, 'a.example.com'], true],
    ['different /56s', ['2001:db8:0:ff::1', ANSWER, 'a.example.com'], ['2001:db8:0:100::1', ANSWER, 'a.example.com'], false],
    ['NXDOMAIN apart from answers', ['192.0.2.1', ANSWER, 'example.com'], ['192.0.2.1', NXDOMAIN, 'example.com'], false],
    ['NXDOMAIN per zone name', ['192.0.2.1', NXDOMAIN, 'example.com'], ['192.0.2.1', NXDOMAIN, 'example.com'], true],
    ['referrals apart from answers', ['192.0.2.1', ANSWER, 'sub.example.com'], ['192.0.2.1', REFERRAL, 'sub.example.com'], false],
    ['errors ignore the name', ['192.0.2.1', ERROR, 'a.example.com'], ['192.0.2.1', ERROR, 'b.example.com'], true],
    ['errors per prefix', ['192.0.2.1', ERROR, ''], ['192.0.3.1', ERROR, ''], false],
  ] as const
  for (const [what, [ip1, cat1, name1], [ip2, cat2, name2], shared] of cases) {
    const rrl = createRrl(EXAMPLE)
    t.ok(burst(rrl, ip1, 100, 0, { category: cat1, name: name1 }).includes(DROP), `${what}: first flood limited`)
    const second = rrl.check(bytes(ip2), cat2, name2, 0)
    if (shared) t.not(second, SEND, `${what}: shared (limited)`)
    else t.equal(second, SEND, `${what}: separate`)
    t.equal(rrl.size, shared ? 1 : 2, `${what}: ${shared ? 1 : 2} account(s)`)
  }
})

t.test('each category has its own rate', async (t) => {
  const rrl = createRrl({ ...EXAMPLE, referralsPerSecond: 7 })
  const sentIn = (category: RrlCategory, ip: string) => count(burst(rrl, ip, 100, 0, { category, name: 'example.com' }), SEND)
  t.equal(sentIn(ANSWER, '192.0.2.1'), 20, 'responsesPerSecond')
  t.equal(sentIn(NXDOMAIN, '192.0.2.1'), 10, 'nxdomainsPerSecond')
  t.equal(sentIn(ERROR, '192.0.2.1'), 10, 'errorsPerSecond')
  t.equal(sentIn(REFERRAL, '192.0.2.1'), 7, 'referralsPerSecond')
  const defaulted = createRrl(EXAMPLE)
  t.equal(count(burst(defaulted, '192.0.2.1', 100, 0, { category: REFERRAL }), SEND), 20, 'referrals default to responsesPerSecond')
  const unlimited = createRrl({ ...EXAMPLE, nxdomainsPerSecond: 0 })
  t.equal(count(burst(unlimited, '192.0.2.1', 1000, 0, { category: NXDOMAIN }), SEND), 1000, 'rate 0: not limited (BIND)')
  t.equal(unlimited.size, 0, 'and no account kept')
})

t.test('window: a flood keeps the account in debt; it recovers windowSec after the flood stops', async (t) => {
  // Flood at 100/s for 10 s: the balance sits at the floor, -window * rate = -100.
  const rrl = createRrl(EXAMPLE)
  const flood = burst(rrl, '192.0.2.1', 1000, 0, { stepMs: 10 })
  const last = 9990
  t.equal(count(flood.slice(-500), SEND), 0, 'nothing sent while the flood lasts')
  // From -100 at 20/s: 0 after 5 s, so the next response is still limited...
  t.not(rrl.check(bytes('192.0.2.1'), ANSWER, 'www.example.com', last + 4900), SEND, '4.9 s after: still limited')
  // ...that debit cost one credit; a response 2 s later (balance back above 0) is sent.
  t.equal(rrl.check(bytes('192.0.2.1'), ANSWER, 'www.example.com', last + 6900), SEND, '6.9 s after: sent')

  // The floor matters: a short flood recovers sooner than a long one.
  const short = createRrl(EXAMPLE)
  burst(short, '192.0.2.1', 40, 0) // balance 20 - 40 = -20
  t.equal(short.check(bytes('192.0.2.1'), ANSWER, 'www.example.com', 1100), SEND, 'a 40-query burst recovers in ~1 s')
  const long = () => {
    const rrl = createRrl(EXAMPLE)
    burst(rrl, '192.0.2.1', 1000, 0) // clamped at -100
    return rrl
  }
  t.not(long().check(bytes('192.0.2.1'), ANSWER, 'www.example.com', 1100), SEND, 'a long flood does not')
  t.not(long().check(bytes('192.0.2.1'), ANSWER, 'www.example.com', 4900), SEND, 'nor within the window')
  // -100 + 5.001 s * 20/s would still be in debt after the debit; BIND starts the account afresh instead.
  t.equal(long().check(bytes('192.0.2.1'), ANSWER, 'www.example.com', 5001), SEND, 'idle longer than the window: a fresh account (BIND)')

  // A wider window means a longer recovery.
  const wide = createRrl({ ...EXAMPLE, windowSec: 30 })
  burst(wide, '192.0.2.1', 1000, 0)
  t.not(wide.check(bytes('192.0.2.1'), ANSWER, 'www.example.com', 10_000), SEND, 'window 30: still limited 10 s later')
})

t.test('after recovery a client within its rate gets everything', async (t) => {
  const rrl = createRrl(EXAMPLE)
  burst(rrl, '192.0.2.1', 500, 0)
  const later = burst(rrl, '192.0.2.1', 100, 6000, { stepMs: 100 })
  t.equal(count(later, SEND), 100, '10/s after the window: all sent')
})

t.test('the clock running backwards earns no credit', async (t) => {
  const rrl = createRrl(EXAMPLE)
  burst(rrl, '192.0.2.1', 30, 10_000)
  t.not(rrl.check(bytes('192.0.2.1'), ANSWER, 'www.example.com', 5_000), SEND, 'earlier reading: still limited')
  t.not(rrl.check(bytes('192.0.2.1'), ANSWER, 'www.example.com', 10_000), SEND, 'back at the old reading: nothing earned twice')
})

t.test('exempt prefixes are never limited', async (t) => {
  const rrl = createRrl({ ...EXAMPLE, exempt: ['127.0.0.2/32', '2001:db8:ff::/48', '198.51.100.9'] })
  for (const ip of ['127.0.0.2', '2001:db8:ff:1::5', '198.51.100.9']) {
    t.equal(count(burst(rrl, ip, 1000, 0), SEND), 1000, `${ip}: all sent`)
  }
  t.equal(rrl.size, 0, 'no accounts for exempt clients')
  t.ok(burst(rrl, '127.0.0.1', 100, 0).includes(DROP), 'its /24 neighbour is still limited (exempt is by address, not account)')
})

t.test('slip 0 drops all, slip 1 truncates all, slip 3 every third', async (t) => {
  const cases = [
    [0, [DROP, DROP, DROP, DROP, DROP, DROP]],
    [1, [SLIP, SLIP, SLIP, SLIP, SLIP, SLIP]],
    [3, [SLIP, DROP, DROP, SLIP, DROP, DROP]],
  ] as const
  for (const [slip, expected] of cases) {
    const rrl = createRrl({ ...EXAMPLE, slip })
    t.same(burst(rrl, '192.0.2.1', 26, 0).slice(20), expected, `slip ${slip}`)
  }
})

t.test('bad settings are refused, every problem named', async (t) => {
  t.throws(() => createRrl({ ...EXAMPLE, exempt: ['10.0.0.0/33', '::1', 'nope'] }), {
    code: 'STEER_ERR_GUARD_RRL_CONFIG',
    message: /10\.0\.0\.0\/33.*nope/,
  })
  const bad: [string, Partial<RrlOptions>][] = [
    ['windowSec', { windowSec: 0 }],
    ['slip', { slip: 11 }],
    ['ipv4Prefix', { ipv4Prefix: 33 }],
    ['ipv6Prefix', { ipv6Prefix: 1.5 }],
    ['responsesPerSecond', { responsesPerSecond: -1 }],
    ['maxEntries', { maxEntries: 0 }],
  ]
  for (const [key, patch] of bad) {
    t.throws(() => createRrl({ ...EXAMPLE, ...patch }), { code: 'STEER_ERR_GUARD_RRL_CONFIG', message: new RegExp(key) }, key)
  }
})

t.test('odd input never throws', async (t) => {
  const rrl = createRrl({ ...EXAMPLE, ipv4Prefix: 0 })
  t.equal(rrl.check(new Uint8Array(0), ANSWER, '', 0), SEND, 'empty address')
  t.equal(rrl.check(new Uint8Array(5), ANSWER, 'x', 0), SEND, 'odd length')
  t.equal(rrl.check(bytes('192.0.2.1'), 9 as RrlCategory, 'x', 0), SEND, 'unknown category (error budget)')
})

t.test('1M spoofed sources: memory stays bounded', async (t: Test) => {
  const maxEntries = 100_000
  const rrl = createRrl({ ...EXAMPLE, ipv4Prefix: 32, maxEntries })
  const client = new Uint8Array(4)
  const n = 1_000_000
  const start = process.hrtime.bigint()
  for (let i = 0; i < n; i++) {
    client[0] = 10
    client[1] = (i >>> 16) & 0xff
    client[2] = (i >>> 8) & 0xff
    client[3] = i & 0xff
    rrl.check(client, ANSWER, 'www.example.com', i >>> 10)
  }
  const ns = Number(process.hrtime.bigint() - start) / n
  t.ok(rrl.size <= maxEntries, `size ${rrl.size} <= ${maxEntries}`)
  t.equal(rrl.counters.sent, n, 'each new source gets its first answer')
  t.comment(`${ns.toFixed(0)} ns per check (1M distinct /32s, LRU of ${maxEntries})`)

  // The steady case: one flooding account, hit repeatedly.
  const hot = createRrl(EXAMPLE)
  const one = bytes('192.0.2.1')
  const hotStart = process.hrtime.bigint()
  for (let i = 0; i < n; i++) hot.check(one, ANSWER, 'www.example.com', i >>> 10)
  t.comment(`${(Number(process.hrtime.bigint() - hotStart) / n).toFixed(0)} ns per check (one hot account)`)
})
