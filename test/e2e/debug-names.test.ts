/**
 * Debug names over real UDP against the example configuration: whoami.<zone>
 * reflects the resolver and the ECS subnet (with the right scope and TTL 0),
 * _steer.<steered name> returns the decision trace to sources in
 * guard.acl.debug and REFUSED to everyone else, and the trace agrees with
 * the answer the steered name itself gives.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import dnsPacket from 'dns-packet'
import type { Answer } from 'dns-packet'
import t from 'tap'
import { loadConfigFile } from '../../src/config/index.js'
import type { SteerdnsConfig } from '../../src/config/index.js'
import { startServer } from '../../src/main.js'
import type { RunningServer } from '../../src/main.js'
import { queryUdp } from '../helpers/dns-client.js'
import { REPO_ROOT } from '../helpers/steerdns-process.js'

const example = await loadConfigFile(join(REPO_ROOT, 'steerdns.yaml'))

async function start(acl: Partial<SteerdnsConfig['guard']['acl']>): Promise<RunningServer> {
  const stateDir = mkdtempSync(join(tmpdir(), 'steerdns-debug-'))
  t.teardown(() => rmSync(stateDir, { recursive: true, force: true }))
  const server = await startServer({
    config: {
      ...example,
      listen: ['127.0.0.1:0'],
      guard: { ...example.guard, acl: { ...example.guard.acl, ...acl } },
      api: { ...example.api, listen: '' },
      state: { dir: stateDir },
    },
    logDestination: new PassThrough(),
  })
  t.teardown(() => server.close())
  return server
}

const open = await start({})
const closed = await start({ debug: ['10.0.0.0/8'] })

interface Reply {
  rcode: string
  answers: { type: string; ttl: number; data: string[] }[]
  ecs: string | undefined
}

async function ask(server: RunningServer, name: string, type: string, subnet?: string): Promise<Reply> {
  const bound = server.listening[0]
  if (!bound) throw new Error('not listening')
  const [ip, source] = (subnet ?? '').split('/')
  const options = subnet ? [{ code: 8, family: 1, sourcePrefixLength: Number(source), scopePrefixLength: 0, ip }] : []
  const query = dnsPacket.encode({
    type: 'query',
    id: 9,
    questions: [{ name, type: type as dnsPacket.RecordType }],
    additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, options } as unknown as Answer],
  })
  const p = dnsPacket.decode(await queryUdp(bound.host, bound.port, query, 2000)) as dnsPacket.DecodedPacket & { rcode?: string }
  const opt = (p.additionals ?? []).find((a) => a.type === 'OPT') as { options?: { code: number; ip?: string; sourcePrefixLength?: number; scopePrefixLength?: number }[] } | undefined
  const ecs = opt?.options?.find((o) => o.code === 8)
  return {
    rcode: p.rcode ?? '',
    answers: (p.answers ?? []).map((a) => {
      const data = (a as { data?: unknown }).data
      return { type: a.type, ttl: (a as { ttl?: number }).ttl ?? -1, data: Array.isArray(data) ? data.map((d) => Buffer.from(d as Buffer).toString()) : [String(data)] }
    }),
    ecs: ecs ? `${ecs.ip}/${ecs.sourcePrefixLength}/${ecs.scopePrefixLength}` : undefined,
  }
}

t.test('whoami reflects the resolver and the ECS subnet it saw', async (t) => {
  const a = await ask(open, 'whoami.edge.example.net', 'A')
  t.same(a.answers.map((x) => x.data[0]), ['127.0.0.1'], 'A: the resolver address')
  t.equal(a.answers[0]?.ttl, 0, 'TTL 0: never cached')
  const txt = await ask(open, 'whoami.edge.example.net', 'TXT', '198.51.100.7/24')
  t.same(txt.answers[0]?.data, ['resolver=127.0.0.1', 'ecs=198.51.100.0/24', 'node=steerdns-example-1'])
  t.equal(txt.ecs, '198.51.100.0/24/24', 'scope = source: the TXT depends on the subnet')
  t.same((await ask(open, 'whoami.edge.example.net', 'TXT')).answers[0]?.data, ['resolver=127.0.0.1', 'ecs=none', 'node=steerdns-example-1'])
  const aaaa = await ask(open, 'whoami.edge.example.net', 'AAAA')
  t.equal(aaaa.rcode, 'NOERROR')
  t.same(aaaa.answers, [], 'AAAA from an IPv4 resolver: NODATA')
  t.same((await ask(open, 'whoami.2.0.192.in-addr.arpa', 'A')).answers.map((x) => x.data[0]), ['127.0.0.1'], 'in every served zone')
  t.equal((await ask(closed, 'whoami.edge.example.net', 'A')).answers.length, 1, 'open to everyone, whatever the debug ACL')
})

t.test('_steer.<name> TXT is the decision trace, consistent with the answer', async (t) => {
  const trace = await ask(open, '_steer.api.edge.example.net', 'TXT', '198.51.100.0/24')
  t.equal(trace.rcode, 'NOERROR')
  const strings = trace.answers[0]?.data ?? []
  t.equal(strings[0], 'node=steerdns-example-1')
  t.ok(strings.includes('key=198.51.100.0/24 source=ecs'), 'client key and source')
  t.ok(strings.includes('rule=map matched=198.51.100.0/24'), 'rule and matched prefix')
  t.ok(strings.includes('best=ord-1 score=14ms samples=220'), 'best target with score and samples')
  t.ok(strings.includes('runner-up=sea-1 score=21.5ms samples=140'), 'runner-up')
  t.ok(strings.some((s) => s.startsWith('map=v1 ')), 'map version')
  t.ok(strings.some((s) => s.startsWith('ttl=60 ')), 'TTL with its reason')
  const answer = await ask(open, 'api.edge.example.net', 'A', '198.51.100.0/24')
  t.ok(strings.includes(`answer=${answer.answers.map((a) => a.data[0]).join(',')} targets=ord-1`), 'the trace names the address the name answers')
  t.equal(trace.ecs, '198.51.100.0/24/24')
  t.equal(trace.answers[0]?.ttl, 0)

  const resolverKey = (await ask(open, '_steer.api.edge.example.net', 'TXT')).answers[0]?.data ?? []
  t.ok(resolverKey.includes('key=127.0.0.1/32 source=resolver'), 'without ECS the resolver decides')
})

t.test('_steer names are refused outside guard.acl.debug', async (t) => {
  const refused = await ask(closed, '_steer.api.edge.example.net', 'TXT', '198.51.100.0/24')
  t.equal(refused.rcode, 'REFUSED')
  t.same(refused.answers, [])
  t.equal((await ask(closed, 'api.edge.example.net', 'A', '198.51.100.0/24')).answers.length, 1, 'the steered name itself still answers')
})
