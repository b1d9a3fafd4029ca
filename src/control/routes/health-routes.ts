/** Liveness, readiness, Prometheus metrics and the OpenAPI document: open by default (api.openPaths), `read` otherwise. */
import type { FastifyInstance } from 'fastify'
import type { ControlServices } from '../services.js'

const READ = { roles: ['read'] } as const

export function registerHealthRoutes(app: FastifyInstance, services: ControlServices): void {
  app.get(
    '/healthz',
    {
      config: READ,
      schema: {
        summary: 'Liveness: the process answers HTTP',
        response: { 200: { type: 'object', properties: { status: { const: 'ok' } }, required: ['status'] } },
      },
    },
    async () => ({ status: 'ok' }),
  )
  app.get(
    '/readyz',
    {
      config: READ,
      schema: {
        summary: 'Readiness: zones and map loaded; 503 with reasons otherwise. Reports the map age.',
        response: {
          '2xx': readySchema,
          503: readySchema,
        },
      },
    },
    async (_request, reply) => {
      const state = services.health.ready()
      return reply.status(state.ready ? 200 : 503).send(state)
    },
  )
  app.get(
    '/metrics',
    { config: READ, schema: { summary: 'Prometheus text exposition', produces: ['text/plain'] } },
    async (_request, reply) => {
      const text = await services.metrics.text()
      return reply.type(services.metrics.contentType).send(text)
    },
  )
  app.get('/openapi.json', { config: READ, schema: { hide: true } }, async () => app.swagger())
}

const readySchema = {
  type: 'object',
  properties: {
    ready: { type: 'boolean' },
    reasons: { type: 'array', items: { type: 'string' } },
    mapVersion: { type: 'integer' },
    mapAgeSec: { type: ['number', 'null'] },
  },
  required: ['ready', 'reasons', 'mapVersion'],
} as const
