/**
 * POST /v1/measurements: a batch of latency reports (steerdns form or
 * Probnik's). The schema checks only the envelope: each report is validated
 * on its own by the service, so one bad report never costs the rest.
 */
import type { FastifyInstance } from 'fastify'
import type { ControlServices } from '../services.js'

export const MAX_REPORTS_PER_BATCH = 1000

const reportSchema = {
  type: 'object',
  description: 'One latency sample. Validated one by one: a bad report is listed in `rejected`, the rest still count.',
  properties: {
    client: { type: 'string', description: 'Client IP address or prefix (reduced to map.ipv4Prefix / ipv6Prefix at once).' },
    resolver: { type: 'string', description: "The client's resolver address, when known." },
    target: { type: 'string', description: 'Target id.' },
    rttMs: { type: 'number', description: 'Round-trip time in milliseconds.' },
    at: { type: 'string', format: 'date-time', description: 'When measured (RFC 3339); default: when received.' },
    ok: { type: 'boolean', description: 'false: the probe failed (counts toward passive health, not latency).' },
  },
} as const

export function registerMeasurementRoutes(app: FastifyInstance, services: ControlServices): void {
  app.post(
    '/v1/measurements',
    {
      config: { roles: ['ingest'] },
      schema: {
        summary: 'Ingest latency measurements; durable once acknowledged',
        body: {
          type: 'object',
          description: '`{ reports: [...] }`, or a Probnik report (`pulses`).',
          properties: { reports: { type: 'array', maxItems: MAX_REPORTS_PER_BATCH, items: reportSchema } },
        },
        response: {
          200: {
            type: 'object',
            properties: {
              accepted: { type: 'integer' },
              rejected: { type: 'array', items: { type: 'object', properties: { index: { type: 'integer' }, reason: { type: 'string' } }, required: ['index', 'reason'] } },
            },
            required: ['accepted', 'rejected'],
          },
        },
      },
      // The items' own checks are the service's: a type mismatch there must reject one report, not the batch.
      validatorCompiler: ({ schema }) => {
        const maxItems = (schema as { properties?: { reports?: { maxItems?: number } } }).properties?.reports?.maxItems
        return (data: unknown) => {
          if (typeof data !== 'object' || data === null || Array.isArray(data)) return { error: envelopeError('must be an object', '') }
          const reports = (data as { reports?: unknown }).reports
          if (reports !== undefined && !Array.isArray(reports)) return { error: envelopeError('must be an array', '/reports') }
          if (Array.isArray(reports) && maxItems !== undefined && reports.length > maxItems) return { error: envelopeError(`must have at most ${maxItems} reports`, '/reports') }
          return { value: data }
        }
      },
    },
    async (request) => services.measurements.ingest(request.body, request.caller),
  )
}

function envelopeError(message: string, instancePath: string): Error {
  return Object.assign(new Error(message), {
    validation: [{ instancePath, message, keyword: 'type', params: {}, schemaPath: '' }],
    validationContext: 'body',
    statusCode: 400,
  })
}
