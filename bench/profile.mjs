// Where steerdns spends its CPU under load: starts the built tree's server with
// --cpu-prof on the comparison bench's data (bench/compare/data.mjs), runs one
// dnsperf query set at full speed, stops the server, and prints the functions
// with the most self time. For finding the next thing to make faster, not for
// figures to quote (the profiler itself costs a few percent).
//   node bench/profile.mjs [--set static|steered|ecs|mix] [--seconds 5] [--tree .] [--top 30]
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { QTYPE } from './compare/dns-wire.mjs'
import { prepareData, writeQuerySets, ZONE } from './compare/data.mjs'
import { runDnsperf, startServer } from './compare/procs.mjs'

const argv = process.argv.slice(2)
const opt = (name, fallback) => {
  const i = argv.indexOf(name)
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : fallback
}
const SET = opt('--set', 'ecs')
const SECONDS = Number(opt('--seconds', 5))
const TOP = Number(opt('--top', 30))
const tree = resolve(opt('--tree', '.'))
const work = mkdtempSync(join(tmpdir(), 'steerdns-profile-'))
try {
  const data = prepareData(tree, join(work, 'data'))
  const { files } = writeQuerySets(data)
  const port = 20000 + Math.floor(Math.random() * 20000)
  const config = data.writeSteerdnsConfig(port, join(work, 'state'))
  const profDir = join(work, 'prof')
  const server = await startServer({
    name: 'steerdns',
    cmd: process.execPath,
    args: ['--cpu-prof', '--cpu-prof-dir', profDir, join(tree, 'bin', 'steerdns.js'), 'serve', '--config', config, '--listen', `127.0.0.1:${port}`, '--api', 'off', '--log-level', 'warn'],
    cwd: tree,
    port,
    probe: [`www.${ZONE}`, QTYPE.A],
    logFile: join(work, 'server.log'),
    cpu: 0,
  })
  await runDnsperf({ port, file: files[SET], seconds: 2, serverPid: server.pid, cpu: 1 })
  const run = await runDnsperf({ port, file: files[SET], seconds: SECONDS, serverPid: server.pid, cpu: 1 })
  process.stdout.write(`${SET}: ${Math.round(run.qps)} q/s, ${run.cpuUsPerQuery.toFixed(1)} µs CPU/query (profiled), lost ${run.lost}\n`)
  await server.stop()
  const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'))
  const profile = JSON.parse(readFileSync(join(profDir, file), 'utf8'))
  const dtById = new Map()
  profile.samples.forEach((id, i) => dtById.set(id, (dtById.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)))
  const total = [...dtById.values()].reduce((a, b) => a + b, 0)
  const byFunction = new Map()
  for (const node of profile.nodes) {
    const { functionName, url, lineNumber } = node.callFrame
    const key = `${functionName || '(anonymous)'} ${url.replace(/^.*\/(dist|node_modules)\//, '$1/').replace(/^node:/, '')}:${lineNumber + 1}`
    byFunction.set(key, (byFunction.get(key) ?? 0) + (dtById.get(node.id) ?? 0))
  }
  const rows = [...byFunction.entries()].sort((a, b) => b[1] - a[1]).slice(0, TOP)
  for (const [key, us] of rows) process.stdout.write(`${((100 * us) / total).toFixed(1).padStart(5)} %  ${key}\n`)
} finally {
  rmSync(work, { recursive: true, force: true })
}
