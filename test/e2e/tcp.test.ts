/**
 * DNS over TCP (RFC 7766) against the real server over real sockets: many
 * queries per connection, pipelining with answers in order, messages split
 * across writes, the idle and unfinished-message timeouts, per-client and
 * total connection caps, the zero-length frame, complete large answers, the
 * maxPipelined backpressure that pauses reading without losing anything, and
 * IPv6 on ::1 when the host has it. Timeouts are asserted as "closed within a
 * generous bound", never as "closed this fast".
 */
import { readFile } from 'node:fs/promises'
import dnsPacket from 'dns-packet'
import type { Packet } from 'dns-packet'
import t from 'tap'
import type { Test } from 'tap'
import { encodeQuery, queryTcp, queryUdp } from '../helpers/dns-client.js'
import { DnsTcpConnection, frame } from '../helpers/dns-stream.js'
import { startTestServer } from '../helpers/test-server.js'

const ZONE = 'edge.example.net'
const TYPE = { A: 1, NS: 2, CNAME: 5, SOA: 6, MX: 15, TXT: 16, AAAA: 28 } as const
/** Upper bound for anything the server must do "soon"; generous so a loaded CI box does not flake. */
const BOUND_MS = 10_000
const REPLY_MS = 5_000

interface Case {
  readonly name: string
  readonly qtype: number
  readonly rcode: string
  /** Sorted "TYPE data" of the answer section. */
  readonly answer: readonly string[]
}

/** Questions with answers fixed by zones/edge.example.net.zone. */
const CASES: readonly Case[] = [
  { name: `www.${ZONE}`, qtype: TYPE.A, rcode: 'NOERROR', answer: ['A 192.0.2.10'] },
  { name: `www.${ZONE}`, qtype: TYPE.AAAA, rcode: 'NOERROR', answer: ['AAAA 2001:db8::10'] },
  { name: `login.${ZONE}`, qtype: TYPE.A, rcode: 'NOERROR', answer: ['A 192.0.2.30'] },
  { name: `images.${ZONE}`, qtype: TYPE.A, rcode: 'NOERROR', answer: ['A 192.0.2.10', 'CNAME www.edge.example.net'] },
  { name: `mail.${ZONE}`, qtype: TYPE.A, rcode: 'NOERROR', answer: ['A 192.0.2.25'] },
  { name: ZONE, qtype: TYPE.MX, rcode: 'NOERROR', answer: ['MX 10 mail.edge.example.net'] },
  { name: `nope.${ZONE}`, qtype: TYPE.A, rcode: 'NXDOMAIN', answer: [] },
  { name: `www.${ZONE}`, qtype: TYPE.MX, rcode: 'NOERROR', answer: [] },
  { name: `Acme.Customers.${ZONE}`, qtype: TYPE.A, rcode: 'NOERROR', answer: ['A 192.0.2.10', 'CNAME www.edge.example.net'] },
]

function caseAt(i: number): Case {
  return CASES[i % CASES.length] as Case
}

function queryFor(c: Case, id: number): Buffer {
  return encodeQuery({ id, name: c.name, qtype: c.qtype })
}

function renderAnswer(packet: Packet): string[] {
  return (packet.answers ?? [])
    .map((a) => {
      const data = (a as { data?: unknown }).data
      if (a.type === 'MX') {
        const mx = data as { preference: number; exchange: string }
        return `MX ${mx.preference} ${mx.exchange.toLowerCase()}`
      }
      return `${a.type} ${String(data).toLowerCase()}`
    })
    .sort()
}

/** The header rcode by name, from the bytes (dns-packet's types leave `rcode` out). */
function rcodeName(reply: Buffer): string {
  return ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'][(reply[3] as number) & 0x0f] ?? `rcode ${(reply[3] as number) & 0x0f}`
}

/** Problems with `reply` as the answer to `c` sent with `id`; empty when it is right. */
function checkReply(reply: Buffer, c: Case, id: number): string[] {
  const packet = dnsPacket.decode(reply)
  const problems: string[] = []
  if (packet.id !== id) problems.push(`id ${packet.id}, want ${id}`)
  if (packet.type !== 'response') problems.push('QR=0')
  const rcode = rcodeName(reply)
  if (rcode !== c.rcode) problems.push(`rcode ${rcode}, want ${c.rcode}`)
  if (packet.flag_tc) problems.push('TC=1 over TCP')
  // The question's case is echoed as sent.
  const q = packet.questions?.[0]
  if (q?.name !== c.name) problems.push(`question ${q?.name ?? '(none)'}, want ${c.name}`)
  const answer = renderAnswer(packet)
  if (JSON.stringify(answer) !== JSON.stringify(c.answer)) problems.push(`answer ${JSON.stringify(answer)}, want ${JSON.stringify(c.answer)}`)
  return problems.map((p) => `${c.name}/${c.qtype} id ${id}: ${p}`)
}

