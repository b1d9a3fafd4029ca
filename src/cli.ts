/**
 * The command line. Operators' scripts rely on these commands and flags:
 *   steerdns serve [--config FILE] [--listen HOST:PORT]... [--zone ORIGIN=FILE]...
 *   steerdns check-zone ORIGIN FILE
 *   steerdns explain NAME --client IP[/LEN] [--resolver IP] [--json]
 * Returns an exit code; only `serve` keeps running (until SIGTERM/SIGINT).
 */
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { ConfigError, defaultConfig, formatConfigProblem, loadConfigFile, normalizeOrigin } from './config/index.js'
import type { SteerdnsConfig } from './config/index.js'
import { greatCircleKm } from './geo/index.js'
import { loadSteering, startServer } from './main.js'
import { createSteeringState, explain, parseClientKey } from './steering/index.js'
import type { ClientKey, Explanation } from './steering/index.js'
import { createLogger } from './telemetry/index.js'
import { formatListenAddress, parseListenAddress } from './server/index.js'
import { checkZone, formatProblem } from './zone/index.js'

/** The example configuration shipped with the package (zones/ on 127.0.0.1:5353). */
export const EXAMPLE_CONFIG = fileURLToPath(new URL('../steerdns.yaml', import.meta.url))

const USAGE = `usage:
  steerdns serve [--config FILE] [--listen HOST:PORT]... [--zone ORIGIN=FILE]... [--map FILE] [--api HOST:PORT|off] [--state DIR] [--identity NAME] [--log-level LEVEL]
  steerdns check-zone ORIGIN FILE
  steerdns explain NAME (--client IP[/LEN] | --resolver IP) [--type A|AAAA] [--json] [--config FILE] [--map FILE]

serve with no flags serves the example configuration (${EXAMPLE_CONFIG}).
--listen replaces the configured addresses; each gets UDP and TCP.
--zone adds a zone; without --config, only the --zone zones are served.
--map imports a latency map file (JSON) instead of the configured map.file.
--api sets the HTTP control plane's address (api.listen, default 127.0.0.1:8053); "off" runs without it.
--state sets the state directory (state.dir): measurements, map, overrides, target states, audit log.
explain prints the steering decision for NAME and why, from the same configuration and map.
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
  flags: { listen?: string[]; zone?: string[]; identity?: string; 'log-level'?: string; api?: string; state?: string },
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
  return {
    ...config,
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
      },
      strict: true,
      allowPositionals: true,
    })
  } catch (err) {
    process.stderr.write(`steerdns explain: ${(err as Error).message}\n${USAGE}\n`)
    return 2
  }
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
    const loaded = await loadSteering(config, values.map ? resolve(values.map) : config.map.file, silent)
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
  return 0
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
