/** Explain, audit and probe recipes: read-only views over the same state the data plane uses. */
import type { FastifyInstance } from 'fastify'
import type { ControlServices, ExplainQuery } from '../services.js'

export function registerReadRoutes(app: FastifyInstance, services: ControlServices): void {
  app.get<{ Querystring: ExplainQuery }>(
    '/v1/explain',
    {
      config: { roles: ['read'] },
      schema: {
        summary: 'The steering decision for a name and client, with its trace: the same function DNS answers use',
        querystring: {
          type: 'object',
          additionalProperties: false,
          required: ['name'],
          properties: {
            name: { type: 'string', minLength: 1, maxLength: 255 },
            client: { type: 'string', description: 'Client address or prefix (as ECS would carry it)' },
            resolver: { type: 'string', description: 'Resolver address (used when there is no client)' },
            type: { enum: ['A', 'AAAA'] },
          },
        },
        response: {
          200: {
            type: 'object',
            properties: {
              answer: { type: 'array', items: { type: 'string' } },
              answerTargets: { type: 'array', items: { type: 'string' }, description: 'Target id of each address in answer' },
              scopePrefixLen: { type: 'integer' },
              ttlSec: { type: 'integer' },
              trace: { type: 'object', additionalProperties: true },
            },
            required: ['answer', 'scopePrefixLen', 'ttlSec', 'trace'],
          },
        },
      },
    },
    async (request) => services.explain.explain(request.query),
  )
  app.get<{ Querystring: { limit: number; since?: string } }>(
    '/v1/audit',
    {
      config: { roles: ['read'] },
      schema: {
        summary: 'Who changed what, when and why (newest last)',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { limit: { type: 'integer', minimum: 1, maximum: 10000, default: 100 }, since: { type: 'string', format: 'date-time' } },
        },
        response: {
          200: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                at: { type: 'string' },
                by: { type: 'string' },
                address: { type: 'string' },
                action: { type: 'string' },
                subject: { type: 'string' },
                reason: { type: ['string', 'null'] },
                change: {},
              },
              required: ['at', 'by', 'action', 'subject'],
            },
          },
        },
      },
    },
    async (request) => services.audit.list({ limit: request.query.limit, since: request.query.since }),
  )
  app.get<{ Querystring: { limit: number } }>(
    '/v1/decisions',
    {
      config: { roles: ['read'] },
      schema: {
        summary: 'The latest steering decisions the DNS path made (newest first)',
        querystring: { type: 'object', additionalProperties: false, properties: { limit: { type: 'integer', minimum: 1, maximum: 256, default: 50 } } },
        response: {
          200: {
            type: 'array',
            items: {
              type: 'object',
              properties: {
                at: { type: 'string' },
                name: { type: 'string' },
                type: { type: 'string' },
                key: { type: 'string' },
                keySource: { type: 'string' },
                rule: { type: 'string' },
                answerTargets: { type: 'array', items: { type: 'string' } },
                scopePrefixLen: { type: 'integer' },
                ttlSec: { type: 'integer' },
              },
            },
          },
        },
      },
    },
    async (request) => services.decisions.recent(request.query.limit),
  )
  app.get<{ Querystring: { client: string } }>(
    '/v1/probe/recipe',
    {
      config: { roles: ['ingest', 'read'] },
      schema: {
        summary: "Which targets a client should measure next (best, challengers, exploration), in Probnik's recipe form",
        querystring: { type: 'object', additionalProperties: false, required: ['client'], properties: { client: { type: 'string', minLength: 1 } } },
      },
    },
    async (request) => services.probe.recipe(request.query.client),
  )
}
