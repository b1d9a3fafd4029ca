/**
 * Steering end to end over real UDP and TCP against the example configuration
 * (its targets, services, map and geo database): different ECS subnets get
 * different targets with the right scope, unmapped subnets the nearest target,
 * ECS /0 and no ECS are decided by the resolver address, malformed ECS is
 * FORMERR, IPv6 and IPv4-mapped clients work, and the other types and names
 * at and under steered names behave like any authoritative data.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import dnsPacket from 'dns-packet'
import type { Answer } from 'dns-packet'
import t from 'tap'
import { loadConfigFile } from '../../src/config/index.js'
import { startServer } from '../../src/main.js'
import type { ListenAddress } from '../../src/server/index.js'
import { queryTcp, queryUdp } from '../helpers/dns-client.js'
import { REPO_ROOT } from '../helpers/steerdns-process.js'

const config = await loadConfigFile(join(REPO_ROOT, 'steerdns.yaml'))
// Rate limiting off: this suite sends the same names from 127.0.0.1 faster than the example's 20/s.
const guard = { ...config.guard, rrl: { ...config.guard.rrl, enabled: false } }
// Its own state directory, so the example's map.file is what serves, and no API port.
const stateDir = mkdtempSync(join(tmpdir(), 'steerdns-steering-'))
t.teardown(() => rmSync(stateDir, { recursive: true, force: true }))
const server = await startServer({
  config: { ...config, guard, listen: ['127.0.0.1:0', '[::1]:0'], api: { ...config.api, listen: '' }, state: { dir: stateDir } },
  logDestination: new PassThrough(),
})
t.teardown(() => server.close())
/** The address the server bound at `index` of its listen list; throws when it bound none there. */
function boundAddress(index: number): ListenAddress {
  const addr = server.listening[index]
  if (!addr) throw new Error('not listening')
  return addr
}
const v4 = boundAddress(0)
const v6 = boundAddress(1)

interface Ecs {
  family: 1 | 2
  source: number
  ip: string
}

interface Reply {
  rcode: string
  aa: boolean
  answers: { name: string; type: string; ttl: number; data: string }[]
  authority: string[]
  /** "address/source/scope" like dig prints, or undefined without ECS. */
  ecs: string | undefined
}

function encode(name: string, type: string, ecs?: Ecs, rawOption?: Buffer): Buffer {
  const options: unknown[] = []
  if (ecs) options.push({ code: 8, family: ecs.family, sourcePrefixLength: ecs.source, scopePrefixLength: 0, ip: ecs.ip })
  if (rawOption) options.push({ code: 8, data: rawOption })
  return dnsPacket.encode({
    type: 'query',
    id: 0x5151,
    questions: [{ name, type: type as dnsPacket.RecordType }],
    additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, options } as unknown as Answer],
  })
}

function decode(bytes: Buffer): Reply {
  const p = dnsPacket.decode(bytes) as dnsPacket.DecodedPacket & { rcode?: string }
  const opt = (p.additionals ?? []).find((a) => a.type === 'OPT') as { options?: { code: number; ip?: string; sourcePrefixLength?: number; scopePrefixLength?: number }[] } | undefined
  const ecs = opt?.options?.find((o) => o.code === 8)
  return {
    rcode: p.rcode ?? '',
    aa: Boolean(p.flag_aa),
    answers: (p.answers ?? []).map((a) => ({ name: a.name, type: a.type, ttl: (a as { ttl?: number }).ttl ?? 0, data: String((a as { data?: unknown }).data) })),
    authority: (p.authorities ?? []).map((a) => `${a.name} ${a.type}`),
    ecs: ecs ? `${ecs.ip}/${ecs.sourcePrefixLength}/${ecs.scopePrefixLength}` : undefined,
  }
}