/** Asks `c` on an open connection and checks the reply. */
async function askOn(t: Test, conn: DnsTcpConnection, c: Case, id: number, label: string): Promise<void> {
  await conn.send(queryFor(c, id))
  const reply = await conn.next(REPLY_MS)
  t.same(checkReply(reply, c, id), [], label)
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/**
 * Opens connections from `localAddress` until one answers, for after a slot
 * was freed: the server learns of a client close asynchronously. Bounded count.
 */
async function answersAfterSlotFrees(host: string, port: number, localAddress: string): Promise<boolean> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const conn = await DnsTcpConnection.open(host, port, { localAddress })
    await conn.send(queryFor(caseAt(0), 900 + attempt))
    const reply = await conn.next(REPLY_MS).catch(() => undefined)
    conn.destroy()
    if (reply !== undefined && checkReply(reply, caseAt(0), 900 + attempt).length === 0) return true
    await delay(20)
  }
  return false
}

t.test('many queries on one connection, one after another', async (t) => {
  const { host, port } = await startTestServer(t)
  const conn = await DnsTcpConnection.open(host, port)
  t.teardown(() => conn.destroy())
  const problems: string[] = []
  for (let i = 0; i < 200; i++) {
    const c = caseAt(i)
    await conn.send(queryFor(c, 1000 + i))
    problems.push(...checkReply(await conn.next(REPLY_MS), c, 1000 + i))
  }
  t.same(problems, [], '200 queries answered correctly on one connection')
  t.ok(conn.isOpen, 'the connection is still open')
})

t.test('pipelining: 10 queries in one write get 10 answers in order', async (t) => {
  const { host, port } = await startTestServer(t)
  const conn = await DnsTcpConnection.open(host, port)
  t.teardown(() => conn.destroy())
  const ids = Array.from({ length: 10 }, (_, i) => 0x2000 + i * 7)
  await conn.write(Buffer.concat(ids.map((id, i) => frame(queryFor(caseAt(i), id)))))
  const replies: Buffer[] = []
  for (let i = 0; i < ids.length; i++) replies.push(await conn.next(REPLY_MS))
  t.same(
    replies.map((r) => r.readUInt16BE(0)),
    ids,
    'answer IDs in query order',
  )
  t.same(
    replies.flatMap((r, i) => checkReply(r, caseAt(i), ids[i] as number)),
    [],
    'each answer is right for its question',
  )
})

t.test('a message split byte by byte across writes is reassembled', async (t) => {
  const { host, port } = await startTestServer(t)
  const conn = await DnsTcpConnection.open(host, port)
  t.teardown(() => conn.destroy())
  // Two messages, so a boundary falls between writes too.
  const stream = Buffer.concat([frame(queryFor(caseAt(0), 0x3001)), frame(queryFor(caseAt(2), 0x3002))])
  for (const byte of stream) {
    await conn.write(Buffer.from([byte]))
    // Let the event loop run, so each byte leaves in its own segment.
    await new Promise((resolve) => setImmediate(resolve))
  }
  t.same(checkReply(await conn.next(REPLY_MS), caseAt(0), 0x3001), [], 'first answer')
  t.same(checkReply(await conn.next(REPLY_MS), caseAt(2), 0x3002), [], 'second answer')
})

t.test('an idle connection is closed by the server', async (t) => {
  const { host, port } = await startTestServer(t, { tcp: { idleTimeoutMs: 300 } })

  const silent = await DnsTcpConnection.open(host, port)
  t.teardown(() => silent.destroy())
  t.ok(await silent.closesWithin(BOUND_MS), 'a connection that never sends is closed')

  const afterQuery = await DnsTcpConnection.open(host, port)
  t.teardown(() => afterQuery.destroy())
  await askOn(t, afterQuery, caseAt(0), 0x4001, 'answered first')
  t.ok(await afterQuery.closesWithin(BOUND_MS), 'then closed once idle')
  t.same(afterQuery.takeReceived(), [], 'nothing else was sent')

  t.same(checkReply(await queryTcp(host, port, queryFor(caseAt(1), 0x4002), REPLY_MS), caseAt(1), 0x4002), [], 'new connections are served')
})

