/**
 * The answer cache (query/answer-cache.ts) over real sockets against the
 * example configuration: a repeated query is answered from stored bytes
 * (the counters say so) and the answer is still exactly its own — its ID,
 * its question's letter case echoed in every name, its ECS subnet's target
 * and scope, its resolver's decision — and never outlives the data it was
 * computed from: a new map, a health or admin change, a zone reload and an
 * override apply to the very next query. Cookies are per client and per
 * query: never reused.
 */
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import dnsPacket from 'dns-packet'
import type { Answer } from 'dns-packet'
import t from 'tap'
import { loadConfigFile } from '../../src/config/index.js'
import { startServer } from '../../src/main.js'
import { parseMapJson } from '../../src/steering/index.js'
import { queryUdp } from '../helpers/dns-client.js'
import { REPO_ROOT } from '../helpers/steerdns-process.js'

const config = await loadConfigFile(join(REPO_ROOT, 'steerdns.yaml'))
const work = mkdtempSync(join(tmpdir(), 'steerdns-answer-cache-'))
t.teardown(() => rmSync(work, { recursive: true, force: true }))
const zoneFile = join(work, 'edge.example.net.zone')
copyFileSync(join(REPO_ROOT, 'zones', 'edge.example.net.zone'), zoneFile)
const server = await startServer({
  config: {
    ...config,
    // RRL off: this suite repeats names from one address faster than the example allows.
    guard: { ...config.guard, rrl: { ...config.guard.rrl, enabled: false } },
    zones: [{ origin: 'edge.example.net', file: zoneFile }],
    listen: ['127.0.0.1:0'],
    api: { ...config.api, listen: '' },
    state: { dir: join(work, 'state') },
    dns: { ...config.dns, zonePollIntervalMs: 0 },
  },
  logDestination: new PassThrough(),
})
t.teardown(() => server.close())
const port = server.listening[0]?.port as number
const API = 'api.edge.example.net'
const counters = server.counters
const CALLER = { name: 'answer-cache-test', address: '127.0.0.1' }

interface Ask {
  readonly id?: number
  readonly ecs?: { ip: string; source: number }
  readonly cookie?: Buffer
}

function encode(name: string, type: string, opts: Ask): Buffer {
  const options: unknown[] = []
  if (opts.ecs) options.push({ code: 8, family: 1, sourcePrefixLength: opts.ecs.source, scopePrefixLength: 0, ip: opts.ecs.ip })
  if (opts.cookie) options.push({ code: 10, data: opts.cookie })
  return dnsPacket.encode({
    type: 'query',
    id: opts.id ?? 0x1234,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ name, type: type as dnsPacket.RecordType }],
    additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, options } as unknown as Answer],
  })
}

async function ask(name: string, type: string, opts: Ask = {}): Promise<{ raw: Buffer; p: dnsPacket.DecodedPacket & { rcode?: string } }> {
  const raw = await queryUdp('127.0.0.1', port, encode(name, type, opts), 2000)
  return { raw, p: dnsPacket.decode(raw) as dnsPacket.DecodedPacket & { rcode?: string } }
}

const data = (p: dnsPacket.DecodedPacket): string[] => (p.answers ?? []).map((a) => String((a as { data?: unknown }).data)).sort()
const ecsEcho = (p: dnsPacket.DecodedPacket): string | undefined => {
  const opt = (p.additionals ?? []).find((a) => a.type === 'OPT') as { options?: { code: number; ip?: string; sourcePrefixLength?: number; scopePrefixLength?: number }[] } | undefined
  const o = opt?.options?.find((x) => x.code === 8)
  return o ? `${o.ip}/${o.sourcePrefixLength}/${o.scopePrefixLength}` : undefined
}

