/**
 * DDoS defences end to end over real sockets: DNS cookies (RFC 7873, RFC 9018
 * server cookies, secret rollover, BADCOOKIE when required, the cookie-only
 * query), the amplification cap for clients without a valid cookie, response
 * rate limiting with slip (and who is never limited: exempt addresses,
 * cookie-validated clients, TCP), and the CHAOS access list. Distinct
 * 127.x.y.z sources stand for distinct client networks.
 */
import { createSocket } from 'node:dgram'
import dnsPacket from 'dns-packet'
import type { Answer } from 'dns-packet'
import t from 'tap'
import { checkServerCookie, makeServerCookie, parseCookieSecret } from '../../src/guard/index.js'
import { queryTcp, queryUdp } from '../helpers/dns-client.js'
import { startTestServer } from '../helpers/test-server.js'

const SECRET = '000102030405060708090a0b0c0d0e0f'
const PREVIOUS_SECRET = 'f0e0d0c0b0a090807060504030201000'
const CLIENT_COOKIE = Buffer.from('2464c4abcf10c957', 'hex')
const LOOPBACK = new Uint8Array([127, 0, 0, 1])
const OPT_COOKIE = 10
const RCODE_BADCOOKIE = 23

/** Default server: cookies on (not required), RRL as the example, a 512-byte cap without cookie, CHAOS only for 10/8. */
const open = await startTestServer(t, {
  guard: {
    rrl: { enabled: true, responsesPerSecond: 20, nxdomainsPerSecond: 10, errorsPerSecond: 10, windowSec: 5, slip: 2, exempt: ['127.0.0.2/32'] },
    cookies: { enabled: true, secret: SECRET },
    noCookieMaxUdpBytes: 512,
    acl: { chaos: ['10.0.0.0/8'] },
  },
})
/** Strict server: cookies required, the secret rolled over from PREVIOUS_SECRET, rate limiting off. */
const strict = await startTestServer(t, {
  guard: { cookies: { enabled: true, secret: SECRET, previousSecret: PREVIOUS_SECRET, require: true } },
})

interface Reply {
  rcode: number
  tc: boolean
  answers: number
  questions: string[]
  /** COOKIE option data, when the reply carried one. */
  cookie: Buffer | undefined
  bytes: number
}

function query(name: string, type: string, opts: { cookie?: Buffer; udpPayloadBytes?: number; klass?: string; id?: number } = {}): Buffer {
  const options = opts.cookie ? [{ code: OPT_COOKIE, data: opts.cookie }] : []
  return dnsPacket.encode({
    type: 'query',
    id: opts.id ?? 0x4242,
    questions: [{ name, type: type as dnsPacket.RecordType, class: (opts.klass ?? 'IN') as dnsPacket.RecordClass }],
    additionals: [{ type: 'OPT', name: '.', udpPayloadSize: opts.udpPayloadBytes ?? 1232, options } as unknown as Answer],
  })
}

function parse(bytes: Buffer): Reply {
  const packet = dnsPacket.decode(bytes)
  const opt = packet.additionals?.find((rr) => rr.type === 'OPT') as { options?: { code: number; data?: Buffer }[]; extendedRcode?: number } | undefined
  // The OPT TTL's high byte extends the header's 4-bit RCODE (RFC 6891 section 6.1.3).
  const rcode = ((opt?.extendedRcode ?? 0) << 4) | ((bytes[3] as number) & 0x0f)
  return {
    rcode,
    tc: ((bytes[2] as number) & 0x02) !== 0,
    answers: packet.answers?.length ?? 0,
    questions: (packet.questions ?? []).map((q) => `${q.name} ${q.type}`),
    cookie: opt?.options?.find((o) => o.code === OPT_COOKIE)?.data,
    bytes: bytes.length,
  }
}

/** A full cookie (client + server) the server handed out, fetched with one query. */
async function fetchCookie(host: string, port: number): Promise<Buffer> {
  const reply = parse(await queryUdp(host, port, query('www.edge.example.net', 'A', { cookie: CLIENT_COOKIE }), 2000))
  if (!reply.cookie) throw new Error('no cookie in the reply')
  return reply.cookie
}

