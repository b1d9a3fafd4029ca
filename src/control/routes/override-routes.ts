/**
 * Overrides: pin a client prefix to targets, or bias a target's score
 * everywhere. The schema checks the shape; the service checks meaning
 * (a real CIDR, known targets) and names the field it rejects.
 */
import type { FastifyInstance } from 'fastify'
import { ApiProblem } from '../api-problem.js'
import type { ControlServices } from '../services.js'

export const overrideSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    kind: { enum: ['pin', 'bias'] },
    prefix: { type: 'string' },
    targets: { type: 'array', items: { type: 'string' } },
    target: { type: 'string' },
    biasMs: { type: 'number' },
    reason: { type: 'string' },
    expiresAt: { type: ['string', 'null'] },
    createdAt: { type: 'string' },
    createdBy: { type: 'string' },
  },
  required: ['id', 'kind', 'reason', 'createdAt', 'createdBy'],
} as const

const expiresAt = { type: 'string', format: 'date-time', description: 'RFC 3339; the override stops applying then' } as const
const reason = { type: 'string', minLength: 1, maxLength: 500 } as const

export function registerOverrideRoutes(app: FastifyInstance, services: ControlServices): void {
  app.get(
    '/v1/overrides',
    { config: { roles: ['read'] }, schema: { summary: 'Overrides in force', response: { 200: { type: 'array', items: overrideSchema } } } },
    async () => services.overrides.list(),
  )
  app.post(
    '/v1/overrides',
    {
      config: { roles: ['operate'] },
      schema: {
        summary: 'Pin a client prefix to targets, or bias a target (ms added to its score everywhere)',
        // One flat object, not oneOf: ajv's oneOf errors name both branches. The service
        // says which fields make which kind ("prefix and targets" or "target and biasMs").
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['reason'],
          properties: {
            prefix: { type: 'string', minLength: 1, description: 'pin: the client prefix (CIDR)' },
            targets: { type: 'array', items: { type: 'string' }, minItems: 1, maxItems: 16, description: 'pin: target ids, preferred first' },
            target: { type: 'string', minLength: 1, description: 'bias: the target id' },
            biasMs: { type: 'number', minimum: -10000, maximum: 10000, description: 'bias: added to the target score everywhere (negative: faster)' },
            reason,
            expiresAt,
          },
        },
        response: { 201: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] } },
      },
    },
    async (request, reply) => {
      const created = await services.overrides.create(request.body, request.caller)
      return reply.status(201).send({ id: created.id })
    },
  )
  app.delete<{ Params: { id: string } }>(
    '/v1/overrides/:id',
    {
      config: { roles: ['operate'] },
      schema: {
        summary: 'Remove an override',
        params: { type: 'object', properties: { id: { type: 'string', minLength: 1 } }, required: ['id'] },
        response: { 204: { type: 'null' } },
      },
    },
    async (request, reply) => {
      if (!(await services.overrides.remove(request.params.id, request.caller))) throw new ApiProblem(404, 'params.id', `no override "${request.params.id}"`)
      return reply.status(204).send()
    },
  )
}