t.test('a repeated query is answered from the cache with its own ID and letter case', async (t) => {
  const first = await ask('www.edge.example.net', 'A', { id: 1 })
  const hitsBefore = counters.answerCache.hits
  const second = await ask('WwW.eDgE.ExAmPlE.NeT', 'A', { id: 0xbeef })
  t.equal(counters.answerCache.hits, hitsBefore + 1, 'the second was a cache hit')
  t.equal(second.p.id, 0xbeef)
  t.equal(second.p.questions?.[0]?.name, 'WwW.eDgE.ExAmPlE.NeT', 'question echoed in the client case')
  t.equal(second.p.answers?.[0]?.name, 'WwW.eDgE.ExAmPlE.NeT', 'the owner name points into the question: same case')
  t.same(data(second.p), data(first.p))
  t.ok(second.p.flags !== undefined && (second.p.flags & dnsPacket.RECURSION_DESIRED) !== 0, 'RD echoed')
  // Apart from the ID and the name's case, the bytes are those of the first answer.
  const a = Buffer.from(first.raw)
  const b = Buffer.from(second.raw)
  a.writeUInt16BE(0, 0)
  b.writeUInt16BE(0, 0)
  t.equal(b.toString('latin1').toLowerCase(), a.toString('latin1').toLowerCase())
  const nx = await ask('nothing-here.edge.example.net', 'A')
  const nxAgain = await ask('nothing-here.edge.example.net', 'A', { id: 7 })
  t.equal(nxAgain.p.rcode, 'NXDOMAIN')
  t.equal(nxAgain.p.id, 7)
  t.same((nxAgain.p.authorities ?? []).map((r) => r.type), (nx.p.authorities ?? []).map((r) => r.type), 'negative answer with its SOA')
})

t.test('steered answers stay per ECS subnet, with their scopes, when reused', async (t) => {
  const cases = [
    { ecs: { ip: '198.51.100.0', source: 26 }, address: '192.0.2.11', echo: '198.51.100.0/26/26' },
    { ecs: { ip: '198.51.100.128', source: 25 }, address: '192.0.2.12', echo: '198.51.100.128/25/24' },
    { ecs: { ip: '192.0.2.96', source: 27 }, address: '198.51.100.14', echo: '192.0.2.96/27/27' },
  ]
  const hitsBefore = counters.answerCache.hits
  for (let round = 0; round < 3; round++) {
    for (const c of cases) {
      const r = await ask(API, 'A', { ecs: c.ecs, id: round * 10 + 1 })
      t.same(data(r.p), [c.address], `${c.ecs.ip}/${c.ecs.source} round ${round}`)
      t.equal(ecsEcho(r.p), c.echo)
    }
  }
  t.ok(counters.answerCache.hits >= hitsBefore + 6, 'rounds 2 and 3 were hits')
})

t.test('a new map, an admin change and an override apply to the very next query', async (t) => {
  const ecs = { ip: '198.51.100.0', source: 26 }
  t.same(data((await ask(API, 'A', { ecs })).p), ['192.0.2.11'], 'sea-1 from the example map')
  t.same(data((await ask(API, 'A', { ecs })).p), ['192.0.2.11'], 'again, from the cache')
  const setup = server.steering.current().setup
  const next = parseMapJson(
    { version: 99, entries: [{ prefix: '198.51.100.0/26', targets: [{ id: 'ord-1', score: 5, samples: 100 }, { id: 'sea-1', score: 50, samples: 100 }] }] },
    (id) => setup.targetIndex.get(id),
  )
  server.steering.setMap(next)
  t.same(data((await ask(API, 'A', { ecs })).p), ['192.0.2.12'], 'ord-1 from the new map at once')
  // Drain ord-1 through the operator service: the next answer moves.
  await server.control.services.targets.patch('ord-1', { state: 'drain', reason: 'answer-cache test' }, CALLER)
  t.notSame(data((await ask(API, 'A', { ecs })).p), ['192.0.2.12'], 'drained ord-1 is not answered to the next query')
  await server.control.services.targets.patch('ord-1', { state: 'up', reason: 'answer-cache test' }, CALLER)
  t.same(data((await ask(API, 'A', { ecs })).p), ['192.0.2.12'], 'back up, answered again')
  const created = await server.control.services.overrides.create({ prefix: '198.51.100.0/24', targets: ['lhr-1'], reason: 'answer-cache test' }, CALLER)
  t.same(data((await ask(API, 'A', { ecs })).p), ['198.51.100.15'], 'the pin wins at the next query')
  t.ok(await server.control.services.overrides.remove(created.id, CALLER))
  t.same(data((await ask(API, 'A', { ecs })).p), ['192.0.2.12'], 'its removal too')
})