/**
 * Sends `count` copies of `message` from `source` as fast as the socket takes
 * them and collects replies until `quietMs` pass without one. Replies are
 * matched by DNS id, so `count` ≤ 65536.
 */
function udpBurst(source: string, host: string, port: number, messages: Buffer[], quietMs: number): Promise<Reply[]> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4')
    const replies: Reply[] = []
    let timer: NodeJS.Timeout | undefined
    const finish = (): void => {
      socket.close()
      resolve(replies)
    }
    const rearm = (): void => {
      clearTimeout(timer)
      timer = setTimeout(finish, quietMs)
    }
    socket.on('error', reject)
    socket.on('message', (msg) => {
      replies.push(parse(msg))
      rearm()
    })
    socket.bind(0, source, () => {
      for (const message of messages) socket.send(message, port, host)
      rearm()
    })
  })
}

t.test('cookies: a client cookie gets back an RFC 9018 server cookie for this client and secret', async (t) => {
  const reply = parse(await queryUdp(open.host, open.port, query('www.edge.example.net', 'A', { cookie: CLIENT_COOKIE }), 2000))
  t.equal(reply.rcode, 0, 'answered')
  t.equal(reply.answers, 1)
  t.ok(reply.cookie, 'COOKIE option in the reply')
  const cookie = reply.cookie as Buffer
  t.equal(cookie.length, 24, 'client cookie (8) + RFC 9018 server cookie (16)')
  t.same(cookie.subarray(0, 8), CLIENT_COOKIE, 'the client cookie is echoed')
  t.equal(cookie[8], 1, 'server cookie version 1 (RFC 9018 section 4.2)')
  const secrets = { current: parseCookieSecret(SECRET), previous: undefined }
  t.equal(checkServerCookie(cookie, LOOPBACK, secrets, Math.floor(Date.now() / 1000)), 'valid', 'valid for 127.0.0.1 under the configured secret')
  t.equal(checkServerCookie(cookie, new Uint8Array([127, 0, 0, 9]), secrets, Math.floor(Date.now() / 1000)), 'invalid', 'bound to the client address')

  const again = parse(await queryUdp(open.host, open.port, query('www.edge.example.net', 'A', { cookie }), 2000))
  t.equal(again.rcode, 0, 'the full cookie is accepted')
  t.same(again.cookie?.subarray(0, 8), CLIENT_COOKIE, 'and refreshed with the same client cookie')
})

t.test('cookies: a cookie-only query (QDCOUNT 0) is answered NOERROR with a server cookie (RFC 7873 section 5.4)', async (t) => {
  const withQuestion = query('www.edge.example.net', 'A', { cookie: CLIENT_COOKIE })
  const noQuestion = cookieOnlyQuery(withQuestion)
  const reply = parse(await queryUdp(open.host, open.port, noQuestion, 2000))
  t.equal(reply.rcode, 0, 'NOERROR')
  t.same(reply.questions, [], 'no question')
  t.equal(reply.cookie?.length, 24, 'a server cookie to use next time')

  const plain = cookieOnlyQuery(query('www.edge.example.net', 'A'))
  t.equal(parse(await queryUdp(open.host, open.port, plain, 2000)).rcode, 1, 'QDCOUNT 0 without a cookie stays FORMERR (RFC 9619)')
})

/** `message` with its question removed and QDCOUNT 0 (the OPT record kept). */
function cookieOnlyQuery(message: Buffer): Buffer {
  const packet = dnsPacket.decode(message)
  return dnsPacket.encode({ ...packet, questions: [] })
}

