/**
 * The command line. Operators' scripts rely on these commands and flags:
 *   steerdns serve [--config FILE] [--listen HOST:PORT]... [--zone ORIGIN=FILE]...
 *   steerdns check-zone ORIGIN FILE
 *   steerdns explain NAME --client IP[/LEN] [--resolver IP] [--json]
 *   steerdns state [--api URL] [--token TOKEN] [--json]
 *   steerdns map stats FILE [--config FILE] [--json]
 * Returns an exit code; only `serve` keeps running (until SIGTERM/SIGINT).
 */
import { existsSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { checkRole, ConfigError, defaultConfig, formatConfigProblem, loadConfigFile, normalizeOrigin } from './config/index.js'
import type { SteerdnsConfig } from './config/index.js'
import { greatCircleKm } from './geo/index.js'
import { loadSteering, startServer } from './main.js'
import { STATE_MAP_FILE } from './services/index.js'
import type { MapSummary, OverrideView, TargetView } from './control/index.js'
import { buildSteeringSetup, createSteeringState, explain, formatMapProblem, loadMapFile, MapError, parseClientKey } from './steering/index.js'
import type { ClientKey, Explanation, LatencyMap, SteeringSetup } from './steering/index.js'
import { createLogger } from './telemetry/index.js'
import { formatListenAddress, parseListenAddress } from './server/index.js'
import { checkZone, formatProblem } from './zone/index.js'

/** The example configuration shipped with the package (zones/ on 127.0.0.1:5353). */
export const EXAMPLE_CONFIG = fileURLToPath(new URL('../steerdns.yaml', import.meta.url))

/** Where `state` looks for the control plane: api.listen's default. */
const DEFAULT_API_URL = 'http://127.0.0.1:8053'

const USAGE = `usage:
  steerdns serve [--config FILE] [--listen HOST:PORT]... [--zone ORIGIN=FILE]... [--map FILE] [--api HOST:PORT|off] [--state DIR] [--identity NAME] [--log-level LEVEL] [--role all|dns|control] [--workers N]
  steerdns check-zone ORIGIN FILE
  steerdns explain NAME (--client IP[/LEN] | --resolver IP) [--type A|AAAA] [--json] [--config FILE] [--map FILE] [--api URL [--token TOKEN]]
  steerdns state [--api URL] [--token TOKEN] [--json]
  steerdns map stats FILE [--config FILE] [--json]

serve with no flags serves the example configuration (${EXAMPLE_CONFIG}).
--listen replaces the configured addresses; each gets UDP and TCP.
--zone adds a zone; without --config, only the --zone zones are served.
--map imports a latency map file (JSON) instead of the configured map.file.
--api sets the HTTP control plane's address (api.listen, default 127.0.0.1:8053); "off" runs without it.
--state sets the state directory (state.dir): measurements, map, overrides, target states, audit log.
--role (role) with store.kind redis: dns answers DNS from the shared state, control runs the API,
  ingestion, compiles and health checks without DNS listeners; all (the default) runs both.
--workers N (dns.workers): N DNS worker processes answer on the listen addresses (one per core);
  this process runs the control plane and publishes its state to them. Local store only.
explain prints the steering decision for NAME and why, from the same configuration and map.
state prints a running server's targets, overrides and map summary (--api default ${DEFAULT_API_URL};
  the token from --token or STEERDNS_TOKEN, with the read role). The status page is at /ui on the same address.
map stats checks a map file against the configuration's targets and summarises it.
SIGHUP reloads every zone file; changed zone files also reload by themselves.`

/** Runs a command; resolves to the exit code (serve resolves only on a startup failure). */
export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv
  switch (command) {
    case 'serve':
      return serve(rest)
    case 'check-zone':
      return checkZoneCommand(rest)
    case 'explain':
      return explainCommand(rest)
    case 'state':
      return stateCommand(rest)
    case 'map':
      return mapCommand(rest)
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(USAGE + '\n')
      return command === undefined ? 2 : 0
    default:
      process.stderr.write(`steerdns: unknown command "${command}"\n${USAGE}\n`)
      return 2
  }
}

