/**
 * Starts the real server in the test process (startServer, the same
 * composition root the CLI uses) on port 0, serving the example zone
 * zones/edge.example.net.zone, with logs kept off stdout. The TAP test's
 * teardown closes it. Options override single config keys; nothing else is
 * special about a test server.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import type { Test } from 'tap'
import { parseConfigText } from '../../src/config/index.js'
import { startServer } from '../../src/main.js'
import type { RunningServer } from '../../src/main.js'
import { REPO_ROOT } from './steerdns-process.js'

export const EXAMPLE_ZONE_FILE = join(REPO_ROOT, 'zones', 'edge.example.net.zone')

/**
 * Config lines that keep a test server to itself: its own state directory
 * (removed at teardown) and no HTTP API unless asked (api.listen would
 * otherwise take the shared default port 8053). YAML, one key per line.
 */
export function isolationYaml(t: Test, opts: { api?: boolean } = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'steerdns-test-state-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return `state: { dir: ${JSON.stringify(dir)} }\napi: { listen: ${JSON.stringify(opts.api ? '127.0.0.1:0' : '')} }`
}

export interface TestServerOptions {
  /** Listen addresses as the config file writes them; default ["127.0.0.1:0"]. */
  readonly listen?: readonly string[]
  readonly tcp?: {
    readonly maxConnections?: number
    readonly maxPerClient?: number
    readonly idleTimeoutMs?: number
    readonly maxPipelined?: number
  }
  /** Start the HTTP API on a free port (default: no API). */
  readonly api?: boolean
  /** Other guard keys (rrl, cookies, noCookieMaxUdpBytes, acl), written as the config would. */
  readonly guard?: Record<string, unknown>
}

export interface TestServer {
  readonly server: RunningServer
  /** The first listen address, port resolved. */
  readonly host: string
  readonly port: number
  /** Log lines written so far (level warn and above). */
  readonly logs: () => string
}

/** Starts a server and registers its close with `t.teardown`. */
export async function startTestServer(t: Test, opts: TestServerOptions = {}): Promise<TestServer> {
  const yaml = [
    `identity: e2e-node`,
    `listen: ${JSON.stringify(opts.listen ?? ['127.0.0.1:0'])}`,
    `zones: [{ origin: edge.example.net, file: ${JSON.stringify(EXAMPLE_ZONE_FILE)} }]`,
    `dns: { zonePollIntervalMs: 0 }`,
    // JSON is YAML: the guard section is written as one flow mapping.
    `guard: ${JSON.stringify({ tcp: opts.tcp ?? {}, ...opts.guard })}`,
    `log: { level: warn }`,
    isolationYaml(t, { api: opts.api === true }),
  ].join('\n')
  const config = parseConfigText(yaml, { file: '/tmp/steerdns-e2e.yaml', env: {} })
  const logStream = new PassThrough()
  let logText = ''
  logStream.on('data', (chunk: Buffer) => (logText += chunk.toString()))
  const server = await startServer({ config, logDestination: logStream })
  t.teardown(() => server.close())
  const first = server.listening[0]
  if (!first) throw new Error('server is not listening')
  return { server, host: first.host, port: first.port, logs: () => logText }
}
