// TTL and duration text: units, case, limits (RFC 2181 section 8).
import t from 'tap'
import { MAX_TTL_SEC, parseDurationSec, parseTtlSec } from '../../src/zone/ttl.js'
import { ZONE_PROBLEM, ZoneSyntaxError } from '../../src/zone/zone-problem.js'

t.test('valid TTLs', async (t) => {
  const ok: Array<[string, number]> = [
    ['0', 0],
    ['3600', 3600],
    ['0003600', 3600],
    ['30s', 30],
    ['5m', 300],
    ['1h', 3600],
    ['1h30m', 5400],
    ['1H30M', 5400],
    ['1d', 86400],
    ['1w2d', 7 * 86400 + 2 * 86400],
    ['1W2D3h4M5S', 9 * 86400 + 3 * 3600 + 4 * 60 + 5],
    ['2147483647', MAX_TTL_SEC],
    ['2147483647s', MAX_TTL_SEC],
  ]
  for (const [text, sec] of ok) t.equal(parseTtlSec(text), sec, text)
})

t.test('invalid TTLs throw BAD_TTL', async (t) => {
  const bad = ['', 'h', '1h30', '1x', '-1', '1.5h', ' 1', '2147483648', '4294967295', '3551w', '99999999999999999999999', '1h 30m', 'abc']
  for (const text of bad) {
    t.throws(() => parseTtlSec(text), { code: ZONE_PROBLEM.BAD_TTL }, JSON.stringify(text))
  }
  t.ok(
    (() => {
      try {
        parseTtlSec('2147483648')
      } catch (err) {
        return err instanceof ZoneSyntaxError
      }
      return false
    })(),
    'throws ZoneSyntaxError',
  )
})

t.test('32-bit durations (SOA timers) go up to 2^32-1', async (t) => {
  t.equal(parseDurationSec('4294967295', 0xffffffff), 0xffffffff)
  t.throws(() => parseDurationSec('4294967296', 0xffffffff), { code: ZONE_PROBLEM.BAD_TTL })
})