async function serve(args: readonly string[]): Promise<number> {
  let parsed
  try {
    parsed = parseArgs({
      args: [...args],
      options: {
        config: { type: 'string' },
        listen: { type: 'string', multiple: true },
        zone: { type: 'string', multiple: true },
        map: { type: 'string' },
        api: { type: 'string' },
        state: { type: 'string' },
        identity: { type: 'string' },
        'log-level': { type: 'string' },
        role: { type: 'string' },
        workers: { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }).values
  } catch (err) {
    process.stderr.write(`steerdns serve: ${(err as Error).message}\n${USAGE}\n`)
    return 2
  }

  let config: SteerdnsConfig
  try {
    const useExample = parsed.config === undefined && parsed.zone === undefined
    const file = parsed.config ?? (useExample ? EXAMPLE_CONFIG : undefined)
    config = file ? await loadConfigFile(file) : defaultConfig()
    config = applyFlags(config, parsed)
    if (parsed.role !== undefined || parsed.workers !== undefined) {
      const problems = checkRole(config)
      const flag = problems[0]?.path === 'dns.workers' ? `--workers ${parsed.workers}` : `--role ${parsed.role}`
      if (problems.length > 0) throw new ConfigError(problems.map((p) => ({ ...p, path: flag, file: undefined, line: undefined })))
    }
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`steerdns: configuration rejected:\n${err.problems.map((p) => '  ' + formatConfigProblem(p)).join('\n')}\n`)
      return 1
    }
    process.stderr.write(`steerdns: ${(err as Error).message}\n`)
    return 1
  }

  let server
  try {
    server = await startServer({ config, ...(parsed.map ? { mapFile: resolve(parsed.map) } : {}) })
  } catch (err) {
    process.stderr.write(`steerdns: cannot start: ${(err as Error).message}\n`)
    return 1
  }
  const log = server.logger
  log.info({ listen: server.listening.map(formatListenAddress), zones: config.zones.map((z) => z.origin) }, 'serving')
  process.on('SIGHUP', () => {
    log.info('SIGHUP: reloading zones')
    server.reload().catch((err: unknown) => log.error({ err }, 'reload failed'))
  })
  const stop = (signal: string): void => {
    log.info({ signal }, 'shutting down')
    server.close().then(
      () => process.exit(0),
      () => process.exit(1),
    )
  }
  process.once('SIGTERM', () => stop('SIGTERM'))
  process.once('SIGINT', () => stop('SIGINT'))
  return new Promise<number>(() => {})
}

function applyFlags(
  config: SteerdnsConfig,
  flags: { listen?: string[]; zone?: string[]; identity?: string; 'log-level'?: string; api?: string; state?: string; role?: string; workers?: string },
): SteerdnsConfig {
  const zones = [...config.zones]
  for (const spec of flags.zone ?? []) {
    const eq = spec.indexOf('=')
    if (eq <= 0 || eq === spec.length - 1) throw new Error(`--zone "${spec}": expected ORIGIN=FILE`)
    zones.push({ origin: normalizeOrigin(spec.slice(0, eq)), file: resolve(spec.slice(eq + 1)) })
  }
  const origins = new Set<string>()
  for (const z of zones) {
    if (origins.has(z.origin)) throw new Error(`zone ${z.origin || '.'} is given twice`)
    origins.add(z.origin)
  }
  for (const l of flags.listen ?? []) parseListenAddress(l)
  const api = flags.api === 'off' ? '' : flags.api
  if (api) parseListenAddress(api)
  const role = flags.role
  if (role !== undefined && role !== 'all' && role !== 'dns' && role !== 'control') throw new Error(`--role "${role}": expected all, dns or control`)
  const workers = flags.workers === undefined ? undefined : Number(flags.workers)
  if (workers !== undefined && !(Number.isInteger(workers) && workers >= 1 && workers <= 64)) throw new Error(`--workers "${flags.workers}": expected a whole number from 1 to 64`)
  return {
    ...config,
    role: role ?? config.role,
    dns: { ...config.dns, workers: workers ?? config.dns.workers },
    api: { ...config.api, listen: api ?? config.api.listen },
    state: { dir: flags.state === undefined ? config.state.dir : resolve(flags.state) },
    zones,
    listen: flags.listen ?? config.listen,
    identity: flags.identity ?? config.identity,
    log: { ...config.log, level: flags['log-level'] ?? config.log.level },
  }
}