t.test('amplification: without a valid server cookie a UDP answer above noCookieMaxUdpBytes is truncated', async (t) => {
  const big = (cookie?: Buffer): Buffer => query('big.edge.example.net', 'TXT', { udpPayloadBytes: 4096, ...(cookie ? { cookie } : {}) })
  const plain = parse(await queryUdp(open.host, open.port, big(), 2000))
  t.ok(plain.tc, 'no cookie: TC=1')
  t.ok(plain.bytes <= 512, `no cookie: ${plain.bytes} bytes <= 512`)
  const clientOnly = parse(await queryUdp(open.host, open.port, big(CLIENT_COOKIE), 2000))
  t.ok(clientOnly.tc, 'client cookie only (source not proven): TC=1')
  t.ok(clientOnly.bytes <= 512, `client cookie only: ${clientOnly.bytes} bytes`)

  const cookie = await fetchCookie(open.host, open.port)
  const proven = parse(await queryUdp(open.host, open.port, big(cookie), 2000))
  t.notOk(proven.tc, 'valid server cookie: not truncated')
  t.equal(proven.answers, 6, 'all six TXT records')
  t.ok(proven.bytes > 512, `valid server cookie: ${proven.bytes} bytes`)

  const tcp = parse(await queryTcp(open.host, open.port, big(), 2000))
  t.notOk(tcp.tc, 'TCP (source proven by the handshake): whole answer')
  t.equal(tcp.answers, 6)
})

t.test('RRL: a burst from one network is limited, with every 2nd limited answer sent truncated', async (t) => {
  const messages = Array.from({ length: 80 }, (_, i) => query('www.edge.example.net', 'A', { id: i }))
  const replies = await udpBurst('127.0.1.1', open.host, open.port, messages, 300)
  const full = replies.filter((r) => !r.tc)
  const slipped = replies.filter((r) => r.tc)
  const dropped = messages.length - replies.length
  t.ok(full.length >= 20 && full.length < 40, `${full.length} answered in full: the 20/s budget plus what accrued during the burst`)
  t.ok(slipped.length > 0, `${slipped.length} truncated (slip)`)
  t.ok(dropped > 0, `${dropped} dropped`)
  t.ok(Math.abs(slipped.length - dropped) <= 2, 'slip 2: as many truncated as dropped')
  t.ok(
    slipped.every((r) => r.answers === 0 && r.questions[0] === 'www.edge.example.net A'),
    'a slipped reply is TC=1 with the question and no records: a real client retries over TCP',
  )

  const neighbour = await udpBurst('127.0.1.2', open.host, open.port, [query('www.edge.example.net', 'A')], 300)
  t.ok(neighbour.length === 0 || neighbour[0]?.tc === true, 'another address in the same /24 shares the budget')
  const otherName = parse(await udpBurstOne('127.0.1.1', query('login.edge.example.net', 'A')))
  t.notOk(otherName.tc, 'another name from the same network has its own budget')
  t.equal(otherName.answers, 1)
})

async function udpBurstOne(source: string, message: Buffer): Promise<Buffer> {
  const socket = createSocket('udp4')
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.close()
      reject(new Error(`no reply from ${open.host}:${open.port} to ${source}`))
    }, 2000)
    socket.on('message', (msg) => {
      clearTimeout(timer)
      socket.close()
      resolve(msg)
    })
    socket.bind(0, source, () => socket.send(message, open.port, open.host))
  })
}

t.test('RRL: exempt addresses, cookie-validated clients and TCP are never limited', async (t) => {
  const messages = Array.from({ length: 80 }, (_, i) => query('mail.edge.example.net', 'A', { id: i }))
  const exempt = await udpBurst('127.0.0.2', open.host, open.port, messages, 300)
  t.equal(exempt.filter((r) => !r.tc && r.answers === 1).length, 80, 'exempt 127.0.0.2: all 80 answered in full')

  // 127.0.0.1's cookie: the burst below comes from 127.0.0.1 too, and the cookie is bound to the address.
  const cookie = await fetchCookie(open.host, open.port)
  const withCookie = Array.from({ length: 80 }, (_, i) => query('ns1.edge.example.net', 'A', { id: i, cookie }))
  const validated = await udpBurst('127.0.0.1', open.host, open.port, withCookie, 300)
  t.equal(validated.filter((r) => !r.tc && r.answers === 1).length, 80, 'valid server cookie: all 80 answered in full')

  const tcpReplies = await Promise.all(
    Array.from({ length: 40 }, (_, i) => queryTcp(open.host, open.port, query('ns2.edge.example.net', 'A', { id: i }), 5000).then(parse)),
  )
  t.equal(tcpReplies.filter((r) => !r.tc && r.answers === 1).length, 40, 'TCP: all 40 answered in full')
})