t.test('slowloris: a started message that is never finished is closed', async (t) => {
  const idleTimeoutMs = 300
  const { host, port } = await startTestServer(t, { tcp: { idleTimeoutMs } })
  const conn = await DnsTcpConnection.open(host, port)
  t.teardown(() => conn.destroy())
  // A length prefix of 0xffff: the message cannot complete within this test.
  // One byte every idleTimeoutMs / 6 keeps the connection from ever being idle,
  // so only the deadline for finishing a started message can close it.
  await conn.write(Buffer.from([0xff]))
  const maxTrickled = Math.ceil(BOUND_MS / (idleTimeoutMs / 6))
  let trickled = 0
  while (conn.isOpen && trickled < maxTrickled) {
    await delay(idleTimeoutMs / 6)
    await conn.write(Buffer.from([trickled === 0 ? 0xff : 0x41]))
    trickled++
  }
  t.notOk(conn.isOpen, `closed while still trickling (${trickled} bytes trickled after the first)`)
  t.same(conn.takeReceived(), [], 'no message was sent back')
  t.same(checkReply(await queryTcp(host, port, queryFor(caseAt(0), 0x4101), REPLY_MS), caseAt(0), 0x4101), [], 'others are served')
})

t.test('maxPerClient: a third connection from one address is closed at once', async (t) => {
  // A long idle timeout: any close seen here comes from the limit.
  const { host, port } = await startTestServer(t, { tcp: { maxPerClient: 2, idleTimeoutMs: 60_000 } })
  const first = await DnsTcpConnection.open(host, port, { localAddress: '127.0.0.1' })
  const second = await DnsTcpConnection.open(host, port, { localAddress: '127.0.0.1' })
  t.teardown(() => {
    first.destroy()
    second.destroy()
  })
  // A reply proves the server accepted (and counted) each of the two.
  await askOn(t, first, caseAt(0), 0x5001, 'first connection answers')
  await askOn(t, second, caseAt(1), 0x5002, 'second connection answers')

  const third = await DnsTcpConnection.open(host, port, { localAddress: '127.0.0.1' })
  t.teardown(() => third.destroy())
  await third.send(queryFor(caseAt(2), 0x5003))
  t.ok(await third.closesWithin(BOUND_MS), 'third connection from the same address is closed')
  t.same(third.takeReceived(), [], 'and not answered')

  await askOn(t, first, caseAt(3), 0x5004, 'first connection still answers')
  await askOn(t, second, caseAt(4), 0x5005, 'second connection still answers')

  // All of 127.0.0.0/8 is loopback on Linux: another source address is another client.
  const other = await DnsTcpConnection.open(host, port, { localAddress: '127.0.0.2' })
  t.teardown(() => other.destroy())
  await askOn(t, other, caseAt(5), 0x5006, 'another client address is not limited')

  first.destroy()
  t.ok(await answersAfterSlotFrees(host, port, '127.0.0.1'), 'a slot freed by a close is usable again')
})

t.test('maxConnections: a new client still gets in; the connection idle longest makes room', async (t) => {
  const addresses = ['127.0.0.1', '127.0.0.2', '127.0.0.3']
  t.comment(`client addresses: ${addresses.join(', ')}`)
  const { host, port } = await startTestServer(t, { tcp: { maxConnections: 2, maxPerClient: 10, idleTimeoutMs: 60_000 } })
  const first = await DnsTcpConnection.open(host, port, { localAddress: addresses[0] as string })
  const second = await DnsTcpConnection.open(host, port, { localAddress: addresses[1] as string })
  t.teardown(() => {
    first.destroy()
    second.destroy()
  })
  await askOn(t, first, caseAt(0), 0x5101, 'first connection answers')
  await askOn(t, second, caseAt(1), 0x5102, 'second connection answers')
  // The first asks again: now the second has gone longest without a query.
  await askOn(t, first, caseAt(2), 0x5103, 'first connection answers again')

  const third = await DnsTcpConnection.open(host, port, { localAddress: addresses[2] as string })
  t.teardown(() => third.destroy())
  await askOn(t, third, caseAt(3), 0x5104, 'a third connection (new client address) is served')
  t.ok(await second.closesWithin(BOUND_MS), 'the connection idle longest was closed to make room')
  await askOn(t, first, caseAt(4), 0x5105, 'the recently active connection still answers')

  // The same again: the third is now the idlest after the first asks once more.
  await askOn(t, first, caseAt(5), 0x5106, 'first answers')
  const fourth = await DnsTcpConnection.open(host, port, { localAddress: addresses[1] as string })
  t.teardown(() => fourth.destroy())
  await askOn(t, fourth, caseAt(6), 0x5107, 'a fourth connection is served')
  t.ok(await third.closesWithin(BOUND_MS), 'and the third, now idlest, was closed')
  await askOn(t, first, caseAt(7), 0x5108, 'the active connection survives every eviction')
})