async function checkZoneCommand(args: readonly string[]): Promise<number> {
  if (args.length !== 2) {
    process.stderr.write(`usage: steerdns check-zone ORIGIN FILE\n`)
    return 2
  }
  const [origin, file] = args as [string, string]
  const result = await checkZone(normalizeOrigin(origin), file)
  for (const p of result.problems) process.stdout.write(formatProblem(p) + '\n')
  const errors = result.problems.filter((p) => p.severity === 'error').length
  if (errors > 0) {
    process.stdout.write(`${file}: ${errors} error(s); zone ${origin} not loaded\n`)
    return 1
  }
  process.stdout.write(`zone ${origin}: loaded ${result.recordCount} records, OK\n`)
  return 0
}

async function explainCommand(args: readonly string[]): Promise<number> {
  let parsed
  try {
    parsed = parseArgs({
      args: [...args],
      options: {
        client: { type: 'string' },
        resolver: { type: 'string' },
        type: { type: 'string', default: 'A' },
        json: { type: 'boolean', default: false },
        config: { type: 'string' },
        map: { type: 'string' },
        api: { type: 'string' },
        token: { type: 'string' },
      },
      strict: true,
      allowPositionals: true,
    })
  } catch (err) {
    process.stderr.write(`steerdns explain: ${(err as Error).message}\n${USAGE}\n`)
    return 2
  }
  if (parsed.values.api !== undefined) return explainOnline(parsed.values, parsed.positionals)
  const { values, positionals } = parsed
  const [nameText] = positionals
  const type = (values.type ?? 'A').toUpperCase()
  if (positionals.length !== 1 || !nameText || (!values.client && !values.resolver) || (type !== 'A' && type !== 'AAAA')) {
    process.stderr.write(`usage: steerdns explain NAME (--client IP[/LEN] | --resolver IP) [--type A|AAAA] [--json] [--config FILE] [--map FILE]\n`)
    return 2
  }
  let key: ClientKey
  try {
    // DESIGN.md step 1: an ECS prefix > 0 decides; /0 (or none) leaves it to the resolver.
    const ecs = values.client ? parseClientKey(values.client, 'ecs') : undefined
    key = ecs && ecs.prefixLen > 0 ? ecs : parseClientKey(values.resolver ?? '0.0.0.0', 'resolver')
  } catch (err) {
    process.stderr.write(`steerdns explain: ${(err as Error).message}\n`)
    return 2
  }
  let view
  try {
    const config = await loadConfigFile(values.config ?? EXAMPLE_CONFIG)
    const silent = createLogger({ level: 'silent', identity: config.identity })
    // The map the server last published (state directory) when there is one: that is what answers.
    const stateMap = join(config.state.dir, STATE_MAP_FILE)
    const mapFile = values.map ? resolve(values.map) : existsSync(stateMap) ? stateMap : config.map.file
    const loaded = await loadSteering(config, mapFile, silent)
    view = createSteeringState({ ...loaded, distanceKm: greatCircleKm }).current()
  } catch (err) {
    const detail = err instanceof ConfigError ? err.problems.map(formatConfigProblem).join('\n') : (err as Error).message
    process.stderr.write(`steerdns explain: ${detail}\n`)
    return 1
  }
  const name = normalizeOrigin(nameText)
  const result = explain(view, name, key, type === 'A' ? 4 : 6, Date.now())
  if (!result) {
    process.stderr.write(`steerdns explain: ${name} is not a steered name (services: ${[...view.setup.services.keys()].join(', ') || 'none'})\n`)
    return 1
  }
  process.stdout.write(values.json ? JSON.stringify(result, null, 2) + '\n' : formatExplanation(result))
  // Offline, the decision sees the configuration and the map only.
  if (!values.json) process.stdout.write('  (offline: overrides, admin states, health and load are the running server\'s: add --api to ask it)\n')
  return 0
}

