/**
 * Query logging: off by default (no line per query), and when `log.queries` is
 * on, one structured JSON line per query with client, name, type, ECS and rcode.
 */
import { PassThrough } from 'node:stream'
import dnsPacket from 'dns-packet'
import type { Answer } from 'dns-packet'
import t from 'tap'
import type { Test } from 'tap'
import { parseConfigText } from '../../src/config/index.js'
import { startServer } from '../../src/main.js'
import { queryUdp } from '../helpers/dns-client.js'
import { EXAMPLE_ZONE_FILE, isolationYaml } from '../helpers/test-server.js'

async function serverWithLog(t: Test, queries: boolean) {
  const out = new PassThrough()
  const lines: Record<string, unknown>[] = []
  let buffered = ''
  out.on('data', (c: Buffer) => {
    buffered += c.toString()
    const parts = buffered.split('\n')
    buffered = parts.pop() ?? ''
    for (const p of parts) if (p.trim()) lines.push(JSON.parse(p) as Record<string, unknown>)
  })
  const config = parseConfigText(
    `listen: ["127.0.0.1:0"]\nidentity: log-test\nzones: [{ origin: edge.example.net, file: ${JSON.stringify(EXAMPLE_ZONE_FILE)} }]\nlog: { level: info, queries: ${queries} }\n${isolationYaml(t)}`,
    { file: '/tmp/steerdns.yaml', env: {} },
  )
  const server = await startServer({ config, logDestination: out })
  t.teardown(() => server.close())
  const addr = server.listening[0]
  if (!addr) throw new Error('not listening')
  const ask = async (name: string, ecs?: string) => {
    const ecsOption = ecs ? [{ code: 8, family: 1, sourcePrefixLength: 24, scopePrefixLength: 0, ip: ecs }] : []
    const query = dnsPacket.encode({
      type: 'query',
      id: 321,
      questions: [{ name, type: 'A' }],
      additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, options: ecsOption } as unknown as Answer],
    })
    await queryUdp(addr.host, addr.port, query, 2000)
    await new Promise((r) => setImmediate(r))
  }
  return { lines, ask }
}

t.test('query logging is off by default', async (t) => {
  const { lines, ask } = await serverWithLog(t, false)
  await ask('www.edge.example.net')
  t.equal(lines.filter((l) => l['msg'] === 'query').length, 0)
  t.ok(lines.some((l) => l['msg'] === 'zone loaded'), 'other events are still logged')
})

t.test('log.queries: one structured line per query', async (t) => {
  const { lines, ask } = await serverWithLog(t, true)
  await ask('www.edge.example.net', '198.51.100.0')
  await ask('nope.edge.example.net')
  const q = lines.filter((l) => l['msg'] === 'query')
  t.equal(q.length, 2)
  t.match(q[0], { client: '127.0.0.1', transport: 'udp', qname: 'www.edge.example.net.', qtype: 1, rcode: 0, ecs: '198.51.100.0/24', node: 'log-test' })
  t.match(q[1], { qname: 'nope.edge.example.net.', rcode: 3 })
  t.notOk('ecs' in (q[1] ?? {}), 'no ecs field without ECS')
})
