/**
 * The HTTP layer alone, through app.inject() with fake services: auth (401
 * versus 403, roles, open paths), the address allow-list, errors that name
 * the offending field, body and rate limits, status codes per route, and the
 * OpenAPI document. What the services do is tested with the services.
 */
import { PassThrough } from 'node:stream'
import t from 'tap'
import type { Test } from 'tap'
import { ApiProblem, buildControlApp } from '../../src/control/index.js'
import type { Caller, ControlServices, TargetView } from '../../src/control/index.js'
import { createLogger } from '../../src/telemetry/index.js'

const TOKENS = [
  { name: 'ops', token: 'ops-token-0123456789', roles: ['operate', 'read'] as const },
  { name: 'probes', token: 'probe-token-0123456789', roles: ['ingest'] as const },
  { name: 'viewer', token: 'viewer-token-0123456789', roles: ['read'] as const },
]
const OPS = { authorization: `Bearer ${TOKENS[0]?.token}` }
const PROBES = { authorization: `Bearer ${TOKENS[1]?.token}` }
const VIEWER = { authorization: `Bearer ${TOKENS[2]?.token}` }

const target: TargetView = {
  id: 'sea-1',
  site: 'seattle',
  ipv4: ['192.0.2.11'],
  ipv6: [],
  location: { lat: 47.61, lon: -122.33 },
  health: 'unknown',
  admin: { state: 'up', reason: undefined, expiresAt: undefined, changedAt: undefined, by: undefined },
  serving: true,
  weight: 100,
  capacity: 100,
  load: undefined,
}

function fakeServices(calls: { method: string; caller?: Caller; arg?: unknown }[]): ControlServices {
  return {
    measurements: {
      ingest: async (body, caller) => {
        calls.push({ method: 'ingest', caller, arg: body })
        return { accepted: 1, rejected: [{ index: 1, reason: 'reports[1].target: unknown target "x"' }] }
      },
    },
    map: {
      summary: () => ({ version: 3, entries: 2, generatedAt: undefined, ageSec: undefined, coverage: { ipv4Entries: 2, ipv6Entries: 0, staleEntries: 0 }, source: 'file' }),
      exportJson: () => ({ version: 3, entries: [] }),
      importJson: async (body, caller) => {
        calls.push({ method: 'importJson', caller, arg: body })
        throw new ApiProblem(400, 'body.entries[0].prefix', 'not a CIDR')
      },
    },
    targets: {
      list: () => [target],
      patch: async (id, patch, caller) => {
        calls.push({ method: 'patch', caller, arg: { id, patch } })
        return id === 'sea-1' ? { ...target, admin: { ...target.admin, state: patch.state ?? 'up' } } : undefined
      },
    },
    overrides: {
      list: () => [],
      create: async (body, caller) => {
        calls.push({ method: 'create', caller, arg: body })
        return { id: 'ovr-1', kind: 'pin', reason: 'r', expiresAt: undefined, createdAt: '2026-01-01T00:00:00Z', createdBy: caller.name }
      },
      remove: async (id) => id === 'ovr-1',
    },
    explain: { explain: (q) => ({ answer: ['192.0.2.11'], scopePrefixLen: 24, ttlSec: 60, trace: { query: q } }) },
    audit: { list: () => [] },
    probe: { recipe: (client) => ({ client, pulses: [] }) },
    health: { ready: () => ({ ready: true, reasons: [], mapVersion: 3, mapAgeSec: 5 }) },
    metrics: { contentType: 'text/plain; version=0.0.4', text: async () => 'steerdns_up 1\n' },
    decisions: { recent: (limit) => Array.from({ length: Math.min(limit, 2) }, (_, i) => ({ at: '2026-01-01T00:00:00.000Z', name: 'api.example.', type: 'A', key: `198.51.100.${i}/32`, keySource: 'resolver', rule: 'map', answerTargets: ['sea-1'], scopePrefixLen: 0, ttlSec: 60 })) },
  }
}