/** `explain --api URL`: the running server's decision (GET /v1/explain), overrides and health included. */
async function explainOnline(values: { client?: string; resolver?: string; type?: string; json?: boolean; api?: string; token?: string }, positionals: readonly string[]): Promise<number> {
  const [name] = positionals
  const token = values.token ?? process.env.STEERDNS_TOKEN
  if (positionals.length !== 1 || !name || (!values.client && !values.resolver)) {
    process.stderr.write(`usage: steerdns explain NAME (--client IP[/LEN] | --resolver IP) --api URL [--token TOKEN] [--type A|AAAA] [--json]\n`)
    return 2
  }
  if (!token) {
    process.stderr.write(`steerdns explain: no token: pass --token TOKEN or set STEERDNS_TOKEN (a token with the read role)\n`)
    return 2
  }
  const query = new URLSearchParams({ name, type: (values.type ?? 'A').toUpperCase() })
  if (values.client) query.set('client', values.client)
  if (values.resolver) query.set('resolver', values.resolver)
  try {
    const result = await getJson<Explanation>(apiBaseUrl(values.api ?? DEFAULT_API_URL), `/v1/explain?${query}`, token, 10_000)
    process.stdout.write(values.json ? JSON.stringify(result, null, 2) + '\n' : formatExplanation({ ...result, name, family: values.type?.toUpperCase() === 'AAAA' ? 6 : 4 }))
    return 0
  } catch (err) {
    process.stderr.write(`steerdns explain: ${(err as Error).message}\n`)
    return 1
  }
}

/** The human form of an explanation: the answer first, then why. */
export function formatExplanation(e: Explanation): string {
  const t = e.trace
  const lines = [
    `${e.name}. ${e.family === 4 ? 'A' : 'AAAA'} for ${t.key} (${t.keySource === 'ecs' ? 'ECS' : 'resolver address'})`,
    `  answer: ${e.answer.length > 0 ? e.answer.map((a, i) => `${a} (${e.answerTargets[i] ?? '?'})`).join(', ') : '(none: ' + t.rule + ')'}`,
    `  rule:   ${t.rule}${t.matched ? `, matched ${t.matched}${t.mapStale ? ' (stale)' : ''}` : ''}, map version ${t.mapVersion}${t.mapAgeSec !== undefined ? `, age ${t.mapAgeSec}s` : ''}`,
    `  ttl:    ${e.ttlSec}s (${t.ttlReason})`,
    `  scope:  /${e.scopePrefixLen} (${t.scopeReason})`,
  ]
  if (t.geo) lines.push(`  geo:    ${[t.geo.city, t.geo.country, t.geo.continent].filter(Boolean).join(', ')} (network /${t.geo.network})`)
  if (t.candidates.length > 0) {
    lines.push('  candidates:')
    for (const c of t.candidates) {
      const measure = c.scoreMs !== undefined ? `${c.scoreMs} ms, ${c.samples ?? 0} samples` : c.distanceKm !== undefined ? `${c.distanceKm} km` : ''
      lines.push(`    ${c.id.padEnd(12)} ${measure.padEnd(24)} ${c.serving ? 'serving' : 'not serving'}`)
    }
  }
  return lines.join('\n') + '\n'
}

const STATE_USAGE = 'usage: steerdns state [--api URL] [--token TOKEN] [--json]'