async function ask(name: string, type: string, ecs?: Ecs, opts: { tcp?: boolean; via?: typeof v4; rawOption?: Buffer } = {}): Promise<Reply> {
  const to = opts.via ?? v4
  const query = encode(name, type, ecs, opts.rawOption)
  return decode(opts.tcp ? await queryTcp(to.host, to.port, query, 2000) : await queryUdp(to.host, to.port, query, 2000))
}

const API = 'api.edge.example.net'
const v4ecs = (ip: string, source: number): Ecs => ({ family: 1, source, ip })

t.test('one map, different answers for different ECS subnets, each with its scope', async (t) => {
  const cases = [
    // client subnet, expected address (target), expected ECS echo with scope
    { ecs: v4ecs('198.51.100.0', 26), address: '192.0.2.11', echo: '198.51.100.0/26/26', why: 'map /26: sea-1' },
    { ecs: v4ecs('198.51.100.128', 25), address: '192.0.2.12', echo: '198.51.100.128/25/24', why: 'map /24: ord-1' },
    { ecs: v4ecs('198.51.100.0', 24), address: '192.0.2.12', echo: '198.51.100.0/24/26', why: 'the /26 inside answers differently: scope /26' },
    { ecs: v4ecs('192.0.2.96', 27), address: '198.51.100.14', echo: '192.0.2.96/27/27', why: 'map: gru-1' },
    { ecs: v4ecs('10.1.0.0', 16), address: '198.51.100.15', echo: '10.1.0.0/16/24', why: 'map /16 lhr-1, /24 below' },
  ]
  for (const tcp of [false, true]) {
    for (const c of cases) {
      const r = await ask(API, 'A', c.ecs, { tcp })
      t.equal(r.rcode, 'NOERROR')
      t.ok(r.aa, 'authoritative')
      t.same(r.answers.map((a) => a.data), [c.address], `${c.why} (${tcp ? 'tcp' : 'udp'})`)
      t.equal(r.ecs, c.echo, `ECS echo and scope: ${c.why}`)
      t.equal(r.answers[0]?.ttl, 60, 'max TTL for a map decision')
    }
  }
})

t.test('a subnet with no map entry gets the geographically nearest target, scope from the geo network', async (t) => {
  const cases = [
    { ecs: v4ecs('203.0.113.32', 27), address: '203.0.113.19', echo: '203.0.113.32/27/27', where: 'Tokyo: nrt-1' },
    { ecs: v4ecs('203.0.113.64', 27), address: '203.0.113.20', echo: '203.0.113.64/27/27', where: 'Sydney: syd-1' },
    { ecs: v4ecs('192.0.2.192', 27), address: '203.0.113.17', echo: '192.0.2.192/27/27', where: 'Johannesburg: jnb-1' },
    { ecs: v4ecs('192.0.2.128', 27), address: '198.51.100.15', echo: '192.0.2.128/27/27', where: 'London: lhr-1' },
  ]
  for (const c of cases) {
    const r = await ask(API, 'A', c.ecs)
    t.same(r.answers.map((a) => a.data), [c.address], c.where)
    t.equal(r.ecs, c.echo, `scope: ${c.where}`)
  }
})

t.test('ECS /0 and no ECS: the resolver address decides; /0 is echoed with scope 0', async (t) => {
  // 127.0.0.1 is in no map entry and no geo network: the default pool by capacity.
  const plain = await ask(API, 'A')
  const zero = await ask(API, 'A', v4ecs('0.0.0.0', 0))
  t.equal(plain.answers.length, 1)
  t.same(zero.answers.map((a) => a.data), plain.answers.map((a) => a.data), 'same decision as without ECS')
  t.equal(zero.ecs, '0.0.0.0/0/0')
  t.equal(plain.ecs, undefined, 'no ECS in, no ECS out')
  t.equal(plain.answers[0]?.ttl, 10, 'min TTL for a default-pool decision')
})

