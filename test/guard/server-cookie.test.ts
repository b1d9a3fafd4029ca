/**
 * Server cookies: SipHash-2-4 against the reference vectors, the RFC 9018
 * Appendix A worked examples byte for byte, and the accept/reject rules
 * (lengths, version, secret rollover, the 1 hour / 5 minute window).
 */
import t from 'tap'
import type { Test } from 'tap'
// The module itself, not guard/index.js: sipHash24 is not public, and the
// index also pulls in modules that are tested on their own.
import { checkServerCookie, makeServerCookie, parseCookieSecret, randomCookieSecret, sipHash24 } from '../../src/guard/server-cookie.js'
import { parseAddress } from '../../src/steering/index.js'

const hex = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, 'hex'))
const toHex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex')
const address = (ip: string): Uint8Array => parseAddress(ip) as Uint8Array
const join = (a: Uint8Array, b: Uint8Array): Uint8Array => new Uint8Array([...a, ...b])

// SipHash-2-4 reference implementation, vectors.h (github.com/veorq/SipHash),
// vectors_sip64: key 00 01 .. 0f, message i bytes 00 01 .. (i - 1), output bytes.
// All 64, so every tail length (0..7) is covered eight times over.
const SIP64_VECTORS = [
  '310e0edd47db6f72', 'fd67dc93c539f874', '5a4fa9d909806c0d', '2d7efbd796666785',
  'b7877127e09427cf', '8da699cd64557618', 'cee3fe586e46c9cb', '37d1018bf50002ab',
  '6224939a79f5f593', 'b0e4a90bdf82009e', 'f3b9dd94c5bb5d7a', 'a7ad6b22462fb3f4',
  'fbe50e86bc8f1e75', '903d84c02756ea14', 'eef27a8e90ca23f7', 'e545be4961ca29a1',
  'db9bc2577fcc2a3f', '9447be2cf5e99a69', '9cd38d96f0b3c14b', 'bd6179a71dc96dbb',
  '98eea21af25cd6be', 'c7673b2eb0cbf2d0', '883ea3e395675393', 'c8ce5ccd8c030ca8',
  '94af49f6c650adb8', 'eab8858ade92e1bc', 'f315bb5bb835d817', 'adcf6b0763612e2f',
  'a5c91da7acaa4dde', '716595876650a2a6', '28ef495c53a387ad', '42c341d8fa92d832',
  'ce7cf2722f512771', 'e37859f94623f3a7', '381205bb1ab0e012', 'ae97a10fd434e015',
  'b4a31508beff4d31', '81396229f0907902', '4d0cf49ee5d4dcca', '5c73336a76d8bf9a',
  'd0a704536ba93e0e', '925958fcd6420cad', 'a915c29bc8067318', '952b79f3bc0aa6d4',
  'f21df2e41d4535f9', '87577519048f53a9', '10a56cf5dfcd9adb', 'eb75095ccd986cd0',
  '51a9cb9ecba312e6', '96afadfc2ce666c7', '72fe52975a4364ee', '5a1645b276d592a1',
  'b274cb8ebf87870a', '6f9bb4203de7b381', 'eaecb2a30b22a87f', '9924a43cc1315724',
  'bd838d3aafbf8db7', '0b1a2a3265d51aea', '135079a3231ce660', '932b2846e4d70666',
  'e1915f5cb1eca46c', 'f325965ca16d629f', '575ff28e60381be5', '724506eb4c328a95',
] as const

t.test('SipHash-2-4 matches the reference vectors', async (t) => {
  const key = Uint8Array.from({ length: 16 }, (_, i) => i)
  const message = Uint8Array.from({ length: 64 }, (_, i) => i)
  SIP64_VECTORS.forEach((want, length) => t.equal(toHex(sipHash24(key, message.subarray(0, length))), want, `${length}-byte message`))
  // A message that does not start at offset 0 of its buffer hashes the same.
  const shifted = new Uint8Array(80)
  shifted.set(message, 3)
  t.equal(toHex(sipHash24(key, shifted.subarray(3, 3 + 15))), SIP64_VECTORS[15], 'subarray input')
  t.throws(() => sipHash24(key.subarray(0, 15), message), { code: 'STEER_ERR_GUARD_COOKIE_INPUT' }, 'a short key is a caller bug')
})