/** Reads targets, overrides and the map summary from a running server's API. */
async function stateCommand(args: readonly string[]): Promise<number> {
  let values
  try {
    values = parseArgs({
      args: [...args],
      options: { api: { type: 'string' }, token: { type: 'string' }, json: { type: 'boolean', default: false } },
      strict: true,
      allowPositionals: false,
    }).values
  } catch (err) {
    process.stderr.write(`steerdns state: ${(err as Error).message}\n${STATE_USAGE}\n`)
    return 2
  }
  const token = values.token ?? process.env.STEERDNS_TOKEN
  if (!token) {
    process.stderr.write(`steerdns state: no token: pass --token TOKEN or set STEERDNS_TOKEN (a token with the read role)\n`)
    return 2
  }
  let base: URL
  try {
    base = apiBaseUrl(values.api ?? DEFAULT_API_URL)
  } catch {
    process.stderr.write(`steerdns state: --api "${values.api}": expected a URL like http://127.0.0.1:8053 or HOST:PORT\n`)
    return 2
  }
  // A server that accepts the connection and never answers must not hang a script.
  const timeoutMs = 10_000
  let state: { targets: TargetView[]; overrides: OverrideView[]; map: MapSummary }
  try {
    const [targets, overrides, map] = await Promise.all([
      getJson<TargetView[]>(base, '/v1/targets', token, timeoutMs),
      getJson<OverrideView[]>(base, '/v1/overrides', token, timeoutMs),
      getJson<MapSummary>(base, '/v1/map', token, timeoutMs),
    ])
    state = { targets, overrides, map }
  } catch (err) {
    process.stderr.write(`steerdns state: ${(err as Error).message}\n`)
    return 1
  }
  const api = base.href.replace(/\/$/, '')
  process.stdout.write(values.json ? JSON.stringify({ api, ...state }, null, 2) + '\n' : formatState(api, state, Date.now()))
  return 0
}

/** "host:port", "[::1]:8053" or a full URL; http:// when no scheme is given. */
function apiBaseUrl(text: string): URL {
  const url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`)
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('not http')
  if (!url.pathname.endsWith('/')) url.pathname += '/'
  return url
}

/** GET a read route; throws an Error whose message says what to do (server down, token refused, role missing). */
async function getJson<T>(base: URL, path: string, token: string, timeoutMs: number): Promise<T> {
  const url = new URL(path.slice(1), base)
  let res: Response
  try {
    res = await fetch(url, { headers: { authorization: `Bearer ${token}`, accept: 'application/json' }, signal: AbortSignal.timeout(timeoutMs) })
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } }
    const why = e.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (e.cause?.code ?? e.cause?.message ?? e.message)
    throw new Error(`cannot reach the control plane at ${base.origin} (${why}): is \`steerdns serve\` running with its API there? (--api)`, { cause: err })
  }
  const text = await res.text()
  let body: unknown
  try {
    body = text ? JSON.parse(text) : undefined
  } catch {
    body = undefined
  }
  if (res.ok && body !== undefined) return body as T
  const message = typeof (body as { message?: unknown } | undefined)?.message === 'string' ? (body as { message: string }).message : `${res.status} ${res.statusText}`
  if (res.status === 401) throw new Error(`the API refused the token (401: ${message}); check --token or STEERDNS_TOKEN`)
  if (res.status === 403) throw new Error(`the API refused ${url.pathname} (403: ${message}); the token needs the read role, and this address must be in api.allow`)
  if (res.ok) throw new Error(`GET ${url.pathname}: the answer is not JSON (is ${base.origin} a steerdns control plane?)`)
  throw new Error(`GET ${url.pathname}: ${res.status} ${message}`)
}

/** Left-aligned columns, two spaces apart, no trailing spaces. */
function formatColumns(rows: readonly (readonly string[])[], indent = '  '): string[] {
  const widths: number[] = []
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)))
  return rows.map((row) => indent + row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ').trimEnd())
}

const count = (n: number): string => n.toLocaleString('en')

/** "42 s", "5 min", "3 h 2 min", "2 d 4 h". */
function formatAge(sec: number): string {
  const s = Math.max(0, Math.round(sec))
  if (s < 120) return `${s} s`
  const min = Math.round(s / 60)
  if (min < 120) return `${min} min`
  const h = Math.floor(min / 60)
  return h < 48 ? `${h} h ${min % 60} min` : `${Math.floor(h / 24)} d ${h % 24} h`
}

