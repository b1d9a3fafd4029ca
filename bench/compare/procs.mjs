// Processes for the comparison bench: a server pinned to one core, its CPU
// time, dnsperf pinned to the other core, and dnsperf's report. Every child
// is started here by PID, bounded in time, and stopped by that PID only.
import { spawn } from 'node:child_process'
import { createWriteStream, readFileSync } from 'node:fs'
import { query } from './dns-wire.mjs'

const TICKS_PER_SEC = 100 // USER_HZ on Linux

/** CPU seconds (user + system, all threads) a process has used: /proc/PID/stat fields 14 and 15. */
export function cpuSec(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SEC
}

/** `taskset -c CPU cmd args...` when pinning is possible (taskset execs, so the PID is the command's). */
export function pinned(cpu, cmd, args) {
  return cpu === undefined ? [cmd, args] : ['taskset', ['-c', String(cpu), cmd, ...args]]
}

/**
 * Starts a server and waits until it answers `probe` ([name, qtype]) on 127.0.0.1:PORT.
 * Returns { pid, stop() }; throws (after stopping it) when it does not answer within 20 s.
 */
export async function startServer({ name, cmd, args, cwd, port, probe, logFile, cpu }) {
  const [file, argv] = pinned(cpu, cmd, args)
  const log = createWriteStream(logFile)
  const child = spawn(file, argv, { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
  child.stdout.pipe(log)
  child.stderr.pipe(log)
  let exited = false
  const exit = new Promise((resolve) => child.on('exit', () => ((exited = true), resolve())))
  const stop = async () => {
    if (exited) return
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
    await exit
    clearTimeout(timer)
  }
  const deadline = Date.now() + 20_000
  while (Date.now() < deadline && !exited) {
    const reply = await query('127.0.0.1', port, probe[0], probe[1])
    if (reply) return { pid: child.pid, stop, signal: (s) => child.kill(s) }
    await new Promise((r) => setTimeout(r, 200))
  }
  await stop()
  throw new Error(`${name} did not answer on 127.0.0.1:${port} within 20 s (log: ${logFile})`)
}

function num(text, re) {
  const m = re.exec(text)
  return m ? Number(m[1]) : NaN
}

function percentile(sorted, p) {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]
}

/**
 * Runs dnsperf (binary input, -B) against 127.0.0.1:PORT for `seconds`, at
 * `rate` queries/s or as fast as it can (rate 0), and measures the server's
 * CPU over exactly that run. With `verbose`, every reply's latency (dnsperf -v)
 * gives p50/p99. Killed if it outlives its limit by 15 s.
 */
export async function runDnsperf({ port, file, seconds, rate = 0, clients = 4, outstanding = 100, verbose = false, serverPid, cpu, during }) {
  const args = ['-B', '-d', file, '-s', '127.0.0.1', '-p', String(port), '-l', String(seconds), '-c', String(clients), '-q', String(outstanding), '-t', '2']
  if (rate > 0) args.push('-Q', String(rate))
  if (verbose) args.push('-v')
  const [cmd, argv] = pinned(cpu, 'dnsperf', args)
  const cpuBefore = cpuSec(serverPid)
  const started = performance.now()
  const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] })
  const killer = setTimeout(() => child.kill('SIGKILL'), (seconds + 15) * 1000)
  let stdout = ''
  let stderr = ''
  const latencies = []
  const rcodes = {}
  let partial = ''
  child.stdout.on('data', (chunk) => {
    if (!verbose) {
      stdout += chunk
      return
    }
    const lines = (partial + chunk).split('\n')
    partial = lines.pop()
    for (const line of lines) {
      if (line.startsWith('> ')) {
        const parts = line.split(' ')
        const latency = Number(parts[parts.length - 1])
        rcodes[parts[1]] = (rcodes[parts[1]] ?? 0) + 1
        if (Number.isFinite(latency) && parts[1] !== 'T') latencies.push(latency)
      } else stdout += `${line}\n`
    }
  })
  child.stderr.on('data', (chunk) => (stderr += chunk))
  const duringResult = during ? during() : undefined
  const code = await new Promise((resolve) => child.on('exit', (c) => resolve(c)))
  clearTimeout(killer)
  const wallSec = (performance.now() - started) / 1000
  const serverCpuSec = cpuSec(serverPid) - cpuBefore
  if (code !== 0) throw new Error(`dnsperf exited ${code}: ${stderr.slice(0, 500)}`)
  const completed = num(stdout, /Queries completed:\s+(\d+)/)
  latencies.sort((a, b) => a - b)
  return {
    sent: num(stdout, /Queries sent:\s+(\d+)/),
    completed,
    lost: num(stdout, /Queries lost:\s+(\d+)/),
    qps: num(stdout, /Queries per second:\s+([\d.]+)/),
    runSec: num(stdout, /Run time \(s\):\s+([\d.]+)/),
    avgLatencyUs: num(stdout, /Average Latency \(s\):\s+([\d.]+)/) * 1e6,
    responseCodes: /Response codes:\s+(.*)/.exec(stdout)?.[1] ?? '',
    serverCpuSec,
    serverCpuPct: (100 * serverCpuSec) / wallSec,
    cpuUsPerQuery: (serverCpuSec * 1e6) / completed,
    p50Us: percentile(latencies, 50) * 1e6,
    p99Us: percentile(latencies, 99) * 1e6,
    rcodes,
    during: await duringResult,
  }
}