t.test('a zero-length frame closes that connection; others keep being served', async (t) => {
  const { host, port } = await startTestServer(t, { tcp: { idleTimeoutMs: 60_000 } })
  const broken = await DnsTcpConnection.open(host, port)
  const other = await DnsTcpConnection.open(host, port)
  t.teardown(() => {
    broken.destroy()
    other.destroy()
  })
  await askOn(t, broken, caseAt(0), 0x6001, 'answers before the zero-length frame')
  await askOn(t, other, caseAt(1), 0x6002, 'the other connection answers')

  // A zero-length frame followed by a well-formed query: nothing after it is read.
  await broken.write(Buffer.concat([Buffer.from([0, 0]), frame(queryFor(caseAt(2), 0x6003))]))
  t.ok(await broken.closesWithin(BOUND_MS), 'closed by the server')
  t.same(broken.takeReceived(), [], 'the query after the zero-length frame is not answered')

  await askOn(t, other, caseAt(3), 0x6004, 'the other connection still answers')
  t.same(checkReply(await queryTcp(host, port, queryFor(caseAt(4), 0x6005), REPLY_MS), caseAt(4), 0x6005), [], 'new connections are served')
})

t.test('a large answer over TCP is complete, TC=0', async (t) => {
  const { host, port } = await startTestServer(t)
  const query = encodeQuery({ id: 0x7001, name: `big.${ZONE}`, qtype: TYPE.TXT })

  // The same question over UDP without EDNS does not fit in 512 bytes.
  const udp = dnsPacket.decode(await queryUdp(host, port, query, REPLY_MS))
  t.equal(udp.flag_tc, true, 'UDP without EDNS: TC=1')

  const reply = await queryTcp(host, port, query, REPLY_MS)
  const packet = dnsPacket.decode(reply)
  t.ok(reply.length > 512, `TCP answer is ${reply.length} bytes`)
  t.equal(packet.flag_tc, false, 'TCP: TC=0')
  t.equal(rcodeName(reply), 'NOERROR')
  t.equal(packet.id, 0x7001)
  const texts = (packet.answers ?? []).map((a) => Buffer.concat((a as { data: Buffer[] }).data).toString())
  t.same(
    texts.map((s) => s.slice(0, 26)).sort(),
    [1, 2, 3, 4, 5, 6].map((n) => `steerdns example record 0${n}`),
    'all six TXT records, whole',
  )
  t.ok(
    texts.every((s) => s.endsWith('exceeds 512 bytes on the wire')),
    'no record is cut short',
  )
})

t.test('maxPipelined backpressure: 50 queries sent without reading all get answers, in order', async (t) => {
  const { host, port, server } = await startTestServer(t, { tcp: { maxPipelined: 2, idleTimeoutMs: 60_000 } })
  const conn = await DnsTcpConnection.open(host, port)
  t.teardown(() => conn.destroy())
  const before = server.counters.received.tcp
  // Large answers (the 700-byte TXT set) between small ones: more bytes queued per answer.
  const bigCase: Case = { name: `big.${ZONE}`, qtype: TYPE.TXT, rcode: 'NOERROR', answer: [] }
  const cases = Array.from({ length: 50 }, (_, i) => (i % 2 === 0 ? bigCase : caseAt(i)))
  const ids = cases.map((_, i) => 0x8000 + i)

  // The answers' write callbacks run after the drain that wrote them, so with
  // maxPipelined 2 the server pauses reading after every second query here
  // (48 pauses for 50 queries when counted): the pause/resume path, not a
  // kernel buffer filling up (the next test does that).
  conn.socket.pause()
  await conn.write(Buffer.concat(cases.map((c, i) => frame(queryFor(c, ids[i] as number)))))
  // Give the server time to answer what it will while we do not read (not an assertion).
  await delay(200)
  conn.socket.resume()

  const replies: Buffer[] = []
  for (let i = 0; i < cases.length; i++) replies.push(await conn.next(REPLY_MS))
  t.same(
    replies.map((r) => r.readUInt16BE(0)),
    ids,
    '50 answers, IDs in query order',
  )
  const problems = replies.flatMap((r, i) => {
    const c = cases[i] as Case
    if (c !== bigCase) return checkReply(r, c, ids[i] as number)
    const p = dnsPacket.decode(r)
    return p.answers?.length === 6 && !p.flag_tc ? [] : [`big TXT id ${ids[i]}: ${p.answers?.length ?? 0} records, TC=${String(p.flag_tc)}`]
  })
  t.same(problems, [], 'every answer is right for its question')
  t.equal(server.counters.received.tcp - before, 50, 'the server read all 50')
  t.ok(conn.isOpen, 'the connection is still open')
  await askOn(t, conn, caseAt(0), 0x8100, 'and still answers')
})

