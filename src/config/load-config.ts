/**
 * Reads the YAML configuration: parse, substitute `${NAME}` from the
 * environment, validate against the schema with defaults, cross-check, and
 * resolve relative paths against the file's directory. Every problem is
 * collected and thrown together as one ConfigError with paths and lines.
 */
import { readFile } from 'node:fs/promises'
import { isIPv4, isIPv6 } from 'node:net'
import { hostname } from 'node:os'
import { dirname, resolve } from 'node:path'
import { Ajv } from 'ajv'
import type { ErrorObject } from 'ajv'
import { isScalar, LineCounter, parseDocument, visit } from 'yaml'
import type { Document } from 'yaml'
import { createAcl } from '../guard/index.js'
import { parseListenAddress } from '../server/index.js'
import { ConfigError } from './config-error.js'
import type { ConfigProblem } from './config-error.js'
import { configSchema } from './schema.js'
import type { SteerdnsConfig } from './schema.js'

const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: true })
const validate = ajv.compile(configSchema)

export interface ParseConfigOptions {
  /** Shown in problems; relative paths resolve against its directory. */
  readonly file: string
  readonly env: NodeJS.ProcessEnv
}

/** Reads and parses a config file. Throws ConfigError (STEER_ERR_CONFIG_INVALID) listing every problem. */
export async function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): Promise<SteerdnsConfig> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw new ConfigError([{ path: '', message: `cannot read: ${(err as Error).message}`, file, line: undefined }])
  }
  return parseConfigText(text, { file, env })
}

/** Parses config text. Throws ConfigError listing every problem; never partially applies. */
export function parseConfigText(text: string, opts: ParseConfigOptions): SteerdnsConfig {
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, { lineCounter, prettyErrors: false })
  const problems: ConfigProblem[] = []
  const at = (offset: number | undefined): number | undefined =>
    offset === undefined ? undefined : lineCounter.linePos(offset).line
  for (const e of doc.errors) {
    problems.push({ path: '', message: e.message.split('\n')[0] ?? e.message, file: opts.file, line: at(e.pos[0]) })
  }
  if (problems.length > 0) throw new ConfigError(problems)

  substituteEnv(doc, opts.env, (message, offset) => problems.push({ path: '', message, file: opts.file, line: at(offset) }))
  if (problems.length > 0) throw new ConfigError(problems)
  const data: unknown = doc.toJS() ?? {}
  const valid = validate(data)
  for (const e of valid ? [] : (validate.errors ?? [])) {
    const segments = errorPath(e)
    problems.push({ path: formatPath(segments), message: errorMessage(e), file: opts.file, line: at(nodeOffset(doc, segments)) })
  }
  // Cross-field checks run even when the schema failed, so one run lists everything.
  for (const p of crossCheck(data)) {
    if (problems.some((q) => q.path === p.path)) continue
    problems.push({ ...p, file: opts.file, line: at(nodeOffset(doc, pathSegments(p.path))) })
  }
  if (problems.length > 0 || !valid) throw new ConfigError(problems)
  return finish(data as unknown as SteerdnsConfig, opts.file)
}

/** The configuration with only defaults (what `--zone` and `--listen` without `--config` start from). */
export function defaultConfig(): SteerdnsConfig {
  return parseConfigText('{}', { file: '<defaults>', env: {} })
}

function finish(config: SteerdnsConfig, file: string): SteerdnsConfig {
  const base = dirname(resolve(file))
  return {
    ...config,
    identity: config.identity ?? hostname(),
    zones: config.zones.map((z) => ({ origin: normalizeOrigin(z.origin), file: resolve(base, z.file) })),
    services: config.services.map((s) => ({ ...s, name: normalizeOrigin(s.name) })),
    map: { ...config.map, file: config.map.file === undefined ? undefined : resolve(base, config.map.file) },
    geo: {
      city: config.geo.city === undefined ? undefined : resolve(base, config.geo.city),
      asn: config.geo.asn === undefined ? undefined : resolve(base, config.geo.asn),
    },
    state: { dir: resolve(base, config.state.dir) },
  }
}

