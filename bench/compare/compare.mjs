// Side-by-side benchmark (issue 7): steerdns against gdnsd 3 (plugin_geoip)
// and Knot DNS on loopback with equivalent data (data.mjs), each server pinned
// to CPU 0 and dnsperf to CPU 1. For every server and query set: one run as
// fast as dnsperf goes (queries/s, server CPU per answered query) and one at a
// steady rate (10k/s: p50/p99 latency from dnsperf -v, CPU per query). Then
// steerdns alone: zone and map reloads (SIGHUP twice) at the steady rate and
// at full load, counting what dnsperf lost. Prints Markdown tables with the
// ratios the issue sets targets for.
//
// Use bench/compare/run.sh (installs dnsperf, gdnsd and knot when missing).
//   node bench/compare/compare.mjs [--seconds 10] [--rate 10000] [--repeat 1] [--servers knot,gdnsd,steerdns]
//     [--sets static,steered,ecs,mix] [--reload-seconds 12] [--no-reload] [--tree DIR] [--keep] [--out FILE]
import { spawnSync } from 'node:child_process'
import { cpus, tmpdir } from 'node:os'
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, mkdirSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath, URL } from 'node:url'
import { QTYPE, query } from './dns-wire.mjs'
import { prepareData, STEERED, writeQuerySets, ZONE } from './data.mjs'
import { runDnsperf, startServer } from './procs.mjs'

const repo = fileURLToPath(new URL('../..', import.meta.url))
const argv = process.argv.slice(2)
const flag = (name) => argv.includes(name)
const opt = (name, fallback) => {
  const i = argv.indexOf(name)
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : fallback
}
const SECONDS = Number(opt('--seconds', 10))
const RATE = Number(opt('--rate', 10_000))
const CLIENTS = Number(opt('--clients', 4))
const REPEAT = Number(opt('--repeat', 1))
const SERVERS = opt('--servers', 'knot,gdnsd,steerdns').split(',')
const SETS = opt('--sets', 'static,steered,ecs,mix').split(',')
const RELOAD_SECONDS = Number(opt('--reload-seconds', 12))
const WARMUP_SECONDS = Math.min(3, SECONDS)
// Knot serves the zone only: steered names have no equivalent there, so it runs the static set.
const SETS_FOR = { knot: ['static'], gdnsd: SETS, steerdns: SETS }
const ISSUE_FIGURES = { 'gdnsd/ecs': 4.7, 'knot/static': 5.1 }
const [SERVER_CPU, CLIENT_CPU] = cpus().length >= 2 ? [0, 1] : [undefined, undefined]

const loadAvg = () => Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0])
const loadAtStart = loadAvg()
const say = (text) => process.stderr.write(`${text}\n`)
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const randomPort = () => 20000 + Math.floor(Math.random() * 20000)

const work = mkdtempSync(join(tmpdir(), 'steerdns-compare-'))
const running = new Set()
async function stopAll() {
  for (const s of running) await s.stop()
  running.clear()
}
process.on('SIGINT', () => stopAll().then(() => process.exit(130)))
process.on('SIGTERM', () => stopAll().then(() => process.exit(143)))

