/**
 * The status page: GET /ui (and /ui/) is ui/index.html, /ui/{file} one of a
 * fixed list of files from the package's ui/ folder. The files hold no data,
 * so the routes are `public` (anyone api.allow admits, no token); the page
 * itself calls the read API with the operator's token. Nothing but the
 * listed names is ever read: a request path never becomes a file path.
 */
import { statSync } from 'node:fs'
import { readFile, stat } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { ApiProblem } from '../api-problem.js'

/** The only files served, with their content types. */
export const UI_FILES: Readonly<Record<string, string>> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'style.css': 'text/css; charset=utf-8',
}

/**
 * Same-origin everything, no inline script or style, no framing: the page
 * handles a bearer token, so nothing else may run beside it.
 */
const CONTENT_SECURITY_POLICY = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

export interface UiRoutesOptions {
  /** The folder holding the files; default: ui/ in the package root. */
  readonly dir?: string
}

/**
 * The package root is the nearest folder above this module with a
 * package.json: src/control/routes under tap's TypeScript loader and
 * dist/control/routes after a build both lead to the same ui/.
 */
export function defaultUiDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let depth = 0; depth < 8; depth++) {
    if (isFile(join(dir, 'package.json'))) return join(dir, 'ui')
    const parent = dirname(dir)
    if (parent === dir) break
    dir = parent
  }
  return fileURLToPath(new URL('../../../ui/', import.meta.url))
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile()
  } catch {
    return false
  }
}

export function registerUiRoutes(app: FastifyInstance, opts: UiRoutesOptions = {}): void {
  const dir = opts.dir ?? defaultUiDir()
  const config = { public: true } as const
  const schema = { hide: true } as const

  // Relative asset URLs would resolve against /ui or /ui/ differently; index.html uses /ui/… only.
  app.get('/ui', { config, schema }, (request, reply) => sendFile(dir, 'index.html', request, reply))
  app.get('/ui/', { config, schema }, (request, reply) => sendFile(dir, 'index.html', request, reply))
  app.get<{ Params: { file: string } }>('/ui/:file', { config, schema }, (request, reply) => sendFile(dir, request.params.file, request, reply))
}

async function sendFile(dir: string, name: string, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const type = Object.hasOwn(UI_FILES, name) ? UI_FILES[name] : undefined
  if (type === undefined) throw new ApiProblem(404, 'params.file', `no status page file "${name}" (files: ${Object.keys(UI_FILES).join(', ')})`)
  const path = join(dir, name)
  let body: Buffer
  let etag: string
  try {
    const info = await stat(path)
    // Size and mtime: an upgrade or an edit changes it; no hashing per request.
    etag = `W/"${info.size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`
    if (request.headers['if-none-match'] === etag) return reply.status(304).headers(cacheHeaders(etag)).send()
    body = await readFile(path)
  } catch (err) {
    request.log.warn({ err: (err as Error).message, file: path }, 'status page file missing')
    throw new ApiProblem(404, undefined, `the status page is not installed (${name} not found under ${dir})`)
  }
  return reply
    .headers(cacheHeaders(etag))
    .header('content-security-policy', CONTENT_SECURITY_POLICY)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .type(type)
    .send(body)
}

/** Revalidate every time: the files are tiny, and a stale app.js after an upgrade would call routes that moved. */
function cacheHeaders(etag: string): Record<string, string> {
  return { etag, 'cache-control': 'no-cache' }
}