/** Zone origins in the internal form: lowercase, no trailing dot ("." is the root, ""). */
export function normalizeOrigin(origin: string): string {
  const lower = origin.toLowerCase()
  return lower === '.' ? '' : lower.replace(/\.$/, '')
}

/** Checks the schema cannot express. Tolerates data that failed the schema (it may be any shape). */
function crossCheck(data: unknown): Omit<ConfigProblem, 'file' | 'line'>[] {
  const problems: Omit<ConfigProblem, 'file' | 'line'>[] = []
  const config = (typeof data === 'object' && data !== null ? data : {}) as {
    listen?: unknown
    zones?: unknown
    targets?: unknown
    services?: unknown
  }
  if (Array.isArray(config.listen)) {
    config.listen.forEach((l: unknown, i) => {
      if (typeof l !== 'string') return
      try {
        parseListenAddress(l)
      } catch (err) {
        problems.push({ path: `listen[${i}]`, message: (err as Error).message })
      }
    })
  }
  if (Array.isArray(config.zones)) {
    const seen = new Map<string, number>()
    config.zones.forEach((z: unknown, i) => {
      const origin = (z as { origin?: unknown } | null)?.origin
      if (typeof origin !== 'string') return
      const key = normalizeOrigin(origin)
      const first = seen.get(key)
      if (first !== undefined) problems.push({ path: `zones[${i}].origin`, message: `zone ${key || '.'} is already defined at zones[${first}]` })
      else seen.set(key, i)
    })
  }
  problems.push(...checkTargets(config.targets), ...checkServices(config.services, config.targets, config.zones))
  problems.push(...checkGuard((config as { guard?: unknown }).guard))
  problems.push(...checkApi((config as { api?: unknown }).api))
  problems.push(...checkRole(config))
  return problems
}

/**
 * A node of one role only makes sense when another node runs the other
 * half, which needs shared state: role dns or control requires store.kind
 * redis. Exported for `serve --role`, which is checked the same way.
 */
export function checkRole(config: unknown): Problem[] {
  const c = (typeof config === 'object' && config !== null ? config : {}) as { role?: unknown; store?: { kind?: unknown }; dns?: { workers?: unknown } }
  const role = c.role ?? 'all'
  const kind = c.store?.kind ?? 'local'
  if ((role === 'dns' || role === 'control') && kind !== 'redis') {
    return [{ path: 'role', message: `role ${role} needs shared state (store.kind: redis); with store.kind ${String(kind)} only role all runs` }]
  }
  // Workers follow this process's own state; a Redis node follows the store (more role dns nodes scale it there).
  const workers = c.dns?.workers
  if (typeof workers === 'number' && workers > 1 && kind !== 'local') {
    return [{ path: 'dns.workers', message: `dns.workers ${workers} needs store.kind local; with store.kind ${String(kind)} run more role dns nodes instead` }]
  }
  return []
}

function checkApi(api: unknown): Problem[] {
  const problems: Problem[] = []
  const a = (typeof api === 'object' && api !== null ? api : {}) as Record<string, unknown>
  if (Array.isArray(a['allow'])) {
    a['allow'].forEach((entry: unknown, i) => {
      if (typeof entry !== 'string') return
      try {
        createAcl([entry])
      } catch (err) {
        problems.push({ path: `api.allow[${i}]`, message: (err as Error).message })
      }
    })
  }
  const names = new Map<unknown, number>()
  const secrets = new Map<unknown, number>()
  arrayOf(a['tokens']).forEach((token, i) => {
    const byName = names.get(token['name'])
    if (byName !== undefined) problems.push({ path: `api.tokens[${i}].name`, message: `token name ${String(token['name'])} is already used by api.tokens[${byName}]` })
    else names.set(token['name'], i)
    // Two names for one secret would make the audit log name the wrong one.
    const bySecret = secrets.get(token['token'])
    if (bySecret !== undefined) problems.push({ path: `api.tokens[${i}].token`, message: `the same token as api.tokens[${bySecret}]` })
    else secrets.set(token['token'], i)
  })
  return problems
}