/** The steerdns tree under test: HEAD exported and built in the work dir (others may be editing the checkout), or --tree as is. */
function prepareTree() {
  const given = opt('--tree')
  if (given) return { tree: resolve(given), label: `${resolve(given)} (as built)` }
  const tree = join(work, 'tree')
  mkdirSync(tree)
  const archive = spawnSync('sh', ['-c', `git -C "${repo}" archive HEAD | tar -x -C "${tree}"`], { encoding: 'utf8' })
  if (archive.status !== 0) throw new Error(`git archive failed: ${archive.stderr}`)
  symlinkSync(join(repo, 'node_modules'), join(tree, 'node_modules'))
  const commit = spawnSync('git', ['-C', repo, 'log', '-1', '--format=%h %cs'], { encoding: 'utf8' }).stdout.trim()
  say(`building steerdns ${commit} (HEAD) in ${tree}`)
  const built = spawnSync(process.execPath, [join(repo, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(tree, 'tsconfig.json')], { encoding: 'utf8' })
  if (built.status !== 0) throw new Error(`tsc failed:\n${built.stdout}${built.stderr}`)
  // The batched UDP addon (native/udp_batch.c): without it steerdns falls back to node:dgram and measures that instead.
  const native = spawnSync('npx', ['--no-install', 'node-gyp', 'rebuild', '--loglevel=warn'], { cwd: tree, encoding: 'utf8' })
  if (native.status !== 0) throw new Error(`node-gyp failed:\n${native.stdout}${native.stderr}`)
  return { tree, label: `HEAD ${commit}` }
}

function serverSpec(name, tree, data, port, round) {
  if (name === 'steerdns') {
    const config = data.writeSteerdnsConfig(port, join(work, `steerdns-state-${round}-${port}`))
    return { cmd: process.execPath, args: [join(tree, 'bin', 'steerdns.js'), 'serve', '--config', config, '--listen', `127.0.0.1:${port}`, '--api', 'off', '--log-level', 'warn'], cwd: tree }
  }
  if (name === 'gdnsd') return { cmd: 'gdnsd', args: ['-c', data.writeGdnsdConfig(port), 'start'], cwd: work }
  if (name === 'knot') return { cmd: 'knotd', args: ['-c', data.writeKnotConfig(port)], cwd: work }
  throw new Error(`unknown server ${name}`)
}

async function start(name, tree, data, round) {
  const port = randomPort()
  const spec = serverSpec(name, tree, data, port, round)
  const server = await startServer({ name, ...spec, port, probe: [`www.${ZONE}`, QTYPE.A], logFile: join(work, `${name}-${round}.log`), cpu: SERVER_CPU })
  running.add(server)
  return { ...server, port }
}

/** Sanity checks before measuring: static answers right, and (steering servers) answers per ECS subnet. */
async function verify(name, port, subnets) {
  const www = await query('127.0.0.1', port, `www.${ZONE}`, QTYPE.A)
  if (www?.addresses[0] !== '192.0.2.10') throw new Error(`${name}: www A answered ${JSON.stringify(www)}`)
  const nx = await query('127.0.0.1', port, `no-such-name.${ZONE}`, QTYPE.A)
  if (nx?.rcode !== 'NXDOMAIN') throw new Error(`${name}: expected NXDOMAIN, got ${JSON.stringify(nx)}`)
  if (name === 'knot') return undefined
  const answers = new Map()
  for (const subnet of subnets) {
    const reply = await query('127.0.0.1', port, STEERED, QTYPE.A, subnet)
    answers.set(subnet, reply ? `${reply.addresses.join(',')} /${reply.ecsScope}` : 'timeout')
  }
  const distinct = new Set([...answers.values()].map((a) => a.split(' ')[0]))
  if (distinct.size < 3) throw new Error(`${name}: ${STEERED} gave ${distinct.size} distinct answers over ${subnets.length} subnets: not steering by ECS`)
  return answers
}

const results = []
const verifications = {}
let subnetKinds = new Map()
const reloads = []
let treeLabel = ''

async function measure(tree, data, files, subnets) {
  for (let round = 1; round <= REPEAT; round++) {
    for (const name of SERVERS) {
      const server = await start(name, tree, data, round)
      try {
        const answers = await verify(name, server.port, subnets)
        if (answers) verifications[name] = answers
        const sets = SETS_FOR[name].filter((s) => SETS.includes(s))
        say(`${name} (round ${round}/${REPEAT}, pid ${server.pid}, port ${server.port}): warm-up ${WARMUP_SECONDS} s`)
        await runDnsperf({ port: server.port, file: files[sets.includes('mix') ? 'mix' : sets[0]], seconds: WARMUP_SECONDS, clients: CLIENTS, serverPid: server.pid, cpu: CLIENT_CPU })
        for (const set of sets) {
          const max = await runDnsperf({ port: server.port, file: files[set], seconds: SECONDS, clients: CLIENTS, serverPid: server.pid, cpu: CLIENT_CPU })
          const steady = await runDnsperf({ port: server.port, file: files[set], seconds: SECONDS, rate: RATE, clients: CLIENTS, verbose: true, serverPid: server.pid, cpu: CLIENT_CPU })
          results.push({ round, server: name, set, max, steady })
          say(
            `  ${set}: ${Math.round(max.qps)} q/s at ${max.serverCpuPct.toFixed(0)} % CPU, ${max.cpuUsPerQuery.toFixed(1)} µs/q; ` +
              `at ${RATE}/s ${steady.cpuUsPerQuery.toFixed(1)} µs/q, p50 ${steady.p50Us.toFixed(0)} µs, p99 ${steady.p99Us.toFixed(0)} µs, lost ${max.lost}/${steady.lost}`,
          )
        }
      } finally {
        await server.stop()
        running.delete(server)
      }
    }
  }
}

/** SIGHUP twice while dnsperf runs: each time the zone's serial and the map's version move on; both must show in answers. */
async function reloadRun(tree, data, files, rate) {
  const server = await start('steerdns', tree, data, `reload-${rate}`)
  const probeSubnet = '198.51.100.0/26'
  try {
    await runDnsperf({ port: server.port, file: files.mix, seconds: WARMUP_SECONDS, clients: CLIENTS, serverPid: server.pid, cpu: CLIENT_CPU })
    const during = async () => {
      const events = []
      const started = Date.now()
      for (const step of [1, 2]) {
        await sleep(started + (step * RELOAD_SECONDS * 1000) / 3 - Date.now())
        const serial = data.originalSerial + step
        const swapped = step === 1
        data.rewriteForReload(serial, (data.map.version ?? 1) + step, swapped)
        const sent = Date.now()
        server.signal('SIGHUP')
        const want = swapped ? '192.0.2.12' : '192.0.2.11'
        let zoneMs = NaN
        let mapMs = NaN
        while (Date.now() - sent < 5000 && !(zoneMs >= 0 && mapMs >= 0)) {
          const soa = await query('127.0.0.1', server.port, ZONE, QTYPE.SOA)
          if (!(zoneMs >= 0) && soa?.serial === serial) zoneMs = Date.now() - sent
          const api = await query('127.0.0.1', server.port, STEERED, QTYPE.A, probeSubnet)
          if (!(mapMs >= 0) && api?.addresses[0] === want) mapMs = Date.now() - sent
          await sleep(20)
        }
        events.push({ step, zoneMs, mapMs })
      }
      return events
    }
    const run = await runDnsperf({ port: server.port, file: files.mix, seconds: RELOAD_SECONDS, rate, clients: CLIENTS, verbose: rate > 0, serverPid: server.pid, cpu: CLIENT_CPU, during })
    reloads.push({ rate, run })
    say(`reload at ${rate > 0 ? `${rate}/s` : 'full load'}: lost ${run.lost}, ${JSON.stringify(run.during)}`)
  } finally {
    await server.stop()
    running.delete(server)
    data.rewriteForReload()
  }
}

const fmt = (n, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : '–')
const minOf = (rows, pick) => Math.min(...rows.map(pick).filter(Number.isFinite))

function report() {
  const lines = []
  const date = new Date().toISOString().replace(/\.\d+Z$/, 'Z')
  lines.push(`## steerdns vs gdnsd vs Knot — ${date}`)
  lines.push('')
  lines.push(
    `steerdns ${treeLabel}; gdnsd ${version('gdnsd')}; Knot ${version('knotd')}; dnsperf ${version('dnsperf')}. ` +
      `Server pinned to CPU ${SERVER_CPU ?? '(none)'}, dnsperf to CPU ${CLIENT_CPU ?? '(none)'}; ${CLIENTS} clients; runs of ${SECONDS} s; steady rate ${RATE}/s; ${REPEAT} round(s). ` +
      `Load average (1 min) on the ${cpus().length} CPUs: ${loadAtStart} at the start, ${loadAvg()} at the end` +
      (Math.max(loadAtStart, loadAvg()) > 1.5 ? ' — other work shared the machine: q/s and latency are depressed, CPU per query is the steadier figure.' : '.'),
  )
  lines.push('')
  lines.push(`| server | queries | q/s (max) | server CPU % (max) | CPU µs/query (max) | CPU µs/query (${RATE / 1000}k/s) | p50 µs (${RATE / 1000}k/s) | p99 µs (${RATE / 1000}k/s) | lost (max / ${RATE / 1000}k/s) | ratio |`)
  lines.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---|')
  const refFor = (r) => (r.set === 'static' ? ['knot', 'static'] : ['gdnsd', r.set])
  for (const r of results) {
    let ratio = ''
    if (r.server === 'steerdns') {
      const [refServer, refSet] = refFor(r)
      const ref = results.find((x) => x.round === r.round && x.server === refServer && x.set === refSet)
      if (ref) ratio = `CPU ${fmt(r.max.cpuUsPerQuery / ref.max.cpuUsPerQuery, 2)}× ${refServer}, p99 ${fmt(r.steady.p99Us / ref.steady.p99Us, 2)}×`
    }
    const label = REPEAT > 1 ? `${r.server} #${r.round}` : r.server
    lines.push(
      `| ${label} | ${r.set} | ${Math.round(r.max.qps)} | ${fmt(r.max.serverCpuPct, 0)} | ${fmt(r.max.cpuUsPerQuery)} | ${fmt(r.steady.cpuUsPerQuery)} | ` +
        `${fmt(r.steady.p50Us, 0)} | ${fmt(r.steady.p99Us, 0)} | ${r.max.lost} / ${r.steady.lost} | ${ratio} |`,
    )
  }
  lines.push('')
  lines.push('### Issue 7 targets' + (REPEAT > 1 ? ' (best of the rounds for each server: noise only adds)' : ''))
  lines.push('')
  lines.push('| target | steerdns | reference | ratio | limit | met |')
  lines.push('|---|---:|---:|---:|---:|---|')
  const rows = (server, set) => results.filter((r) => r.server === server && r.set === set)
  const target = (label, server, set, refServer, refSet, pick, limit, unit, digits = 1) => {
    const mine = minOf(rows(server, set), pick)
    const ref = minOf(rows(refServer, refSet), pick)
    if (!Number.isFinite(mine) || !Number.isFinite(ref)) return
    const ratio = mine / ref
    const verdict = limit === undefined ? ['–', '(information)'] : [`≤ ${limit}×`, ratio <= limit ? 'yes' : '**no**']
    lines.push(`| ${label} | ${fmt(mine, digits)} ${unit} | ${fmt(ref, digits)} ${unit} (${refServer}) | ${fmt(ratio, 2)}× | ${verdict.join(' | ')} |`)
  }
  target('CPU per steered query with ECS', 'steerdns', 'ecs', 'gdnsd', 'ecs', (r) => r.max.cpuUsPerQuery, 1.5, 'µs')
  target('CPU per static answer', 'steerdns', 'static', 'knot', 'static', (r) => r.max.cpuUsPerQuery, 1.5, 'µs')
  target(`p99 latency at ${RATE}/s, realistic mix`, 'steerdns', 'mix', 'gdnsd', 'mix', (r) => r.steady.p99Us, 2, 'µs', 0)
  target(`p99 latency at ${RATE}/s, steered with ECS`, 'steerdns', 'ecs', 'gdnsd', 'ecs', (r) => r.steady.p99Us, 2, 'µs', 0)
  target(`p50 latency at ${RATE}/s, realistic mix`, 'steerdns', 'mix', 'gdnsd', 'mix', (r) => r.steady.p50Us, undefined, 'µs', 0)
  for (const { rate, run } of reloads) {
    const events = (run.during ?? []).map((e) => `zone ${fmt(e.zoneMs, 0)} ms, map ${fmt(e.mapMs, 0)} ms`).join('; ')
    const serverErrors = run.responseCodes.match(/SERVFAIL \d+/)?.[0] ?? 'no SERVFAIL'
    lines.push(`| no loss across 2 SIGHUP reloads (zone + map) at ${rate > 0 ? `${rate}/s` : 'full load'} | ${run.lost} lost of ${run.sent} (${serverErrors}; took effect after: ${events}) | | | 0 lost | ${run.lost === 0 ? 'yes' : '**no**'} |`)
  }
  for (const [key, figure] of Object.entries(ISSUE_FIGURES)) {
    const [server, set] = key.split('/')
    const here = minOf(rows(server, set), (r) => r.max.cpuUsPerQuery)
    if (Number.isFinite(here)) lines.push(`| (machine check) ${server} ${set} vs the issue's ${figure} µs | | ${fmt(here)} µs | ${fmt(here / figure, 2)}× | | |`)
  }
  if (verifications.gdnsd && verifications.steerdns) {
    const parts = []
    for (const kind of ['map', 'geo', 'unknown']) {
      const subnets = [...verifications.steerdns.keys()].filter((s) => subnetKinds.get(s) === kind)
      const same = subnets.filter((s) => verifications.steerdns.get(s).split(' ')[0] === verifications.gdnsd.get(s)?.split(' ')[0]).length
      parts.push(`${same}/${subnets.length} inside ${kind === 'map' ? 'latency-map prefixes' : kind === 'geo' ? 'geo networks' : 'unknown networks'}`)
    }
    lines.push('')
    lines.push(
      `Equivalence check (A answers for ${STEERED} per ECS subnet, steerdns = gdnsd): ${parts.join(', ')}. ` +
        'Expected differences: unknown networks get the default pool, which steerdns spreads by capacity weight and gdnsd answers with its first datacenter; ' +
        'a /24 source over a longer map entry (198.51.100.0/26, 203.0.113.0/27) is decided by the /24 in steerdns (RFC 7871 scope deeper) and by the first address in gdnsd; ' +
        'near-equal map candidates (10.1.2.0/24) share load in steerdns.',
    )
  }
  return lines.join('\n')
}

function version(cmd) {
  if (cmd === 'gdnsd') return /gdnsd version (\S+)/.exec(spawnSync('gdnsd', ['-c', '/nonexistent', 'checkconf'], { encoding: 'utf8' }).stderr)?.[1] ?? '?'
  if (cmd === 'knotd') return /(\d+\.\d+\.\d+)/.exec(spawnSync('knotd', ['--version'], { encoding: 'utf8' }).stdout)?.[1] ?? '?'
  return /Version (\S+)/.exec(spawnSync('dnsperf', ['-h'], { encoding: 'utf8' }).stderr + spawnSync('dnsperf', ['-h'], { encoding: 'utf8' }).stdout)?.[1] ?? '?'
}

try {
  if (SERVER_CPU === undefined) say('warning: fewer than 2 CPUs: server and dnsperf are not pinned apart, CPU figures include contention')
  const { tree, label } = prepareTree()
  treeLabel = label
  if (!existsSync(join(tree, 'dist', 'cli.js'))) throw new Error(`${tree}/dist is not built (npm run build)`)
  const data = prepareData(tree, join(work, 'data'))
  const { files, subnets } = writeQuerySets(data)
  subnetKinds = subnets
  say(`query sets in ${data.dir}; ${subnets.size} distinct ECS subnets`)
  await measure(tree, data, files, [...subnets.keys()].slice(0, 300))
  if (!flag('--no-reload') && SERVERS.includes('steerdns')) {
    await reloadRun(tree, data, files, RATE)
    await reloadRun(tree, data, files, 0)
  }
  const text = report()
  process.stdout.write(`${text}\n`)
  const out = opt('--out')
  if (out) writeFileSync(out, `${text}\n`)
} finally {
  await stopAll()
  if (flag('--keep')) say(`kept ${work}`)
  else rmSync(work, { recursive: true, force: true })
}