// RFC 9018 Appendix A. Secrets, addresses, times and COOKIE option contents
// exactly as printed there (reply = client cookie | server cookie).
const A_SECRET = 'e5e973e5a6b2a43f48e7dc849e37bfcf'
const A4_PREVIOUS_SECRET = 'dd3bdf9344b678b185a6f5cb60fca715'
const A4_SECRET = '445536bcd2513298075a5d379663c962'
const RFC9018_REPLIES = [
  { name: 'A.1 learning a new server cookie', secret: A_SECRET, ip: '198.51.100.100', nowSec: 1559731985, reply: '2464c4abcf10c957010000005cf79f111f8130c3eee29480' },
  { name: 'A.2 the same client, renewed', secret: A_SECRET, ip: '198.51.100.100', nowSec: 1559734385, reply: '2464c4abcf10c957010000005cf7a871d4a564a1442aca77' },
  { name: 'A.3 another client, renewed', secret: A_SECRET, ip: '203.0.113.203', nowSec: 1559734700, reply: 'fc93fc62807ddb86010000005cf7a9acf73a7810aca2381e' },
  { name: 'A.4 IPv6, after the secret rolled over', secret: A4_SECRET, ip: '2001:db8:220:1:59de:d0f4:8769:82b8', nowSec: 1559741961, reply: '22681ab97d52c298010000005cf7c609a6bb79d16625507a' },
] as const

t.test('RFC 9018 Appendix A: the server cookies made are the ones printed', async (t) => {
  for (const v of RFC9018_REPLIES) {
    const reply = hex(v.reply)
    const clientCookie = reply.subarray(0, 8)
    const made = makeServerCookie(clientCookie, address(v.ip), parseCookieSecret(v.secret), v.nowSec)
    t.equal(made.length, 16, `${v.name}: 16 bytes`)
    t.equal(toHex(join(clientCookie, made)), v.reply, v.name)
    t.equal(checkServerCookie(reply, address(v.ip), { current: parseCookieSecret(v.secret), previous: undefined }, v.nowSec), 'valid', `${v.name}: checks valid`)
  }
})

t.test('RFC 9018 Appendix A: the queries carrying server cookies are judged as the RFC says', async (t) => {
  const secrets = { current: parseCookieSecret(A_SECRET), previous: undefined }
  // A.2: the cookie from A.1 comes back 40 minutes later.
  t.equal(checkServerCookie(hex('2464c4abcf10c957010000005cf79f111f8130c3eee29480'), address('198.51.100.100'), secrets, 1559734385), 'valid', 'A.2 query')
  // A.3: Reserved bytes set (01 abcdef): still ours, because they are hashed as
  // received. Valid when fresh; at the RFC's reply time it is 6715 s old, past
  // the 1 hour section 4.3 allows, so this server answers with a new one.
  const a3Query = hex('fc93fc62807ddb8601abcdef5cf78f71a314227b6679ebf5')
  t.equal(checkServerCookie(a3Query, address('203.0.113.203'), secrets, 1559727985), 'valid', 'A.3 query at its issue time')
  t.equal(checkServerCookie(a3Query, address('203.0.113.203'), secrets, 1559727985 + 3600), 'valid', 'A.3 query 1 hour later')
  t.equal(checkServerCookie(a3Query, address('203.0.113.203'), secrets, 1559734700), 'invalid', 'A.3 query at reply time: too old')
  // A.4: made with the previous secret 144 s ago, checked while the new one is current.
  const a4Query = hex('22681ab97d52c298010000005cf7c57926556bd0934c72f8')
  const a4Client = address('2001:db8:220:1:59de:d0f4:8769:82b8')
  const rolled = { current: parseCookieSecret(A4_SECRET), previous: parseCookieSecret(A4_PREVIOUS_SECRET) }
  t.equal(checkServerCookie(a4Query, a4Client, rolled, 1559741961), 'valid', 'A.4 query, previous secret still accepted')
  t.equal(checkServerCookie(a4Query, a4Client, { current: rolled.current, previous: undefined }, 1559741961), 'invalid', 'A.4 query once the previous secret is dropped')
})

const SECRET = parseCookieSecret('000102030405060708090a0b0c0d0e0f')
const OTHER_SECRET = parseCookieSecret('f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff')
const CLIENT_COOKIE = hex('0123456789abcdef')
const NOW_SEC = 1_700_000_000

function option(clientAddress: Uint8Array, secret: Uint8Array, madeAtSec: number): Uint8Array {
  return join(CLIENT_COOKIE, makeServerCookie(CLIENT_COOKIE, clientAddress, secret, madeAtSec))
}