function checkGuard(guard: unknown): Problem[] {
  const problems: Problem[] = []
  const g = (typeof guard === 'object' && guard !== null ? guard : {}) as Record<string, Record<string, unknown> | undefined>
  const cidrLists: [string, unknown][] = [
    ['guard.rrl.exempt', g['rrl']?.['exempt']],
    ['guard.acl.debug', g['acl']?.['debug']],
    ['guard.acl.chaos', g['acl']?.['chaos']],
  ]
  for (const [path, list] of cidrLists) {
    if (!Array.isArray(list)) continue
    list.forEach((entry: unknown, i) => {
      if (typeof entry !== 'string') return
      try {
        createAcl([entry])
      } catch (err) {
        problems.push({ path: `${path}[${i}]`, message: (err as Error).message })
      }
    })
  }
  for (const key of ['secret', 'previousSecret']) {
    const value = g['cookies']?.[key]
    if (typeof value === 'string' && value !== '' && !/^[0-9a-fA-F]{32}$/.test(value)) {
      problems.push({ path: `guard.cookies.${key}`, message: 'must be 32 hex digits (a 128-bit RFC 9018 secret) or ""' })
    }
  }
  return problems
}

type Problem = Omit<ConfigProblem, 'file' | 'line'>

function arrayOf(value: unknown): Record<string, unknown>[] {
  return Array.isArray(value) ? value.filter((v): v is Record<string, unknown> => typeof v === 'object' && v !== null) : []
}

/** Exactly one of http or tcp, and a timeout shorter than the interval (checks must not pile up). */
function checkHealth(health: unknown, path: string): Problem[] {
  if (typeof health !== 'object' || health === null) return []
  const h = health as Record<string, unknown>
  const problems: Problem[] = []
  if ((h['http'] === undefined) === (h['tcp'] === undefined)) problems.push({ path, message: 'needs exactly one of http (a URL) or tcp (HOST:PORT)' })
  if (typeof h['http'] === 'string') {
    try {
      new URL(h['http'])
    } catch {
      problems.push({ path: `${path}.http`, message: 'not a URL' })
    }
  }
  const interval = typeof h['intervalMs'] === 'number' ? h['intervalMs'] : 1000
  const timeout = typeof h['timeoutMs'] === 'number' ? h['timeoutMs'] : 500
  if (timeout >= interval) problems.push({ path: `${path}.timeoutMs`, message: `must be less than intervalMs (${interval})` })
  return problems
}

function checkTargets(targets: unknown): Problem[] {
  const problems: Problem[] = []
  const ids = new Map<string, number>()
  ;(Array.isArray(targets) ? targets : []).forEach((raw: unknown, i) => {
    if (typeof raw !== 'object' || raw === null) return
    const t = raw as { id?: unknown; ipv4?: unknown; ipv6?: unknown; health?: unknown }
    if (typeof t.id === 'string') {
      const first = ids.get(t.id)
      if (first !== undefined) problems.push({ path: `targets[${i}].id`, message: `target id ${t.id} is already used by targets[${first}]` })
      else ids.set(t.id, i)
    }
    const v4 = Array.isArray(t.ipv4) ? t.ipv4 : []
    const v6 = Array.isArray(t.ipv6) ? t.ipv6 : []
    v4.forEach((a: unknown, j) => {
      if (typeof a === 'string' && !isIPv4(a)) problems.push({ path: `targets[${i}].ipv4[${j}]`, message: 'not an IPv4 address' })
    })
    v6.forEach((a: unknown, j) => {
      if (typeof a === 'string' && !isIPv6(a)) problems.push({ path: `targets[${i}].ipv6[${j}]`, message: 'not an IPv6 address' })
    })
    if (v4.length === 0 && v6.length === 0) problems.push({ path: `targets[${i}]`, message: 'needs at least one address in ipv4 or ipv6' })
    problems.push(...checkHealth(t.health, `targets[${i}].health`))
  })
  return problems
}