async function build(t: Test, overrides: { rateLimitPerMinute?: number; allow?: string[]; openPaths?: string[]; bodyLimitBytes?: number } = {}) {
  const calls: { method: string; caller?: Caller; arg?: unknown }[] = []
  const app = await buildControlApp({
    api: {
      tokens: TOKENS,
      openPaths: overrides.openPaths ?? ['/healthz', '/readyz', '/metrics', '/openapi.json'],
      allow: overrides.allow ?? ['127.0.0.0/8', '::1/128'],
      bodyLimitBytes: overrides.bodyLimitBytes ?? 1 << 20,
      rateLimitPerMinute: overrides.rateLimitPerMinute ?? 0,
    },
    services: fakeServices(calls),
    logger: createLogger({ level: 'silent', identity: 'test', destination: new PassThrough() }),
    version: '0.0.0-test',
  })
  t.teardown(() => app.close())
  return { app, calls }
}

t.test('open paths need no token; everything else does (401 with WWW-Authenticate)', async (t) => {
  const { app } = await build(t)
  for (const url of ['/healthz', '/readyz', '/metrics', '/openapi.json']) t.equal((await app.inject({ url })).statusCode, 200, `${url} open`)
  const metrics = await app.inject({ url: '/metrics' })
  t.match(metrics.headers['content-type'], /^text\/plain/, 'metrics as Prometheus text')
  t.equal(metrics.body, 'steerdns_up 1\n')

  const missing = await app.inject({ url: '/v1/targets' })
  t.equal(missing.statusCode, 401)
  t.equal(missing.headers['www-authenticate'], 'Bearer realm="steerdns"', 'RFC 6750 challenge')
  t.equal(missing.json().field, 'headers.authorization')
  const unknown = await app.inject({ url: '/v1/targets', headers: { authorization: 'Bearer not-a-real-token-at-all' } })
  t.equal(unknown.statusCode, 401)
  t.match(unknown.headers['www-authenticate'], /error="invalid_token"/)
  t.equal((await app.inject({ url: '/v1/targets', headers: { authorization: 'Basic b3BzOnB3' } })).statusCode, 401, 'not a bearer token')
  t.equal((await app.inject({ url: '/healthz', headers: { authorization: 'Bearer wrong-token-123456789' } })).statusCode, 401, 'a wrong token is refused even on an open path')
  t.equal((await app.inject({ url: '/metrics', headers: PROBES })).statusCode, 200, 'any valid token may use an open path')
})

t.test('closed open paths need the read role', async (t) => {
  const { app } = await build(t, { openPaths: ['/healthz'] })
  t.equal((await app.inject({ url: '/healthz' })).statusCode, 200)
  t.equal((await app.inject({ url: '/metrics' })).statusCode, 401)
  t.equal((await app.inject({ url: '/metrics', headers: PROBES })).statusCode, 403, 'ingest-only token: 403')
  t.equal((await app.inject({ url: '/metrics', headers: VIEWER })).statusCode, 200)
})

t.test('roles: 403 names the token and the role it lacks', async (t) => {
  const { app, calls } = await build(t)
  const refused = await app.inject({ method: 'POST', url: '/v1/measurements', headers: VIEWER, payload: { reports: [] } })
  t.equal(refused.statusCode, 403)
  t.match(refused.json().message, /token viewer lacks the ingest role/)
  const probes = await app.inject({ method: 'PATCH', url: '/v1/targets/sea-1', headers: PROBES, payload: { state: 'down' } })
  t.equal(probes.statusCode, 403, 'ingest cannot operate')
  t.equal(calls.length, 0, 'no service was called')

  const ok = await app.inject({ method: 'POST', url: '/v1/measurements', headers: PROBES, payload: { reports: [{ client: '192.0.2.1', target: 'sea-1', rttMs: 12 }, { target: 'x' }] } })
  t.equal(ok.statusCode, 200)
  t.same(ok.json(), { accepted: 1, rejected: [{ index: 1, reason: 'reports[1].target: unknown target "x"' }] })
  t.equal(calls[0]?.caller?.name, 'probes', 'the service learns who called')
  t.equal(calls[0]?.caller?.address, '127.0.0.1')
  t.equal((await app.inject({ url: '/v1/probe/recipe?client=192.0.2.1', headers: PROBES })).statusCode, 200, 'probes may fetch recipes')
})