/** The human form of `steerdns state`: the map first, then every target and override. */
export function formatState(api: string, s: { targets: readonly TargetView[]; overrides: readonly OverrideView[]; map: MapSummary }, nowMs: number): string {
  const m = s.map
  const lines = [`steerdns control plane at ${api}`, '']
  const generated = m.generatedAt ? `generated ${m.generatedAt}${m.ageSec !== undefined && m.ageSec !== null ? ` (${formatAge(m.ageSec)} ago)` : ''}` : 'generation time unknown'
  lines.push(
    `map: version ${m.version} from ${m.source}; ${count(m.entries)} entries (${count(m.coverage.ipv4Entries)} IPv4, ${count(m.coverage.ipv6Entries)} IPv6), ${count(m.coverage.staleEntries)} stale; ${generated}`,
    '',
  )
  const serving = s.targets.filter((t) => t.serving).length
  lines.push(`targets: ${s.targets.length} (${serving} serving)`)
  if (s.targets.length > 0) {
    const rows = s.targets.map((t) => {
      const note = [t.admin.reason ? `"${t.admin.reason}"` : '', t.admin.by ? `by ${t.admin.by}` : '', t.admin.expiresAt ? `until ${t.admin.expiresAt}` : ''].filter(Boolean).join(' ')
      const weight = t.weight === t.capacity ? String(t.weight) : `${t.weight} (capacity ${t.capacity})`
      const load = typeof t.load === 'number' ? `${Math.round(t.load * 100)}%` : '-'
      return [t.id, t.site || '-', t.health, t.admin.state, t.serving ? 'serving' : 'not serving', weight, load, note]
    })
    lines.push(...formatColumns([['ID', 'SITE', 'HEALTH', 'ADMIN', 'SERVING', 'WEIGHT', 'LOAD', 'NOTE'], ...rows]))
  }
  lines.push('', s.overrides.length === 0 ? 'overrides: none' : `overrides: ${s.overrides.length}`)
  if (s.overrides.length > 0) {
    const rows = s.overrides.map((o) => {
      const appliesTo = o.kind === 'pin' ? (o.prefix ?? '?') : `target ${o.target ?? '?'}`
      const effect = o.kind === 'pin' ? `answer ${(o.targets ?? []).join(', then ')}` : `${(o.biasMs ?? 0) > 0 ? '+' : ''}${o.biasMs ?? 0} ms`
      const expires = o.expiresAt ? `${o.expiresAt}${Date.parse(o.expiresAt) > nowMs ? ` (in ${formatAge((Date.parse(o.expiresAt) - nowMs) / 1000)})` : ''}` : 'never'
      return [o.id, o.kind, appliesTo, effect, expires, o.createdBy, o.reason]
    })
    lines.push(...formatColumns([['ID', 'KIND', 'APPLIES TO', 'EFFECT', 'EXPIRES', 'BY', 'REASON'], ...rows]))
  }
  return lines.join('\n') + '\n'
}

const MAP_USAGE = 'usage: steerdns map stats FILE [--config FILE] [--json]'

async function mapCommand(args: readonly string[]): Promise<number> {
  const [sub, ...rest] = args
  if (sub === 'stats') return mapStatsCommand(rest)
  process.stderr.write(`steerdns map: ${sub === undefined ? 'a subcommand is needed' : `unknown subcommand "${sub}"`}\n${MAP_USAGE}\n`)
  return 2
}

/** Reads a map file with the configuration's targets (unknown ids are problems) and prints its summary. */
async function mapStatsCommand(args: readonly string[]): Promise<number> {
  let parsed
  try {
    parsed = parseArgs({ args: [...args], options: { config: { type: 'string' }, json: { type: 'boolean', default: false } }, strict: true, allowPositionals: true })
  } catch (err) {
    process.stderr.write(`steerdns map stats: ${(err as Error).message}\n${MAP_USAGE}\n`)
    return 2
  }
  const [file] = parsed.positionals
  if (parsed.positionals.length !== 1 || !file) {
    process.stderr.write(`${MAP_USAGE}\n`)
    return 2
  }
  let setup: SteeringSetup
  let staleAfterSec: number
  try {
    const config = await loadConfigFile(parsed.values.config ?? EXAMPLE_CONFIG)
    setup = buildSteeringSetup(config)
    staleAfterSec = config.map.staleAfterSec
  } catch (err) {
    const detail = err instanceof ConfigError ? err.problems.map(formatConfigProblem).join('\n') : (err as Error).message
    process.stderr.write(`steerdns map stats: configuration rejected:\n${detail}\n`)
    return 1
  }
  let map: LatencyMap
  try {
    map = await loadMapFile(resolve(file), (id) => setup.targetIndex.get(id))
  } catch (err) {
    if (!(err instanceof MapError)) throw err
    process.stderr.write(`${file}: ${err.problems.length === 1 ? '1 problem' : `${err.problems.length} problems`}; the map would be rejected:\n`)
    for (const p of err.problems) process.stderr.write(`  ${formatMapProblem(p)}\n`)
    return 1
  }
  const stats = mapStats(map, setup, staleAfterSec, Date.now())
  process.stdout.write(parsed.values.json ? JSON.stringify({ file, ...stats }, null, 2) + '\n' : formatMapStats(file, stats))
  return 0
}

