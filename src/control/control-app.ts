/**
 * The HTTP control plane (fastify): JSON in and out, a schema on every route,
 * OpenAPI at /openapi.json, bearer-token roles, an address allow-list,
 * per-token/per-address rate limits and a body size cap. Routes translate
 * HTTP to ControlServices calls; nothing here holds state of its own.
 */
import rateLimit from '@fastify/rate-limit'
import swagger from '@fastify/swagger'
import Fastify, { LogController } from 'fastify'
import type { FastifyError, FastifyInstance } from 'fastify'
import type { ApiConfig, ApiRole } from '../config/index.js'
import { createAcl } from '../guard/index.js'
import { parseAddress } from '../steering/index.js'
import type { Logger } from '../telemetry/index.js'
import { ApiProblem, errorBody } from './api-problem.js'
import { bearerToken, createTokenTable } from './auth.js'
import type { Caller, ControlServices } from './services.js'
import { registerHealthRoutes } from './routes/health-routes.js'
import { registerMapRoutes } from './routes/map-routes.js'
import { registerMeasurementRoutes } from './routes/measurement-routes.js'
import { registerOverrideRoutes } from './routes/override-routes.js'
import { registerReadRoutes } from './routes/read-routes.js'
import { registerTargetRoutes } from './routes/target-routes.js'
import { registerUiRoutes } from './routes/ui-routes.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Any one of these roles may call the route; absent: an open path (api.openPaths) or any role. */
    roles?: readonly ApiRole[]
    /** Static files holding no data (the /ui page): anyone api.allow admits, no token checked. */
    public?: boolean
  }
  interface FastifyRequest {
    caller: Caller
  }
}

export interface ControlAppOptions {
  readonly api: Pick<ApiConfig, 'tokens' | 'openPaths' | 'allow' | 'bodyLimitBytes' | 'rateLimitPerMinute'>
  readonly services: ControlServices
  readonly logger: Logger
  /** Version string in OpenAPI. */
  readonly version: string
}

/** Builds the app (routes registered, not listening). Call `ready()` or `listen()` next. */
export async function buildControlApp(opts: ControlAppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: opts.logger,
    bodyLimit: opts.api.bodyLimitBytes,
    // Request lines at debug: probes post every few seconds, info would drown the log.
    logController: new LogController({ disableRequestLogging: true }),
    ajv: { customOptions: { allErrors: true, removeAdditional: false, coerceTypes: 'array' } },
  }) as unknown as FastifyInstance
  const tokens = createTokenTable(opts.api.tokens)
  const allow = createAcl(opts.api.allow)
  const openPaths = new Set(opts.api.openPaths)

  app.decorateRequest('caller', { getter: () => ({ name: 'anonymous', address: '' }) } as never)
  app.addHook('onRequest', async (request, reply) => {
    const address = request.socket.remoteAddress ?? request.ip
    const bytes = parseAddress(address)
    if (!bytes || !allow.allows(bytes)) throw new ApiProblem(403, undefined, `address ${address} may not use the API (api.allow)`)
    const token = bearerToken(request.headers.authorization)
    const path = request.routeOptions.url ?? request.url
    const principal = token === undefined ? undefined : tokens.identify(token)
    Object.defineProperty(request, 'caller', { value: { name: principal?.name ?? 'anonymous', address }, enumerable: true })
    // The page's files carry no data (its data calls carry the token), and a browser sends no header to fetch them.
    if (request.routeOptions.config.public === true) return
    const isOpen = openPaths.has(path)
    if (isOpen && token === undefined) return
    if (principal === undefined) {
      reply.header('www-authenticate', token === undefined ? 'Bearer realm="steerdns"' : 'Bearer realm="steerdns", error="invalid_token"')
      throw new ApiProblem(401, 'headers.authorization', token === undefined ? 'a bearer token is required' : 'unknown token')
    }
    const roles = request.routeOptions.config.roles
    if (!isOpen && roles && !roles.some((role) => principal.roles.has(role))) {
      throw new ApiProblem(403, undefined, `token ${principal.name} lacks the ${roles.join(' or ')} role`)
    }
  })

  app.setErrorHandler((err: FastifyError | ApiProblem, request, reply) => {
    const body = errorBody(err)
    if (body.statusCode >= 500) request.log.error({ err, url: request.url }, 'api request failed')
    else request.log.debug({ url: request.url, status: body.statusCode, message: body.message, by: request.caller.name }, 'api request refused')
    void reply.status(body.statusCode).send(body)
  })
  app.setNotFoundHandler((request, reply) => {
    void reply.status(404).send({ statusCode: 404, error: 'Not Found', message: `no route ${request.method} ${request.url.split('?')[0]}` })
  })

  if (opts.api.rateLimitPerMinute > 0) {
    await app.register(rateLimit, {
      global: true,
      max: opts.api.rateLimitPerMinute,
      timeWindow: 60_000,
      // After authentication, so a token's budget follows the token across addresses.
      hook: 'preHandler',
      keyGenerator: (request) => (request.caller.name !== 'anonymous' ? `token:${request.caller.name}` : `address:${request.caller.address}`),
      errorResponseBuilder: (request, context) =>
        new ApiProblem(429, undefined, `rate limit: ${context.max} requests per minute for ${request.caller.name !== 'anonymous' ? `token ${request.caller.name}` : `address ${request.caller.address}`}; retry in ${Math.ceil(context.ttl / 1000)} s`),
    })
  }
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'steerdns control plane', version: opts.version, description: 'Measurements in, latency map out, operator overrides. Errors name the offending field.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  })

  registerHealthRoutes(app, opts.services)
  registerMeasurementRoutes(app, opts.services)
  registerMapRoutes(app, opts.services)
  registerTargetRoutes(app, opts.services)
  registerOverrideRoutes(app, opts.services)
  registerReadRoutes(app, opts.services)
  registerUiRoutes(app)
  return app
}