t.test('the address allow-list (api.allow) is checked before anything else', async (t) => {
  const { app } = await build(t, { allow: ['10.0.0.0/8'] })
  const res = await app.inject({ url: '/healthz', remoteAddress: '127.0.0.1' })
  t.equal(res.statusCode, 403)
  t.match(res.json().message, /address 127\.0\.0\.1 may not use the API/)
  t.equal((await app.inject({ url: '/healthz', remoteAddress: '10.1.2.3' })).statusCode, 200)
})

t.test('4xx errors name the offending field', async (t) => {
  const { app } = await build(t)
  const badState = await app.inject({ method: 'PATCH', url: '/v1/targets/sea-1', headers: OPS, payload: { state: 'sideways' } })
  t.equal(badState.statusCode, 400)
  t.equal(badState.json().field, 'body.state')
  t.match(badState.json().message, /^body\.state: must be equal to one of the allowed values: up, down, drain/)
  const extra = await app.inject({ method: 'PATCH', url: '/v1/targets/sea-1', headers: OPS, payload: { state: 'down', colour: 'red' } })
  t.equal(extra.json().field, 'body.colour')
  t.match(extra.json().message, /is not a known field/)
  const weight = await app.inject({ method: 'PATCH', url: '/v1/targets/sea-1', headers: OPS, payload: { weight: -1 } })
  t.equal(weight.json().field, 'body.weight')

  const json = await app.inject({ method: 'POST', url: '/v1/measurements', headers: { ...PROBES, 'content-type': 'application/json' }, payload: '{"reports": [' })
  t.equal(json.statusCode, 400)
  t.equal(json.json().field, 'body', 'unparseable JSON: the body')
  const notArray = await app.inject({ method: 'POST', url: '/v1/measurements', headers: PROBES, payload: { reports: 7 } })
  t.equal(notArray.statusCode, 400)
  t.equal(notArray.json().field, 'body.reports')

  const noName = await app.inject({ url: '/v1/explain?client=192.0.2.1', headers: VIEWER })
  t.equal(noName.statusCode, 400)
  t.equal(noName.json().field, 'query.name')

  const service = await app.inject({ method: 'PUT', url: '/v1/map', headers: OPS, payload: { entries: [{ prefix: 'x' }] } })
  t.equal(service.statusCode, 400, "a service's ApiProblem keeps its status")
  t.same(service.json(), { statusCode: 400, error: 'Bad Request', message: 'body.entries[0].prefix: not a CIDR', field: 'body.entries[0].prefix' })

  const override = await app.inject({ method: 'POST', url: '/v1/overrides', headers: OPS, payload: { prefix: '198.51.100.0/24', targets: [] } })
  t.equal(override.statusCode, 400)
  t.same(
    override.json().problems.map((p: { field: string }) => p.field).sort(),
    ['body.reason', 'body.targets'],
    'every problem is listed, not just the first',
  )
})