export interface MapStats {
  readonly version: number
  readonly generatedAt: string | undefined
  readonly ageSec: number | undefined
  readonly entries: number
  readonly ipv4Entries: number
  readonly ipv6Entries: number
  readonly candidates: number
  readonly maxCandidatesPerEntry: number
  /** Entries per family and prefix length, shortest first. */
  readonly prefixLengths: readonly { readonly family: 4 | 6; readonly prefixLen: number; readonly entries: number }[]
  /** Every configured target: entries where it ranks first, entries that list it, samples behind it; most first places first. */
  readonly targets: readonly { readonly id: string; readonly first: number; readonly listed: number; readonly samples: number }[]
  readonly samples: { readonly total: number; readonly firstPlace: Spread | undefined }
  /** Score of each entry's first place, ms. */
  readonly firstScoreMs: Spread | undefined
  /** Entries with updatedAt: oldest and newest, and how many are older than map.staleAfterSec. */
  readonly updated: { readonly entries: number; readonly oldest: string | undefined; readonly newest: string | undefined; readonly stale: number; readonly staleAfterSec: number }
}

interface Spread {
  readonly min: number
  readonly median: number
  readonly max: number
}

function spread(values: number[]): Spread | undefined {
  if (values.length === 0) return undefined
  values.sort((a, b) => a - b)
  return { min: values[0] as number, median: values[Math.floor((values.length - 1) / 2)] as number, max: values[values.length - 1] as number }
}

/** Summarises a map: one pass over its entries. */
export function mapStats(map: LatencyMap, setup: SteeringSetup, staleAfterSec: number, nowMs: number): MapStats {
  const byLength = new Map<number, number>()
  const first = new Array<number>(setup.targets.length).fill(0)
  const listed = new Array<number>(setup.targets.length).fill(0)
  const targetSamples = new Array<number>(setup.targets.length).fill(0)
  const firstSamples: number[] = []
  const firstScores: number[] = []
  let ipv4Entries = 0
  let candidates = 0
  let maxCandidates = 0
  let totalSamples = 0
  let updatedEntries = 0
  let oldest = Infinity
  let newest = -Infinity
  let stale = 0
  const staleBeforeMs = nowMs - staleAfterSec * 1000
  for (let e = 0; e < map.size; e++) {
    const family = map.entryFamily(e)
    if (family === 4) ipv4Entries++
    // One key per (family, length): IPv6 lengths go above 128 so both sort together.
    const key = family * 1000 + map.entryPrefixLen(e)
    byLength.set(key, (byLength.get(key) ?? 0) + 1)
    const n = map.candidateCount(e)
    candidates += n
    maxCandidates = Math.max(maxCandidates, n)
    for (let i = 0; i < n; i++) {
      const target = map.candidateTarget(e, i)
      const samples = map.candidateSamples(e, i)
      totalSamples += samples
      listed[target] = (listed[target] ?? 0) + 1
      targetSamples[target] = (targetSamples[target] ?? 0) + samples
      if (i === 0) {
        first[target] = (first[target] ?? 0) + 1
        firstSamples.push(samples)
        firstScores.push(map.candidateScoreMs(e, 0))
      }
    }
    const updatedAtMs = map.entryUpdatedAtMs(e)
    if (updatedAtMs !== undefined) {
      updatedEntries++
      oldest = Math.min(oldest, updatedAtMs)
      newest = Math.max(newest, updatedAtMs)
      if (updatedAtMs < staleBeforeMs) stale++
    }
  }
  const targets = setup.targets
    .map((t) => ({ id: t.id, first: first[t.index] ?? 0, listed: listed[t.index] ?? 0, samples: targetSamples[t.index] ?? 0 }))
    .sort((a, b) => b.first - a.first || b.listed - a.listed || a.id.localeCompare(b.id))
  return {
    version: map.version,
    generatedAt: map.generatedAtMs === undefined ? undefined : new Date(map.generatedAtMs).toISOString(),
    ageSec: map.generatedAtMs === undefined ? undefined : Math.max(0, Math.round((nowMs - map.generatedAtMs) / 1000)),
    entries: map.size,
    ipv4Entries,
    ipv6Entries: map.size - ipv4Entries,
    candidates,
    maxCandidatesPerEntry: maxCandidates,
    prefixLengths: [...byLength.entries()].sort((a, b) => a[0] - b[0]).map(([key, entries]) => ({ family: key >= 6000 ? 6 : 4, prefixLen: key % 1000, entries })),
    targets,
    samples: { total: totalSamples, firstPlace: spread(firstSamples) },
    firstScoreMs: spread(firstScores),
    updated: {
      entries: updatedEntries,
      oldest: updatedEntries > 0 ? new Date(oldest).toISOString() : undefined,
      newest: updatedEntries > 0 ? new Date(newest).toISOString() : undefined,
      stale,
      staleAfterSec,
    },
  }
}

