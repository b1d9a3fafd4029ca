/** The latency map: summary, export, and import of a map computed elsewhere. */
import type { FastifyInstance } from 'fastify'
import type { ControlServices } from '../services.js'

export const mapSummarySchema = {
  type: 'object',
  properties: {
    version: { type: 'integer' },
    entries: { type: 'integer' },
    generatedAt: { type: ['string', 'null'] },
    ageSec: { type: ['number', 'null'] },
    coverage: {
      type: 'object',
      properties: { ipv4Entries: { type: 'integer' }, ipv6Entries: { type: 'integer' }, staleEntries: { type: 'integer' } },
      required: ['ipv4Entries', 'ipv6Entries', 'staleEntries'],
    },
    source: { enum: ['compiled', 'imported', 'file', 'state', 'empty'] },
  },
  required: ['version', 'entries', 'coverage', 'source'],
} as const

const mapJsonSchema = {
  type: 'object',
  description: 'The `--map` file format: `{ version, generatedAt?, entries: [ { prefix, updatedAt?, targets: [ { id, score, samples } ] } ] }`; checked whole, every problem listed with its JSON path.',
  required: ['entries'],
} as const

export function registerMapRoutes(app: FastifyInstance, services: ControlServices): void {
  app.get(
    '/v1/map',
    { config: { roles: ['read'] }, schema: { summary: 'Map version, entries, age and coverage', response: { 200: mapSummarySchema } } },
    async () => services.map.summary(),
  )
  app.get(
    '/v1/map/export',
    { config: { roles: ['read'] }, schema: { summary: 'The whole map in the `--map` JSON form' } },
    async (_request, reply) => reply.type('application/json').send(services.map.exportJson()),
  )
  app.put(
    '/v1/map',
    {
      config: { roles: ['operate'] },
      schema: { summary: 'Replace the map with one computed elsewhere (same JSON as --map)', body: mapJsonSchema, response: { 200: mapSummarySchema } },
    },
    async (request) => services.map.importJson(request.body, request.caller),
  )
}