t.test('malformed ECS is FORMERR', async (t) => {
  const bad = {
    'unknown family 3': Buffer.from('00031800c00002', 'hex'),
    'IPv4 source 33': Buffer.from('00012100c000020100', 'hex'),
    'bits beyond the source prefix': Buffer.from('00011400c00002', 'hex'),
    'non-zero scope in a query': Buffer.from('00011810c00002', 'hex'),
    'truncated option': Buffer.from('0001', 'hex'),
  }
  for (const [what, raw] of Object.entries(bad)) {
    const r = await ask(API, 'A', undefined, { rawOption: raw })
    t.equal(r.rcode, 'FORMERR', what)
    t.same(r.answers, [], `${what}: no answer`)
  }
})

t.test('IPv6 and IPv4-mapped clients', async (t) => {
  const v6client = await ask(API, 'AAAA', { family: 2, source: 48, ip: '2001:db8:5::' })
  t.same(v6client.answers.map((a) => a.data), ['2001:db8:30::15'], 'map entry 2001:db8:5::/48: lhr-1')
  t.equal(v6client.ecs, '2001:db8:5::/48/48')
  const v6geo = await ask(API, 'AAAA', { family: 2, source: 56, ip: '2001:db8:a::' })
  t.same(v6geo.answers.map((a) => a.data), ['2001:db8:40::19'], 'geo Tokyo /48: nrt-1')
  t.equal(v6geo.ecs, '2001:db8:a::/56/48')
  const mapped = await ask(API, 'A', { family: 2, source: 122, ip: '::ffff:198.51.100.0' })
  t.same(mapped.answers.map((a) => a.data), ['192.0.2.11'], 'IPv4-mapped /122 = 198.51.100.0/26: sea-1')
  const overV6 = await ask(API, 'A', v4ecs('198.51.100.0', 26), { via: v6 })
  t.same(overV6.answers.map((a) => a.data), ['192.0.2.11'], 'over an IPv6 socket too')
})

t.test('AAAA, HTTPS and names under steered names', async (t) => {
  const aaaa = await ask(API, 'AAAA', v4ecs('192.0.2.192', 27))
  t.same(aaaa.answers.map((a) => a.data), ['2001:db8:40::18'], 'AAAA skips the nearest target without IPv6 (jnb-1): next nearest with one (Mumbai)')
  for (const type of ['HTTPS', 'TXT', 'MX']) {
    const r = await ask(API, type, v4ecs('198.51.100.0', 24))
    t.equal(r.rcode, 'NOERROR', `${type} at a steered name: the name exists`)
    t.same(r.answers, [], `${type}: no records`)
    t.same(r.authority, ['edge.example.net SOA'], `${type}: SOA in authority`)
    t.equal(r.ecs, '198.51.100.0/24/0', `${type}: negative answer, scope 0`)
  }
  const under = await ask(`x.${API}`, 'A', v4ecs('198.51.100.0', 24))
  t.equal(under.rcode, 'NXDOMAIN', 'a name under a steered name that the zone lacks')
  t.equal(under.ecs, '198.51.100.0/24/0')
  const srv = await ask(`_https._tcp.${API}`, 'SRV')
  t.equal(srv.answers[0]?.type, 'SRV', 'zone data under a steered name still answers')
  const cname = await ask('go.edge.example.net', 'A', v4ecs('198.51.100.0', 24))
  t.same(cname.answers.map((a) => `${a.type} ${a.data}`), [`CNAME ${API}`], 'a CNAME to a steered name is not chased')
  t.equal(cname.ecs, '198.51.100.0/24/0', 'static answer: scope 0')
  const video = await ask('video.edge.example.net', 'A', v4ecs('10.1.0.0', 16))
  t.equal(video.answers.length, 2, 'answers: 2 gives two targets')
})

t.test('static names echo ECS with scope 0', async (t) => {
  const r = await ask('www.edge.example.net', 'A', v4ecs('198.51.100.0', 24))
  t.same(r.answers.map((a) => a.data), ['192.0.2.10'])
  t.equal(r.ecs, '198.51.100.0/24/0')
})