/** The human form of `steerdns map stats`. */
export function formatMapStats(file: string, s: MapStats): string {
  const perEntry = s.entries > 0 ? ` (${(s.candidates / s.entries).toFixed(1)} per entry, at most ${s.maxCandidatesPerEntry})` : ''
  const lines = [
    `${file}: version ${s.version}, ${count(s.entries)} entries (${count(s.ipv4Entries)} IPv4, ${count(s.ipv6Entries)} IPv6), ${count(s.candidates)} candidates${perEntry}`,
    `generated: ${s.generatedAt ? `${s.generatedAt} (age ${formatAge(s.ageSec ?? 0)})` : 'not stated in the file'}`,
    s.updated.entries === 0
      ? 'entries updated: no entry states updatedAt (none can be stale)'
      : `entries updated: ${count(s.updated.entries)} state it, oldest ${s.updated.oldest}, newest ${s.updated.newest}; ${count(s.updated.stale)} older than map.staleAfterSec (${s.updated.staleAfterSec} s)`,
  ]
  if (s.entries === 0) return lines.join('\n') + '\n'
  lines.push('', 'prefix lengths:')
  const widest = Math.max(...s.prefixLengths.map((p) => p.entries))
  lines.push(
    ...formatColumns(
      s.prefixLengths.map((p) => [p.family === 4 ? 'IPv4' : 'IPv6', `/${p.prefixLen}`, count(p.entries), '#'.repeat(Math.max(1, Math.round((p.entries / widest) * 40)))]),
    ),
  )
  lines.push('', `targets by first place (${s.targets.length} configured):`)
  const used = s.targets.filter((t) => t.listed > 0)
  lines.push(...formatColumns([['TARGET', 'FIRST', 'LISTED', 'SAMPLES'], ...used.map((t) => [t.id, count(t.first), count(t.listed), count(t.samples)])]))
  const unused = s.targets.filter((t) => t.listed === 0)
  if (unused.length > 0) lines.push(`  in no entry: ${unused.map((t) => t.id).join(', ')}`)
  const fs = s.samples.firstPlace
  lines.push('', `samples: ${count(s.samples.total)} in all${fs ? `; behind each first place: min ${count(fs.min)}, median ${count(fs.median)}, max ${count(fs.max)}` : ''}`)
  const sc = s.firstScoreMs
  if (sc) lines.push(`first-place score: min ${sc.min} ms, median ${sc.median} ms, max ${sc.max} ms`)
  return lines.join('\n') + '\n'
}
