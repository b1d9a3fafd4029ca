/**
 * Runs the built steerdns command line (`node bin/steerdns.js ...`) as a
 * child process for end-to-end tests: spawn with the given arguments, wait
 * until it answers a UDP query at its --listen address, stop it by PID with
 * SIGTERM. It needs `npm run build` first (bin/ imports dist/cli.js) and says
 * so when dist is missing, rather than hanging until the ready timeout.
 */
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { encodeQuery, queryUdp } from './dns-client.js'

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const BIN = join(REPO_ROOT, 'bin', 'steerdns.js')
const BUILT_CLI = join(REPO_ROOT, 'dist', 'cli.js')

export interface SteerdnsProcess {
  readonly pid: number
  readonly host: string
  readonly port: number
  /** stdout so far: pino JSON lines. */
  readonly stdout: () => string
  readonly stderr: () => string
  /** SIGTERM by PID and wait for exit (SIGKILL after `stopTimeoutMs`); resolves with the exit code or signal. */
  readonly stop: () => Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

export interface StartOptions {
  /** Where to probe for readiness; default: parsed from `--listen HOST:PORT` in args. */
  readonly probe?: { readonly host: string; readonly port: number }
  /** Name to ask (SOA) while waiting; any response at all counts as ready. Default ".". */
  readonly probeName?: string
  /** Default 10 s. */
  readonly readyTimeoutMs?: number
  /** Default 5 s. */
  readonly stopTimeoutMs?: number
  readonly env?: NodeJS.ProcessEnv
}

/** True when `npm run build` has produced the CLI that bin/steerdns.js imports. */
export function isSteerdnsBuilt(): boolean {
  return existsSync(BUILT_CLI)
}

function parseListen(args: readonly string[]): { host: string; port: number } | undefined {
  const index = args.indexOf('--listen')
  const value = index >= 0 ? args[index + 1] : undefined
  if (value === undefined) return undefined
  // IPv6 literals come as [::1]:53.
  const match = /^\[?([^\]]+?)\]?:(\d+)$/.exec(value)
  if (match === null || match[1] === undefined || match[2] === undefined) return undefined
  return { host: match[1], port: Number(match[2]) }
}

/**
 * Spawn `node bin/steerdns.js ...args` from the repository root and resolve
 * once it answers a UDP query. Rejects (after killing the child) when the
 * build is missing, the process exits early, or it is not ready in time; the
 * error carries the process output.
 */
export async function startSteerdns(args: readonly string[], opts: StartOptions = {}): Promise<SteerdnsProcess> {
  if (!isSteerdnsBuilt()) throw new Error(`${BUILT_CLI} is missing: run \`npm run build\` before this test`)
  const probe = opts.probe ?? parseListen(args)
  if (probe === undefined) throw new Error('startSteerdns needs --listen HOST:PORT in args or opts.probe')
  const readyTimeoutMs = opts.readyTimeoutMs ?? 10_000
  const stopTimeoutMs = opts.stopTimeoutMs ?? 5_000

  // `serve` gets its own state directory and an API on a free port unless the test chose: the
  // example's state/ and 127.0.0.1:8053 would be shared by tests running in parallel.
  const isServe = args[0] === 'serve'
  const stateDir = isServe && !args.includes('--state') ? mkdtempSync(join(tmpdir(), 'steerdns-proc-state-')) : undefined
  const extra = [...(stateDir ? ['--state', stateDir] : []), ...(isServe && !args.includes('--api') ? ['--api', '127.0.0.1:0'] : [])]
  const child = spawn(process.execPath, [BIN, ...args, ...extra], {
    cwd: REPO_ROOT,
    env: opts.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  )
  // Marked handled: an exit after a successful start is the normal stop.
  const diedEarly = new Promise<never>((_resolve, reject) => {
    child.once('exit', (code, signal) =>
      reject(new Error(`steerdns exited (${code ?? signal}) before answering\nstdout:\n${stdout}\nstderr:\n${stderr}`)),
    )
    child.once('error', reject)
  })
  diedEarly.catch(() => undefined)

  const stop = async (): Promise<{ code: number | null; signal: NodeJS.Signals | null }> => {
    if (child.pid === undefined) return { code: null, signal: null }
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGTERM')
    const timer = setTimeout(() => {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL')
    }, stopTimeoutMs)
    const result = await exited
    clearTimeout(timer)
    if (stateDir) rmSync(stateDir, { recursive: true, force: true })
    return result
  }

  try {
    await Promise.race([waitUntilAnswering(probe, opts.probeName ?? '.', readyTimeoutMs), diedEarly])
  } catch (err) {
    await stop()
    throw err
  }
  if (child.pid === undefined) throw new Error('steerdns has no pid')
  return { pid: child.pid, host: probe.host, port: probe.port, stdout: () => stdout, stderr: () => stderr, stop }
}

async function waitUntilAnswering(probe: { host: string; port: number }, name: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  const query = encodeQuery({ id: 0x5eed, name, qtype: 6 })
  for (;;) {
    try {
      await queryUdp(probe.host, probe.port, query, 200)
      return
    } catch {
      // Not bound yet (ICMP unreachable or silence): retry until the deadline.
    }
    if (Date.now() > deadline) throw new Error(`steerdns did not answer on ${probe.host}:${probe.port} within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}
