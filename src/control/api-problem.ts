/**
 * The API's error shape: every 4xx names what to fix. `field` is a path in the
 * request ("body.reports[3].rttMs", "query.client", "params.id"), so a script
 * can point at the offending value without parsing prose.
 */
import type { FastifyError } from 'fastify'

/** Thrown by services for a request the caller can fix. */
export class ApiProblem extends Error {
  constructor(
    readonly statusCode: number,
    readonly field: string | undefined,
    message: string,
    readonly problems?: readonly { readonly field: string; readonly message: string }[],
  ) {
    super(message)
  }
}

export interface ErrorBody {
  readonly statusCode: number
  readonly error: string
  readonly message: string
  readonly field?: string
  readonly problems?: readonly { readonly field: string; readonly message: string }[]
}

/** "/reports/0/rttMs" under "body" → "body.reports[0].rttMs". */
export function fieldPath(context: string, instancePath: string, missingProperty?: string): string {
  const segments = instancePath.split('/').slice(1).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
  if (missingProperty !== undefined) segments.push(missingProperty)
  let path = context
  for (const segment of segments) path += /^\d+$/.test(segment) ? `[${segment}]` : `.${segment}`
  return path
}

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  409: 'Conflict',
  413: 'Payload Too Large',
  415: 'Unsupported Media Type',
  429: 'Too Many Requests',
}

/** The JSON body for any error fastify or a service raised. */
export function errorBody(err: FastifyError | ApiProblem | Error): ErrorBody {
  if (err instanceof ApiProblem) {
    return {
      statusCode: err.statusCode,
      error: REASONS[err.statusCode] ?? 'Error',
      message: err.field !== undefined && !err.message.startsWith(err.field) ? `${err.field}: ${err.message}` : err.message,
      ...(err.field !== undefined ? { field: err.field } : {}),
      ...(err.problems ? { problems: err.problems } : {}),
    }
  }
  const fastifyError = err as FastifyError
  if (fastifyError.validation) {
    // Fastify says "querystring"; the field path says "query", as in `query.client`.
    const context = fastifyError.validationContext === 'querystring' ? 'query' : (fastifyError.validationContext ?? 'body')
    const problems = fastifyError.validation.map((v) => {
      const missing = (v.params as { missingProperty?: string } | undefined)?.missingProperty
      const extra = (v.params as { additionalProperty?: string } | undefined)?.additionalProperty
      const allowed = (v.params as { allowedValues?: unknown[] } | undefined)?.allowedValues
      const field = fieldPath(context, v.instancePath, missing ?? extra)
      const message = extra !== undefined ? 'is not a known field' : allowed ? `${v.message ?? 'is invalid'}: ${allowed.map(String).join(', ')}` : (v.message ?? 'is invalid')
      return { field, message }
    })
    const first = problems[0] ?? { field: context, message: 'is invalid' }
    return { statusCode: 400, error: 'Bad Request', message: `${first.field}: ${first.message}`, field: first.field, problems }
  }
  const statusCode = fastifyError.statusCode !== undefined && fastifyError.statusCode >= 400 && fastifyError.statusCode < 600 ? fastifyError.statusCode : 500
  if (statusCode >= 500) return { statusCode, error: 'Internal Server Error', message: 'internal error (logged)' }
  // Fastify's own 4xx: an unparseable JSON body is the body as a whole.
  const field = fastifyError.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || fastifyError.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || statusCode === 413 ? 'body' : undefined
  return { statusCode, error: REASONS[statusCode] ?? 'Error', message: field ? `${field}: ${err.message}` : err.message, ...(field ? { field } : {}) }
}