t.test('RRL: a random-subdomain flood shares one NXDOMAIN account per zone', async (t) => {
  const messages = Array.from({ length: 60 }, (_, i) => query(`rnd${i}x${Math.floor(Math.random() * 1e9)}.edge.example.net`, 'A', { id: i }))
  const replies = await udpBurst('127.0.3.1', open.host, open.port, messages, 300)
  const full = replies.filter((r) => !r.tc)
  t.ok(full.every((r) => r.rcode === 3), 'the answers that go out are NXDOMAIN')
  t.ok(full.length >= 10 && full.length < 25, `${full.length} of 60 distinct names answered: the 10/s NXDOMAIN budget, not one per name`)
})

t.test('ACL: CHAOS queries from outside guard.acl.chaos are refused', async (t) => {
  const reply = parse(await queryUdp(open.host, open.port, query('id.server', 'TXT', { klass: 'CH' }), 2000))
  t.equal(reply.rcode, 5, '127.0.0.1 is not in 10.0.0.0/8: REFUSED')
  t.equal(reply.answers, 0)
  const allowed = parse(await queryUdp(strict.host, strict.port, query('id.server', 'TXT', { klass: 'CH', cookie: await fetchCookie(strict.host, strict.port) }), 2000))
  t.equal(allowed.rcode, 0, 'the default ACL (everyone) answers')
  t.equal(allowed.answers, 1)
})

t.test('cookies.require: BADCOOKIE for a cookie-aware UDP client without a valid server cookie', async (t) => {
  const name = 'www.edge.example.net'
  const clientOnly = parse(await queryUdp(strict.host, strict.port, query(name, 'A', { cookie: CLIENT_COOKIE }), 2000))
  t.equal(clientOnly.rcode, RCODE_BADCOOKIE, 'client cookie only: BADCOOKIE (RFC 7873 section 5.2.3)')
  t.equal(clientOnly.answers, 0, 'no answer')
  t.equal(clientOnly.cookie?.length, 24, 'with a fresh server cookie to retry with')

  const retried = parse(await queryUdp(strict.host, strict.port, query(name, 'A', { cookie: clientOnly.cookie as Buffer }), 2000))
  t.equal(retried.rcode, 0, 'the retry with that cookie is answered')
  t.equal(retried.answers, 1)

  const nowSec = Math.floor(Date.now() / 1000)
  const rolled = Buffer.concat([CLIENT_COOKIE, makeServerCookie(CLIENT_COOKIE, LOOPBACK, parseCookieSecret(PREVIOUS_SECRET), nowSec)])
  const fromPrevious = parse(await queryUdp(strict.host, strict.port, query(name, 'A', { cookie: rolled }), 2000))
  t.equal(fromPrevious.rcode, 0, 'a cookie from the previous secret is still accepted')
  const secrets = { current: parseCookieSecret(SECRET), previous: undefined }
  t.equal(checkServerCookie(fromPrevious.cookie as Buffer, LOOPBACK, secrets, nowSec), 'valid', 'and replaced by one from the current secret')

  const forged = Buffer.concat([CLIENT_COOKIE, makeServerCookie(CLIENT_COOKIE, LOOPBACK, parseCookieSecret('11'.repeat(16)), nowSec)])
  t.equal(parse(await queryUdp(strict.host, strict.port, query(name, 'A', { cookie: forged }), 2000)).rcode, RCODE_BADCOOKIE, 'a cookie from another secret: BADCOOKIE')

  const noCookie = parse(await queryUdp(strict.host, strict.port, query(name, 'A'), 2000))
  t.equal(noCookie.rcode, 0, 'a client that sends no cookie is answered as usual')
  const tcp = parse(await queryTcp(strict.host, strict.port, query(name, 'A', { cookie: CLIENT_COOKIE }), 2000))
  t.equal(tcp.rcode, 0, 'over TCP a client cookie alone is enough')
  t.equal(tcp.answers, 1)
})