/** Linux's largest TCP send buffer (tcp_wmem max); 4 MiB, the kernel default, where /proc says nothing. */
async function maxSendBufferBytes(): Promise<number> {
  const text = await readFile('/proc/sys/net/ipv4/tcp_wmem', 'utf8').catch(() => '')
  const max = Number(text.trim().split(/\s+/)[2])
  return Number.isFinite(max) && max > 0 ? max : 4 * 1024 * 1024
}

/** Polls `read` until it stops changing (three equal readings), bounded; returns the last reading. */
async function settled(read: () => number): Promise<number> {
  let last = read()
  let unchanged = 0
  for (let poll = 0; poll < 400 && unchanged < 3; poll++) {
    await delay(50)
    const now = read()
    unchanged = now === last ? unchanged + 1 : 0
    last = now
  }
  return last
}

t.test('a client that stops reading makes the server stop reading; nothing is lost when it resumes', async (t) => {
  const { host, port, server } = await startTestServer(t, { tcp: { maxPipelined: 2, idleTimeoutMs: 60_000 } })
  const conn = await DnsTcpConnection.open(host, port)
  t.teardown(() => conn.destroy())
  const query = (id: number): Buffer => encodeQuery({ id, name: `big.${ZONE}`, qtype: TYPE.TXT })
  const answerBytes = (await queryTcp(host, port, query(0), REPLY_MS)).length
  // Enough answers to fill the server's send buffer (at its largest) and our
  // receive buffer three times over, so reading must stop somewhere.
  const count = Math.min(60_000, Math.ceil((3 * (await maxSendBufferBytes())) / answerBytes))
  t.comment(`${count} queries for ${answerBytes}-byte answers`)
  const before = server.counters.received.tcp
  const readSoFar = (): number => server.counters.received.tcp - before

  conn.socket.pause()
  // Not awaited: once the server stops reading, our own writes back up too.
  void conn.write(Buffer.concat(Array.from({ length: count }, (_, i) => frame(query(i & 0xffff)))))
  const readWhilePaused = await settled(readSoFar)
  t.ok(readWhilePaused < count, `the server stopped reading: ${readWhilePaused} of ${count} queries read while we did not read`)
  t.ok(conn.isOpen, 'the connection stays open while paused')

  conn.socket.resume()
  let inOrder = 0
  for (let i = 0; i < count; i++) {
    const reply = await conn.next(REPLY_MS)
    if (reply.readUInt16BE(0) === (i & 0xffff) && reply.length === answerBytes) inOrder++
  }
  t.equal(inOrder, count, 'every answer arrived, whole and in order')
  t.equal(readSoFar(), count, 'the server read every query')
})

t.test('a client that half-closes after pipelining still gets every answer', async (t) => {
  const { host, port } = await startTestServer(t, { tcp: { maxPipelined: 2, idleTimeoutMs: 60_000 } })
  const conn = await DnsTcpConnection.open(host, port)
  t.teardown(() => conn.destroy())
  const ids = Array.from({ length: 30 }, (_, i) => 0x8800 + i)
  await conn.write(Buffer.concat(ids.map((id, i) => frame(queryFor(caseAt(i), id)))))
  conn.end()
  t.ok(await conn.closesWithin(BOUND_MS), 'the server closes after answering')
  const replies = conn.takeReceived()
  t.same(
    replies.map((r) => r.readUInt16BE(0)),
    ids,
    'all 30 answers, in order, before the close',
  )
  t.same(
    replies.flatMap((r, i) => checkReply(r, caseAt(i), ids[i] as number)),
    [],
    'each right for its question',
  )
})

// Every --listen address gets both transports on IPv6 too; the example configuration listens on [::1].
t.test('IPv6: a query over [::1] UDP and TCP', async (t) => {
  const { host, port } = await startTestServer(t, { listen: ['[::1]:0'] })
  t.equal(host, '::1')
  const c: Case = { name: `www.${ZONE}`, qtype: TYPE.AAAA, rcode: 'NOERROR', answer: ['AAAA 2001:db8::10'] }
  t.same(checkReply(await queryUdp(host, port, queryFor(c, 0x9001), REPLY_MS), c, 0x9001), [], 'UDP over ::1')
  t.same(checkReply(await queryTcp(host, port, queryFor(c, 0x9002), REPLY_MS), c, 0x9002), [], 'TCP over ::1')
})
