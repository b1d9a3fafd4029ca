/** Targets: health, admin state, weight and load; operators set state (up, down, drain), weight and load. */
import type { FastifyInstance } from 'fastify'
import { ApiProblem } from '../api-problem.js'
import type { ControlServices, TargetPatch } from '../services.js'

const nullableString = { type: ['string', 'null'] } as const

export const targetSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    site: { type: 'string' },
    ipv4: { type: 'array', items: { type: 'string' } },
    ipv6: { type: 'array', items: { type: 'string' } },
    location: { type: 'object', properties: { lat: { type: 'number' }, lon: { type: 'number' } }, required: ['lat', 'lon'] },
    health: { type: 'string' },
    admin: {
      type: 'object',
      properties: { state: { enum: ['up', 'down', 'drain'] }, reason: nullableString, expiresAt: nullableString, changedAt: nullableString, by: nullableString },
      required: ['state'],
    },
    serving: { type: 'boolean' },
    weight: { type: 'number' },
    capacity: { type: 'number' },
    load: { type: ['number', 'null'] },
  },
  required: ['id', 'health', 'admin', 'serving', 'weight', 'capacity'],
} as const

export function registerTargetRoutes(app: FastifyInstance, services: ControlServices): void {
  app.get(
    '/v1/targets',
    { config: { roles: ['read'] }, schema: { summary: 'Every target with health, admin state, weight and load', response: { 200: { type: 'array', items: targetSchema } } } },
    async () => services.targets.list(),
  )
  app.patch<{ Params: { id: string }; Body: TargetPatch }>(
    '/v1/targets/:id',
    {
      config: { roles: ['operate'] },
      schema: {
        summary: 'Set admin state (up, down, drain), weight or reported load; with a reason and an optional expiry',
        params: { type: 'object', properties: { id: { type: 'string', minLength: 1 } }, required: ['id'] },
        body: {
          type: 'object',
          additionalProperties: false,
          minProperties: 1,
          properties: {
            state: { enum: ['up', 'down', 'drain'] },
            weight: { anyOf: [{ type: 'number', exclusiveMinimum: 0, maximum: 1000000 }, { type: 'null' }], description: 'null restores the configured capacity' },
            load: { type: 'number', minimum: 0, maximum: 100, description: 'Current load as a fraction of capacity (1 = full)' },
            reason: { type: 'string', maxLength: 500 },
            expiresAt: { anyOf: [{ type: 'string', format: 'date-time' }, { type: 'null' }], description: 'When the admin state reverts to up (RFC 3339)' },
          },
        },
        response: { 200: targetSchema },
      },
    },
    async (request) => {
      const view = await services.targets.patch(request.params.id, request.body, request.caller)
      if (!view) throw new ApiProblem(404, 'params.id', `unknown target "${request.params.id}"`)
      return view
    },
  )
}
