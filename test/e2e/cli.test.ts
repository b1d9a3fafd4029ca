/**
 * The command line as operators' scripts use it: exit codes and the
 * file:line output of check-zone, configuration errors listed with their
 * paths, and `serve --zone ORIGIN=FILE` without a config file.
 */
import { spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import dnsPacket from 'dns-packet'
import t from 'tap'
import { encodeQuery, queryTcp, queryUdp } from '../helpers/dns-client.js'
import { getFreePort } from '../helpers/free-port.js'
import { REPO_ROOT, startSteerdns } from '../helpers/steerdns-process.js'

const BIN = join(REPO_ROOT, 'bin', 'steerdns.js')

function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()))
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
    child.once('error', reject)
    child.once('exit', (code) => resolve({ code, stdout, stderr }))
  })
}

const tmp = await mkdtemp(join(tmpdir(), 'steerdns-cli-'))
t.teardown(() => rm(tmp, { recursive: true, force: true }))

t.test('check-zone: a good zone exits 0', async (t) => {
  const r = await runCli(['check-zone', 'edge.example.net', join(REPO_ROOT, 'zones', 'edge.example.net.zone')])
  t.equal(r.code, 0)
  t.match(r.stdout, /zone edge\.example\.net: loaded \d+ records, OK/)
})

t.test('check-zone: every error listed as file:line, exit non-zero', async (t) => {
  const file = join(tmp, 'broken.zone')
  await writeFile(
    file,
    [
      '$TTL 300', // 1
      '@ SOA ns hostmaster 1 7200 900 1209600 60', // 2
      '@ NS ns', // 3
      'ns A 192.0.2.1', // 4
      'www A 192.0.2.256', // 5: bad address
      'mx MX ten mail', // 6: bad preference
      'alias CNAME www', // 7
      'alias A 192.0.2.2', // 8: CNAME and other data
      'other.invalid. A 192.0.2.3', // 9: out of zone
    ].join('\n') + '\n',
  )
  const r = await runCli(['check-zone', 'example.test', file])
  t.not(r.code, 0)
  for (const line of [5, 6, 9]) t.match(r.stdout, `${file}:${line}: error:`, `line ${line} reported`)
  t.ok(r.stdout.includes(`${file}:7: error:`) || r.stdout.includes(`${file}:8: error:`), 'CNAME exclusivity reported')
})

t.test('check-zone: a missing file is an error, not a crash', async (t) => {
  const r = await runCli(['check-zone', 'example.test', join(tmp, 'nope.zone')])
  t.equal(r.code, 1)
  t.match(r.stdout, 'nope.zone')
})

t.test('serve: a bad config is rejected with every problem and its path', async (t) => {
  const file = join(tmp, 'bad.yaml')
  await writeFile(file, 'listen: ["127.0.0.1:99999"]\nzones: [{ origin: a.test }]\nguard: { tcp: { maxPerClient: 0 } }\n')
  const r = await runCli(['serve', '--config', file])
  t.equal(r.code, 1)
  t.match(r.stderr, `${file}:2: zones[0].file: is required`)
  t.match(r.stderr, `${file}:3: guard.tcp.maxPerClient:`)
  t.match(r.stderr, 'listen[0]')
})

t.test('serve: unknown flags are refused with usage', async (t) => {
  const r = await runCli(['serve', '--frobnicate'])
  t.equal(r.code, 2)
  t.match(r.stderr, 'usage:')
})

t.test('serve --zone ORIGIN=FILE --listen HOST:PORT serves without a config file, on UDP and TCP', async (t) => {
  const port = await getFreePort()
  const server = await startSteerdns([
    'serve',
    '--zone',
    `edge.example.net=${join(REPO_ROOT, 'zones', 'edge.example.net.zone')}`,
    '--listen',
    `127.0.0.1:${port}`,
  ])
  t.teardown(() => server.stop())
  const q = encodeQuery({ id: 99, name: 'www.edge.example.net', qtype: 1 })
  for (const [transport, reply] of [
    ['udp', await queryUdp('127.0.0.1', port, q, 2000)],
    ['tcp', await queryTcp('127.0.0.1', port, q, 2000)],
  ] as const) {
    const p = dnsPacket.decode(reply)
    t.equal(p.rcode, 'NOERROR', `${transport} rcode`)
    t.same((p.answers ?? []).map((a) => (a as { data: unknown }).data), ['192.0.2.10'], `${transport} answer`)
  }
  // Only the --zone zone is served: the example's reverse zone is not.
  const other = dnsPacket.decode(await queryUdp('127.0.0.1', port, encodeQuery({ id: 5, name: '10.2.0.192.in-addr.arpa', qtype: 12 }), 2000))
  t.equal(other.rcode, 'REFUSED')
  const stopped = await server.stop()
  t.equal(stopped.code, 0, 'SIGTERM exits 0')
})