t.test('round trip, rollover and wrong secrets', async (t) => {
  for (const ip of ['192.0.2.1', '2001:db8::53']) {
    const client = address(ip)
    const opt = option(client, SECRET, NOW_SEC)
    t.equal(checkServerCookie(opt, client, { current: SECRET, previous: undefined }, NOW_SEC), 'valid', `${ip}: made then checked`)
    t.equal(checkServerCookie(opt, client, { current: OTHER_SECRET, previous: SECRET }, NOW_SEC), 'valid', `${ip}: made with the previous secret`)
    t.equal(checkServerCookie(opt, client, { current: OTHER_SECRET, previous: undefined }, NOW_SEC), 'invalid', `${ip}: wrong secret`)
    t.equal(checkServerCookie(opt, client, { current: OTHER_SECRET, previous: OTHER_SECRET }, NOW_SEC), 'invalid', `${ip}: wrong both`)
    t.equal(checkServerCookie(opt, client, { current: new Uint8Array(15), previous: SECRET }, NOW_SEC), 'valid', `${ip}: a malformed current secret does not block the previous`)
  }
  const v4 = address('192.0.2.1')
  const opt = option(v4, SECRET, NOW_SEC)
  const secrets = { current: SECRET, previous: undefined }
  t.equal(checkServerCookie(opt, address('192.0.2.2'), secrets, NOW_SEC), 'invalid', 'another client address')
  t.equal(checkServerCookie(opt, address('::ffff:192.0.2.1'), secrets, NOW_SEC), 'invalid', 'the same IPv4 address written as IPv4-mapped IPv6 hashes differently')
  t.not(toHex(makeServerCookie(CLIENT_COOKIE, v4, SECRET, NOW_SEC)), toHex(makeServerCookie(hex('0123456789abcdee'), v4, SECRET, NOW_SEC)), 'the client cookie is hashed')
})

t.test('the timestamp window: 1 hour back, 5 minutes ahead, serial arithmetic', async (t: Test) => {
  const client = address('198.51.100.7')
  const secrets = { current: SECRET, previous: undefined }
  const at = (madeAtSec: number, nowSec: number) => checkServerCookie(option(client, SECRET, madeAtSec), client, secrets, nowSec)
  t.equal(at(NOW_SEC - 3600, NOW_SEC), 'valid', 'exactly 1 hour old')
  t.equal(at(NOW_SEC - 3601, NOW_SEC), 'invalid', 'more than 1 hour old')
  t.equal(at(NOW_SEC + 300, NOW_SEC), 'valid', 'exactly 5 minutes ahead')
  t.equal(at(NOW_SEC + 301, NOW_SEC), 'invalid', 'more than 5 minutes ahead')
  t.equal(at(NOW_SEC - 86400 * 365, NOW_SEC), 'invalid', 'a year old')
  // RFC 1982: across the 2106 wrap of the 32-bit timestamp nothing changes.
  const wrap = 2 ** 32
  t.equal(at(wrap - 100, wrap + 100), 'valid', '200 s old across the wrap')
  t.equal(at(wrap + 100, wrap - 100), 'valid', '200 s ahead across the wrap')
  t.equal(at(wrap - 3000, wrap + 1000), 'invalid', '4000 s old across the wrap')
  t.equal(toHex(makeServerCookie(CLIENT_COOKIE, client, SECRET, wrap + 5).subarray(4, 8)), '00000005', 'the timestamp is taken mod 2^32')
})

t.test('anything but an intact 16-byte version-1 cookie is invalid', async (t) => {
  const client = address('192.0.2.1')
  const secrets = { current: SECRET, previous: undefined }
  const opt = option(client, SECRET, NOW_SEC)
  for (let i = 0; i < opt.length; i++) {
    const tampered = opt.slice()
    tampered[i] = (tampered[i] as number) ^ 0x01
    t.equal(checkServerCookie(tampered, client, secrets, NOW_SEC), 'invalid', `byte ${i} flipped`)
  }
  for (const length of [0, 8, 15, 16, 23, 25, 32, 40]) {
    const resized = new Uint8Array(length)
    resized.set(opt.subarray(0, Math.min(length, opt.length)))
    t.equal(checkServerCookie(resized, client, secrets, NOW_SEC), 'invalid', `${length}-byte option`)
  }
  t.equal(checkServerCookie(opt.subarray(0, 16), client, secrets, NOW_SEC), 'invalid', 'an 8-byte server cookie (legal in RFC 7873, not ours)')
  const version2 = opt.slice()
  version2[8] = 2
  t.equal(checkServerCookie(version2, client, secrets, NOW_SEC), 'invalid', 'version 2')
  t.equal(checkServerCookie(opt, client.subarray(0, 3), secrets, NOW_SEC), 'invalid', 'a 3-byte address')
})

