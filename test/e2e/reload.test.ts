/**
 * Zone reloads over real sockets: SIGHUP-style reloads and changed-file polling
 * publish new data atomically; a zone with errors is reported with file and line
 * and its previous version keeps serving; queries sent while reloads run are all
 * answered.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import dnsPacket from 'dns-packet'
import t from 'tap'
import type { Test } from 'tap'
import { parseConfigText } from '../../src/config/index.js'
import { startServer } from '../../src/main.js'
import type { RunningServer } from '../../src/main.js'
import { encodeQuery, queryUdp } from '../helpers/dns-client.js'

const zoneText = (serial: number, address: string, extra = '') => `
$ORIGIN reload.test.
$TTL 60
@    SOA ns hostmaster ${serial} 7200 900 1209600 60
@    NS  ns
ns   A   192.0.2.1
www  A   ${address}
${extra}
`

async function aRecord(server: RunningServer, name: string): Promise<string[]> {
  const addr = server.listening[0]
  if (!addr) throw new Error('not listening')
  const reply = await queryUdp(addr.host, addr.port, encodeQuery({ id: 7, name, qtype: 1 }), 2000)
  const packet = dnsPacket.decode(reply)
  return (packet.answers ?? []).map((a) => String((a as { data: unknown }).data))
}

async function setup(t: Test, pollMs: number) {
  const dir = await mkdtemp(join(tmpdir(), 'steerdns-reload-'))
  const file = join(dir, 'reload.test.zone')
  await writeFile(file, zoneText(1, '192.0.2.10'))
  const logs = new PassThrough()
  let logText = ''
  logs.on('data', (c: Buffer) => (logText += c.toString()))
  const config = parseConfigText(
    `listen: ["127.0.0.1:0"]\nidentity: reload-test\nzones: [{ origin: reload.test, file: ${JSON.stringify(file)} }]\ndns: { zonePollIntervalMs: ${pollMs} }\nlog: { level: info }\napi: { listen: "" }`,
    { file: join(dir, 'steerdns.yaml'), env: {} },
  )
  const server = await startServer({ config, logDestination: logs })
  t.teardown(async () => {
    await server.close()
    await rm(dir, { recursive: true, force: true })
  })
  return { server, file, logs: () => logText }
}

t.test('reload publishes new data; a broken zone keeps the previous version serving', async (t) => {
  const { server, file, logs } = await setup(t, 0)
  t.same(await aRecord(server, 'www.reload.test'), ['192.0.2.10'])

  await writeFile(file, zoneText(2, '192.0.2.20'))
  const ok = await server.reload()
  t.equal(ok[0]?.status, 'loaded')
  t.equal(ok[0]?.serial, 2)
  t.same(await aRecord(server, 'www.reload.test'), ['192.0.2.20'], 'new address after reload')

  // Line 8 of the new text has bad rdata; CNAME and A at the same name is an error too.
  await writeFile(file, zoneText(3, '192.0.2.30', 'bad  A   300.1.2.3\nwww  CNAME ns'))
  const kept = await server.reload()
  t.equal(kept[0]?.status, 'kept')
  const lines = kept[0]?.problems.filter((p) => p.severity === 'error').map((p) => `${p.file}:${p.line}`) ?? []
  t.ok(lines.includes(`${file}:8`), `bad address reported at ${file}:8 (got ${lines.join(', ')})`)
  t.ok(lines.some((l) => l === `${file}:9` || l === `${file}:7`), 'CNAME conflict reported with its line')
  t.same(await aRecord(server, 'www.reload.test'), ['192.0.2.20'], 'previous version still serving')
  t.match(logs(), /previous version keeps serving/)
  t.match(logs(), new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:8`), 'the log names file and line')
})

t.test('a changed zone file reloads by itself (polling)', async (t) => {
  const { server, file } = await setup(t, 50)
  t.same(await aRecord(server, 'www.reload.test'), ['192.0.2.10'])
  await writeFile(file, zoneText(2, '192.0.2.40'))
  let answer: string[] = []
  for (let i = 0; i < 200; i++) {
    answer = await aRecord(server, 'www.reload.test')
    if (answer[0] === '192.0.2.40') break
    await new Promise((r) => setTimeout(r, 25))
  }
  t.same(answer, ['192.0.2.40'], 'the poll picked up the change')
})

t.test('no query is dropped while zones reload', async (t) => {
  const { server, file } = await setup(t, 0)
  const addr = server.listening[0]
  if (!addr) throw new Error('not listening')
  let reloads = 0
  let stop = false
  const reloader = (async () => {
    for (let serial = 10; !stop; serial++) {
      await writeFile(file, zoneText(serial, serial % 2 ? '192.0.2.50' : '192.0.2.51'))
      await server.reload()
      reloads++
    }
  })()
  let answered = 0
  const sent = 1500
  for (let i = 0; i < sent; i++) {
    const reply = dnsPacket.decode(await queryUdp(addr.host, addr.port, encodeQuery({ id: i, name: 'www.reload.test', qtype: 1 }), 2000))
    const data = String((reply.answers?.[0] as { data?: unknown } | undefined)?.data)
    if (reply.id === i && reply.rcode === 'NOERROR' && (data === '192.0.2.50' || data === '192.0.2.51' || data === '192.0.2.10')) answered++
  }
  stop = true
  await reloader
  t.ok(reloads >= 5, `reloads happened during the run (${reloads})`)
  t.equal(answered, sent, 'every query answered with a complete zone version')
})

t.test('SIGHUP-style reload re-reads the map file; a bad map keeps the previous map serving', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'steerdns-map-reload-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const zone = join(dir, 'reload.test.zone')
  const mapFile = join(dir, 'map.json')
  await writeFile(zone, zoneText(1, '192.0.2.10'))
  const writeMap = (version: number, best: string) =>
    writeFile(mapFile, JSON.stringify({ version, entries: [{ prefix: '0.0.0.0/0', targets: [{ id: best, score: 5, samples: 10 }] }] }))
  await writeMap(1, 'a')
  const config = parseConfigText(
    [
      'listen: ["127.0.0.1:0"]',
      `zones: [{ origin: reload.test, file: ${JSON.stringify(zone)} }]`,
      'dns: { zonePollIntervalMs: 0 }',
      'log: { level: silent }',
      'targets:',
      '  - { id: a, ipv4: [192.0.2.101], location: { lat: 0, lon: 0 } }',
      '  - { id: b, ipv4: [192.0.2.102], location: { lat: 0, lon: 0 } }',
      'services: [{ name: steered.reload.test, pool: [a, b] }]',
      `map: { file: ${JSON.stringify(mapFile)} }`,
      'api: { listen: "" }',
    ].join('\n'),
    { file: join(dir, 'steerdns.yaml'), env: {} },
  )
  const server = await startServer({ config, logDestination: new PassThrough() })
  t.teardown(() => server.close())
  t.same(await aRecord(server, 'steered.reload.test'), ['192.0.2.101'], 'map version 1: target a')

  await writeMap(2, 'b')
  await server.reload()
  t.same(await aRecord(server, 'steered.reload.test'), ['192.0.2.102'], 'map version 2: target b')

  await writeFile(mapFile, JSON.stringify({ version: 3, entries: [{ prefix: '0.0.0.0/0', targets: [{ id: 'zz', score: 5, samples: 1 }] }] }))
  await server.reload()
  t.same(await aRecord(server, 'steered.reload.test'), ['192.0.2.102'], 'a map naming an unknown target is refused: version 2 keeps serving')
  t.equal(server.steering.current().map.version, 2)
})