t.test('serve: SIGHUP reloads zone files; a broken file keeps the old data and names file:line', async (t) => {
  const file = join(tmp, 'hup.test.zone')
  const zone = (address: string, extra = '') =>
    `$TTL 60\n@ SOA ns hostmaster 1 7200 900 1209600 60\n@ NS ns\nns A 192.0.2.1\nwww A ${address}\n${extra}`
  await writeFile(file, zone('192.0.2.10'))
  const port = await getFreePort()
  // Polling off: only the signal may reload.
  const config = join(tmp, 'hup.yaml')
  await writeFile(config, `listen: ["127.0.0.1:${port}"]\nzones: [{ origin: hup.test, file: hup.test.zone }]\ndns: { zonePollIntervalMs: 0 }\n`)
  const server = await startSteerdns(['serve', '--config', config], { probe: { host: '127.0.0.1', port } })
  t.teardown(() => server.stop())
  const www = async () => {
    const p = dnsPacket.decode(await queryUdp('127.0.0.1', port, encodeQuery({ id: 1, name: 'www.hup.test', qtype: 1 }), 2000))
    return (p.answers ?? []).map((a) => String((a as { data: unknown }).data))
  }
  const waitFor = async (want: string, logged: RegExp) => {
    for (let i = 0; i < 100 && !logged.test(server.stdout()); i++) await new Promise((r) => setTimeout(r, 50))
    t.match(server.stdout(), logged)
    t.same(await www(), [want])
  }
  t.same(await www(), ['192.0.2.10'])

  await writeFile(file, zone('192.0.2.20'))
  process.kill(server.pid, 'SIGHUP')
  await waitFor('192.0.2.20', /"version":2,"zones":1,"msg":"zones published"/)

  await writeFile(file, zone('192.0.2.30', 'bad A 192.0.2\n'))
  process.kill(server.pid, 'SIGHUP')
  await waitFor('192.0.2.20', /previous version keeps serving/)
  t.match(server.stdout(), `${file}:6:`, 'the bad line is named')
})

t.test('explain: the decision and its trace from the example configuration', async (t) => {
  const human = await runCli(['explain', 'api.edge.example.net', '--client', '198.51.100.0/26'])
  t.equal(human.code, 0, human.stderr)
  t.match(human.stdout, 'answer: 192.0.2.11 (sea-1)')
  t.match(human.stdout, 'rule:   map, matched 198.51.100.0/26')
  t.match(human.stdout, 'scope:  /26')
  const json = await runCli(['explain', 'api.edge.example.net', '--client', '203.0.113.40', '--json'])
  t.equal(json.code, 0, json.stderr)
  const e = JSON.parse(json.stdout) as { answer: string[]; scopePrefixLen: number; ttlSec: number; trace: { rule: string; geo: { city: string } } }
  t.same(e.answer, ['203.0.113.19'])
  t.equal(e.trace.rule, 'geo')
  t.equal(e.trace.geo.city, 'Tokyo')
  t.equal(e.scopePrefixLen, 27)
  const resolverOnly = await runCli(['explain', 'api.edge.example.net', '--resolver', '10.1.2.3', '--json'])
  t.match(JSON.parse(resolverOnly.stdout), { trace: { keySource: 'resolver', key: '10.1.2.3/32', matched: '10.1.2.0/24' } })
  const notSteered = await runCli(['explain', 'www.edge.example.net', '--client', '198.51.100.0/24'])
  t.equal(notSteered.code, 1)
  t.match(notSteered.stderr, 'not a steered name')
  const usage = await runCli(['explain', 'api.edge.example.net'])
  t.equal(usage.code, 2, 'a client or resolver is required')
})

t.test('serve --map: a bad map file is refused with every problem and its JSON path', async (t) => {
  const file = join(tmp, 'bad-map.json')
  await writeFile(
    file,
    JSON.stringify({
      version: 3,
      entries: [
        { prefix: '198.51.100.0/24', targets: [{ id: 'sea-1', score: 10, samples: 5 }] },
        { prefix: '198.51.100.1/24', targets: [{ id: 'nope-9', score: 10, samples: 5 }] },
        { prefix: '198.51.100.0/24', targets: [{ id: 'ord-1', score: 1, samples: 5 }] },
        { prefix: '203.0.113.0/24', targets: [{ id: 'ord-1', score: -1, samples: 5 }] },
      ],
    }),
  )
  const r = await runCli(['serve', '--map', file, '--listen', '127.0.0.1:0', '--api', 'off', '--state', join(tmp, 'state')])
  t.equal(r.code, 1)
  t.match(r.stderr, 'entries[1].prefix')
  t.match(r.stderr, 'entries[1].targets[0].id')
  t.match(r.stderr, 'entries[2].prefix', 'duplicate prefix')
  t.match(r.stderr, 'entries[3].targets[0].score')
})