t.test('makeServerCookie refuses wrong lengths (a caller bug)', async (t) => {
  const client = address('192.0.2.1')
  t.throws(() => makeServerCookie(CLIENT_COOKIE.subarray(0, 7), client, SECRET, NOW_SEC), { code: 'STEER_ERR_GUARD_COOKIE_INPUT' }, '7-byte client cookie')
  t.throws(() => makeServerCookie(CLIENT_COOKIE, new Uint8Array(5), SECRET, NOW_SEC), { code: 'STEER_ERR_GUARD_COOKIE_INPUT' }, '5-byte address')
  t.throws(() => makeServerCookie(CLIENT_COOKIE, client, SECRET.subarray(0, 8), NOW_SEC), { code: 'STEER_ERR_GUARD_COOKIE_INPUT' }, '8-byte secret')
  const made = makeServerCookie(CLIENT_COOKIE, client, SECRET, NOW_SEC)
  t.equal(toHex(made.subarray(0, 4)), '01000000', 'Version 1, Reserved zero')
})

t.test('parseCookieSecret and randomCookieSecret', async (t) => {
  t.equal(toHex(parseCookieSecret('E5E973E5A6B2A43F48E7DC849E37BFCF')), A_SECRET, 'upper case')
  t.equal(toHex(parseCookieSecret(`  ${A_SECRET}\n`)), A_SECRET, 'surrounding whitespace, as an env file leaves it')
  const bad = ['', 'e5e973e5a6b2a43f48e7dc849e37bfc', `${A_SECRET}00`, 'g5e973e5a6b2a43f48e7dc849e37bfcf', 'e5e973e5 a6b2a43f48e7dc849e37bfcf', '0xe5e973e5a6b2a43f48e7dc849e37bf', '${STEERDNS_COOKIE_SECRET}']
  for (const text of bad) t.throws(() => parseCookieSecret(text), { code: 'STEER_ERR_GUARD_COOKIE_SECRET' }, JSON.stringify(text))
  try {
    parseCookieSecret('e5e973e5a6b2a43f48e7dc849e37bfcZ')
    t.fail('should throw')
  } catch (err) {
    t.notMatch((err as Error).message, 'e5e973e5a6', 'the message does not repeat the secret')
  }
  const a = randomCookieSecret()
  const b = randomCookieSecret()
  t.equal(a.length, 16, '16 random bytes')
  t.not(toHex(a), toHex(b), 'two calls differ')
  const client = address('192.0.2.1')
  t.equal(checkServerCookie(option(client, a, NOW_SEC), client, { current: a, previous: undefined }, NOW_SEC), 'valid', 'a random secret works')
})

t.test('speed (reported, not asserted)', async (t) => {
  const client = address('198.51.100.100')
  const v6 = address('2001:db8:220:1:59de:d0f4:8769:82b8')
  const calls = 100_000
  const time = (fn: (i: number) => unknown): number => {
    for (let i = 0; i < 10_000; i++) fn(i) // warm up
    const start = process.hrtime.bigint()
    for (let i = 0; i < calls; i++) fn(i)
    return Number(process.hrtime.bigint() - start) / 1000 / calls
  }
  const opt = option(client, SECRET, NOW_SEC)
  const secrets = { current: OTHER_SECRET, previous: SECRET }
  const make4 = time((i) => makeServerCookie(CLIENT_COOKIE, client, SECRET, NOW_SEC + i))
  const make6 = time((i) => makeServerCookie(CLIENT_COOKIE, v6, SECRET, NOW_SEC + i))
  const check = time(() => checkServerCookie(opt, client, secrets, NOW_SEC))
  t.comment(`makeServerCookie: ${make4.toFixed(3)} µs/call IPv4, ${make6.toFixed(3)} µs/call IPv6; checkServerCookie (previous secret, 2 hashes): ${check.toFixed(3)} µs/call (${calls} calls)`)
  t.pass('timed')
})