function checkServices(services: unknown, targets: unknown, zones: unknown): Problem[] {
  const problems: Problem[] = []
  const targetList = arrayOf(targets)
  const ids = new Set(targetList.map((t) => t['id']).filter((id): id is string => typeof id === 'string'))
  const tags = new Set(targetList.flatMap((t) => (Array.isArray(t['tags']) ? t['tags'] : [])).filter((x): x is string => typeof x === 'string'))
  const origins = arrayOf(zones)
    .map((z) => z['origin'])
    .filter((o): o is string => typeof o === 'string')
    .map(normalizeOrigin)
  const names = new Map<string, number>()
  arrayOf(services).forEach((svc, i) => {
    if (typeof svc['name'] === 'string') {
      const name = normalizeOrigin(svc['name'])
      const first = names.get(name)
      if (first !== undefined) problems.push({ path: `services[${i}].name`, message: `service ${name} is already defined at services[${first}]` })
      else names.set(name, i)
      if (!origins.some((o) => o === '' || name === o || name.endsWith('.' + o))) {
        problems.push({ path: `services[${i}].name`, message: `${name} is not inside any configured zone` })
      }
    }
    const pool = Array.isArray(svc['pool']) ? svc['pool'] : []
    pool.forEach((member: unknown, j) => {
      if (typeof member !== 'string') return
      if (member.startsWith('tag:')) {
        if (!tags.has(member.slice(4))) problems.push({ path: `services[${i}].pool[${j}]`, message: `no target has tag ${member.slice(4)}` })
      } else if (!ids.has(member)) {
        problems.push({ path: `services[${i}].pool[${j}]`, message: `unknown target ${member}` })
      }
    })
    const ttl = svc['ttl'] as { min?: unknown; max?: unknown } | undefined
    if (ttl && typeof ttl.min === 'number' && typeof ttl.max === 'number' && ttl.min > ttl.max) {
      problems.push({ path: `services[${i}].ttl.min`, message: `must not exceed ttl.max (${ttl.max})` })
    }
  })
  return problems
}

/** `${NAME}` in any string value becomes the variable's value; an unset one is a problem. */
function substituteEnv(doc: Document, env: NodeJS.ProcessEnv, report: (message: string, offset: number | undefined) => void): void {
  visit(doc, {
    Scalar(_key, node) {
      if (typeof node.value !== 'string' || !node.value.includes('${')) return
      node.value = node.value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_m, name: string) => {
        const value = env[name]
        if (value === undefined) {
          report(`environment variable ${name} is not set`, node.range?.[0])
          return ''
        }
        return value
      })
    },
  })
}

function errorPath(e: ErrorObject): (string | number)[] {
  const segments = pathSegmentsFromPointer(e.instancePath)
  if (e.keyword === 'additionalProperties') segments.push(String(e.params['additionalProperty']))
  if (e.keyword === 'required') segments.push(String(e.params['missingProperty']))
  return segments
}

function errorMessage(e: ErrorObject): string {
  if (e.keyword === 'additionalProperties') return 'unknown key'
  if (e.keyword === 'required') return 'is required'
  if (e.keyword === 'enum') return `must be one of ${(e.params['allowedValues'] as unknown[]).join(', ')}`
  if (e.keyword === 'pattern' && e.instancePath.startsWith('/listen')) return 'must be HOST:PORT (IPv6 as [::1]:53)'
  return e.message ?? 'is invalid'
}

function pathSegmentsFromPointer(pointer: string): (string | number)[] {
  if (pointer === '') return []
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s))
}

function pathSegments(path: string): (string | number)[] {
  return [...path.matchAll(/([^.[\]]+)|\[(\d+)\]/g)].map((m) => (m[2] !== undefined ? Number(m[2]) : (m[1] as string)))
}

/** `zones[1].file` from segments. */
export function formatPath(segments: readonly (string | number)[]): string {
  return segments.map((s, i) => (typeof s === 'number' ? `[${s}]` : i === 0 ? s : `.${s}`)).join('')
}

/** Source offset of the deepest node that exists along the path (a missing key points at its parent). */
function nodeOffset(doc: Document, segments: readonly (string | number)[]): number | undefined {
  for (let n = segments.length; n >= 0; n--) {
    const node = doc.getIn(segments.slice(0, n), true)
    if (node && typeof node === 'object' && 'range' in node) {
      const range = (node as { range?: [number, number, number] }).range
      if (range) return range[0]
    }
    if (isScalar(node) && node.range) return node.range[0]
  }
  return undefined
}
