/**
 * The command line. Operators' scripts rely on these commands and flags:
 *   steerdns serve [--config FILE] [--listen HOST:PORT]... [--zone ORIGIN=FILE]...
 *   steerdns check-zone ORIGIN FILE
 * Returns an exit code; only `serve` keeps running (until SIGTERM/SIGINT).
 */
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { ConfigError, defaultConfig, formatConfigProblem, loadConfigFile, normalizeOrigin } from './config/index.js'
import type { SteerdnsConfig } from './config/index.js'
import { startServer } from './main.js'
import { formatListenAddress, parseListenAddress } from './server/index.js'
import { checkZone, formatProblem } from './zone/index.js'

/** The example configuration shipped with the package (zones/ on 127.0.0.1:5353). */
export const EXAMPLE_CONFIG = fileURLToPath(new URL('../steerdns.yaml', import.meta.url))

const USAGE = `usage:
  steerdns serve [--config FILE] [--listen HOST:PORT]... [--zone ORIGIN=FILE]... [--identity NAME] [--log-level LEVEL]
  steerdns check-zone ORIGIN FILE

serve with no flags serves the example configuration (${EXAMPLE_CONFIG}).
--listen replaces the configured addresses; each gets UDP and TCP.
--zone adds a zone; without --config, only the --zone zones are served.
SIGHUP reloads every zone file; changed zone files also reload by themselves.`

/** Runs a command; resolves to the exit code (serve resolves only on a startup failure). */
export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv
  switch (command) {
    case 'serve':
      return serve(rest)
    case 'check-zone':
      return checkZoneCommand(rest)
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
    server = await startServer({ config })
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
  flags: { listen?: string[]; zone?: string[]; identity?: string; 'log-level'?: string },
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
  return {
    ...config,
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