t.test('status codes: 201 with an id, 204, 404 naming the id, 404 for unknown routes', async (t) => {
  const { app, calls } = await build(t)
  const created = await app.inject({ method: 'POST', url: '/v1/overrides', headers: OPS, payload: { prefix: '198.51.100.0/24', targets: ['sea-1'], reason: 'maintenance' } })
  t.equal(created.statusCode, 201)
  t.same(created.json(), { id: 'ovr-1' })
  t.equal(calls.at(-1)?.caller?.name, 'ops')
  t.equal((await app.inject({ method: 'DELETE', url: '/v1/overrides/ovr-1', headers: OPS })).statusCode, 204)
  const gone = await app.inject({ method: 'DELETE', url: '/v1/overrides/ovr-9', headers: OPS })
  t.equal(gone.statusCode, 404)
  t.equal(gone.json().field, 'params.id')
  const noTarget = await app.inject({ method: 'PATCH', url: '/v1/targets/nope', headers: OPS, payload: { state: 'down' } })
  t.equal(noTarget.statusCode, 404)
  t.match(noTarget.json().message, /unknown target "nope"/)
  const patched = await app.inject({ method: 'PATCH', url: '/v1/targets/sea-1', headers: OPS, payload: { state: 'drain', reason: 'deploy' } })
  t.equal(patched.statusCode, 200)
  t.equal(patched.json().admin.state, 'drain')
  t.equal((await app.inject({ url: '/v1/nothing', headers: OPS })).statusCode, 404)
})

t.test('bodies above api.bodyLimitBytes are refused with 413', async (t) => {
  const { app, calls } = await build(t, { bodyLimitBytes: 2048 })
  const reports = Array.from({ length: 100 }, () => ({ client: '192.0.2.1', target: 'sea-1', rttMs: 10 }))
  const res = await app.inject({ method: 'POST', url: '/v1/measurements', headers: PROBES, payload: { reports } })
  t.equal(res.statusCode, 413)
  t.equal(res.json().field, 'body')
  t.equal(calls.length, 0)
})

t.test('rate limits: per token, and per address without one; 429 says when to retry', async (t) => {
  const { app } = await build(t, { rateLimitPerMinute: 3 })
  for (let i = 0; i < 3; i++) t.equal((await app.inject({ url: '/v1/targets', headers: VIEWER })).statusCode, 200)
  const limited = await app.inject({ url: '/v1/targets', headers: VIEWER })
  t.equal(limited.statusCode, 429)
  t.match(limited.json().message, /3 requests per minute for token viewer; retry in \d+ s/)
  t.ok(limited.headers['retry-after'], 'Retry-After header')
  t.equal((await app.inject({ url: '/v1/targets', headers: OPS })).statusCode, 200, 'another token has its own budget')
  t.equal((await app.inject({ url: '/v1/targets', headers: VIEWER, remoteAddress: '127.0.0.9' })).statusCode, 429, 'the same token from another address shares its budget')
  for (let i = 0; i < 3; i++) await app.inject({ url: '/healthz', remoteAddress: '127.0.0.5' })
  t.equal((await app.inject({ url: '/healthz', remoteAddress: '127.0.0.5' })).statusCode, 429, 'anonymous callers are limited per address')
  t.equal((await app.inject({ url: '/healthz', remoteAddress: '127.0.0.6' })).statusCode, 200)
})

t.test('OpenAPI 3.1 at /openapi.json documents every route with its schema', async (t) => {
  const { app } = await build(t)
  const doc = (await app.inject({ url: '/openapi.json' })).json()
  t.equal(doc.openapi, '3.1.0')
  const routes = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([path, methods]) => Object.keys(methods).map((m) => `${m.toUpperCase()} ${path}`))
  for (const route of [
    'POST /v1/measurements',
    'GET /v1/map',
    'GET /v1/map/export',
    'PUT /v1/map',
    'GET /v1/targets',
    'PATCH /v1/targets/{id}',
    'GET /v1/overrides',
    'POST /v1/overrides',
    'DELETE /v1/overrides/{id}',
    'GET /v1/explain',
    'GET /v1/audit',
    'GET /v1/probe/recipe',
    'GET /v1/decisions',
    'GET /healthz',
    'GET /readyz',
    'GET /metrics',
  ]) {
    t.ok(routes.includes(route), `${route} documented`)
  }
  t.ok(doc.components.securitySchemes.bearer, 'bearer auth documented')
})