t.test('a zone reload applies to the very next query', async (t) => {
  t.same(data((await ask('mail.edge.example.net', 'A')).p), ['192.0.2.25'])
  t.same(data((await ask('mail.edge.example.net', 'A')).p), ['192.0.2.25'], 'cached')
  const text = readFileSync(zoneFile, 'utf8')
  const serial = /(\d{10})\s*;\s*serial/.exec(text)
  t.ok(serial, 'the example zone has a 10-digit serial')
  const changed = text.replace(/^mail(\s+.*\sA\s+)192\.0\.2\.25/m, 'mail$1192.0.2.26').replace(serial?.[1] ?? '', String(Number(serial?.[1]) + 1))
  t.not(changed, text, 'the zone text changed')
  writeFileSync(zoneFile, changed)
  await server.reload()
  t.same(data((await ask('mail.edge.example.net', 'A')).p), ['192.0.2.26'], 'the reloaded zone answers')
})

t.test('queries with a COOKIE option are never answered from the cache', async (t) => {
  const cookieA = Buffer.from('0102030405060708', 'hex')
  const cookieOf = (p: dnsPacket.DecodedPacket): string | undefined => {
    const opt = (p.additionals ?? []).find((a) => a.type === 'OPT') as { options?: { code: number; data?: Buffer }[] } | undefined
    return opt?.options?.find((o) => o.code === 10)?.data?.subarray(0, 8).toString('hex')
  }
  const a = await ask('www.edge.example.net', 'AAAA', { cookie: cookieA })
  const hitsBefore = counters.answerCache.hits
  const b = await ask('www.edge.example.net', 'AAAA', { cookie: cookieA, id: 2 })
  t.equal(cookieOf(a.p), cookieA.toString('hex'), 'the client cookie echoed')
  t.equal(cookieOf(b.p), cookieA.toString('hex'), 'the client cookie echoed again')
  t.equal(counters.answerCache.hits, hitsBefore, 'the same bytes again: no hit, the server cookie is made per query')
})

t.test('a reused steered answer ends exactly when an override or admin record of its snapshot expires', async (t) => {
  const ecs = { ip: '198.51.100.0', source: 26 }
  const mapAnswer = data((await ask(API, 'A', { ecs })).p)
  const expiresAt = new Date(Date.now() + 1500).toISOString()
  await server.control.services.overrides.create({ prefix: '198.51.100.0/24', targets: ['lhr-1'], reason: 'expiring pin', expiresAt }, CALLER)
  t.same(data((await ask(API, 'A', { ecs })).p), ['198.51.100.15'], 'the pin answers')
  const hitsBefore = counters.answerCache.hits
  t.same(data((await ask(API, 'A', { ecs, id: 5 })).p), ['198.51.100.15'], 'again, from the cache')
  t.equal(counters.answerCache.hits, hitsBefore + 1)
  // No snapshot swap happens at the expiry: only the entry's own bound ends the reuse.
  await new Promise((r) => setTimeout(r, Date.parse(expiresAt) - Date.now() + 50))
  t.same(data((await ask(API, 'A', { ecs, id: 6 })).p), mapAnswer, 'right after the expiry, the map answers again')

  const drainUntil = new Date(Date.now() + 1500).toISOString()
  const drained = mapAnswer[0] === '192.0.2.12' ? 'ord-1' : 'sea-1'
  await server.control.services.targets.patch(drained, { state: 'drain', reason: 'expiring drain', expiresAt: drainUntil }, CALLER)
  t.notSame(data((await ask(API, 'A', { ecs, id: 7 })).p), mapAnswer, `${drained} drained: another target`)
  t.notSame(data((await ask(API, 'A', { ecs, id: 8 })).p), mapAnswer, 'again, from the cache')
  await new Promise((r) => setTimeout(r, Date.parse(drainUntil) - Date.now() + 50))
  t.same(data((await ask(API, 'A', { ecs, id: 9 })).p), mapAnswer, `right after the drain expires, ${drained} again`)
})
