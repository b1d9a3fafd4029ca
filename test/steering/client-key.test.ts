/**
 * Client keys: addresses and prefixes as operators and sockets write them,
 * IPv4-mapped IPv6 folded into IPv4, host bits cleared, bad input refused.
 */
import t from 'tap'
import { clientKey, formatAddress, formatPrefix, parseAddress, parseClientKey } from '../../src/steering/index.js'

t.test('parseAddress: what sockets and operators write', async (t) => {
  for (const [text, formatted] of [
    ['192.0.2.1', '192.0.2.1'],
    ['::1', '::1'],
    ['2001:DB8:0:0:0:0:0:10', '2001:db8::10'],
    ['::ffff:198.51.100.7', '::ffff:c633:6407'],
    ['fe80::1%eth0', 'fe80::1'],
    ['::', '::'],
  ] as const) {
    const bytes = parseAddress(text)
    t.ok(bytes, text)
    t.equal(bytes && formatAddress(bytes), formatted, `${text} formats as ${formatted}`)
  }
  for (const bad of ['1.2.3', '256.1.1.1', '01.2.3.4', 'x', '', '%eth0', '1:2:3:4:5:6:7:8:9', '2001:db8::1::2']) {
    t.equal(parseAddress(bad), undefined, `refused: "${bad}"`)
  }
})

t.test('parseClientKey: prefixes, host bits cleared, IPv4-mapped as IPv4', async (t) => {
  t.equal(formatPrefix(parseClientKey('198.51.100.77/24', 'ecs')), '198.51.100.0/24')
  t.equal(formatPrefix(parseClientKey('198.51.100.77', 'resolver')), '198.51.100.77/32')
  t.equal(formatPrefix(parseClientKey('2001:db8:1:2::/48', 'ecs')), '2001:db8:1::/48')
  const mapped = parseClientKey('::ffff:198.51.100.77/120', 'ecs')
  t.equal(mapped.family, 4)
  t.equal(formatPrefix(mapped), '198.51.100.0/24')
  t.equal(parseClientKey('::ffff:0:0/80', 'ecs').family, 6, 'shorter than /96 stays IPv6')
  for (const bad of ['198.51.100.0/33', '2001:db8::/129', '198.51.100.0/x', '198.51.100.0/', 'nope/24']) {
    t.throws(() => parseClientKey(bad, 'ecs'), { code: 'STEER_ERR_STEERING_BAD_PREFIX' }, bad)
  }
})

t.test('clientKey from wire bytes keeps the source and masks', async (t) => {
  const k = clientKey(Uint8Array.from([203, 0, 113, 255]), 27, 'ecs')
  t.same([...k.address], [203, 0, 113, 224])
  t.equal(k.source, 'ecs')
  t.equal(k.prefixLen, 27)
})
