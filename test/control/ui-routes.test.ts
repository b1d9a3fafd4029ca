/**
 * The status page's files through app.inject(): served without a token with
 * their content types and security headers, revalidated by ETag, nothing
 * outside the allow-list (traversal, unknown names) and still behind
 * api.allow. The page's data routes keep their roles.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import Fastify from 'fastify'
import t from 'tap'
import type { Test } from 'tap'
import { buildControlApp } from '../../src/control/index.js'
import type { ControlServices } from '../../src/control/index.js'
import { defaultUiDir, registerUiRoutes, UI_FILES } from '../../src/control/routes/ui-routes.js'
import { createLogger } from '../../src/telemetry/index.js'
import { REPO_ROOT } from '../helpers/steerdns-process.js'

const VIEWER = { authorization: 'Bearer viewer-token-0123456789' }

function fakeServices(): ControlServices {
  const unused = (): never => {
    throw new Error('not used by this test')
  }
  return {
    measurements: { ingest: unused },
    map: { summary: unused, exportJson: unused, importJson: unused },
    targets: { list: () => [], patch: unused },
    overrides: { list: () => [], create: unused, remove: unused },
    explain: { explain: unused },
    audit: { list: () => [] },
    probe: { recipe: unused },
    health: { ready: unused },
    metrics: { contentType: 'text/plain', text: unused },
    decisions: { recent: () => [] },
  }
}

async function build(t: Test, allow = ['127.0.0.0/8', '::1/128']) {
  const app = await buildControlApp({
    api: { tokens: [{ name: 'viewer', token: 'viewer-token-0123456789', roles: ['read'] }], openPaths: [], allow, bodyLimitBytes: 1 << 20, rateLimitPerMinute: 0 },
    services: fakeServices(),
    logger: createLogger({ level: 'silent', identity: 'test', destination: new PassThrough() }),
    version: '0.0.0-test',
  })
  t.teardown(() => app.close())
  return app
}

t.test('the package ui/ folder is found from src/ (and dist/ has the same depth)', async (t) => {
  t.equal(defaultUiDir(), join(REPO_ROOT, 'ui'))
})

t.test('every file is served without a token, with its type and security headers', async (t) => {
  const app = await build(t)
  const expected: Record<string, RegExp> = { 'index.html': /^text\/html/, 'app.js': /^text\/javascript/, 'style.css': /^text\/css/ }
  t.same(Object.keys(UI_FILES).sort(), Object.keys(expected).sort(), 'the allow-list is these three files')
  for (const [name, type] of Object.entries(expected)) {
    const res = await app.inject({ url: `/ui/${name}` })
    t.equal(res.statusCode, 200, name)
    t.match(res.headers['content-type'], type, `${name} content type`)
    t.equal(res.body, readFileSync(join(REPO_ROOT, 'ui', name), 'utf8'), `${name} bytes`)
    t.equal(res.headers['cache-control'], 'no-cache')
    t.equal(res.headers['x-content-type-options'], 'nosniff')
    t.match(res.headers['content-security-policy'], /script-src 'self'/)
    t.match(res.headers['etag'], /^W\/"/)
  }
  for (const url of ['/ui', '/ui/']) {
    const res = await app.inject({ url })
    t.equal(res.statusCode, 200, url)
    t.match(res.headers['content-type'], /^text\/html/)
    t.match(res.body, /<script type="module" src="\/ui\/app\.js">/, `${url} is index.html, with absolute asset paths`)
  }
})

t.test('a wrong token does not matter to the files; the data routes still need the read role', async (t) => {
  const app = await build(t)
  t.equal((await app.inject({ url: '/ui/app.js', headers: { authorization: 'Bearer no-such-token-0000' } })).statusCode, 200)
  t.equal((await app.inject({ url: '/v1/targets' })).statusCode, 401, 'data needs a token')
  t.equal((await app.inject({ url: '/v1/targets', headers: VIEWER })).statusCode, 200)
})

t.test('revalidation: the same ETag gets 304 without a body', async (t) => {
  const app = await build(t)
  const first = await app.inject({ url: '/ui/style.css' })
  const etag = first.headers['etag']
  t.type(etag, 'string')
  const again = await app.inject({ url: '/ui/style.css', headers: { 'if-none-match': String(etag) } })
  t.equal(again.statusCode, 304)
  t.equal(again.body, '')
  t.equal((await app.inject({ url: '/ui/style.css', headers: { 'if-none-match': 'W/"0-0"' } })).statusCode, 200, 'another ETag gets the file')
})

t.test('only the listed names: traversal and unknown files are 404, and nothing is read', async (t) => {
  const app = await build(t)
  const refused = [
    '/ui/..%2Fpackage.json',
    '/ui/%2E%2E%2Fpackage.json',
    '/ui/..%5Cpackage.json',
    '/ui/../package.json',
    '/ui/../../etc/passwd',
    '/ui/%2Fetc%2Fpasswd',
    '/ui/index.html%00.js',
    '/ui/favicon.ico',
    '/ui/constructor',
    '/ui/__proto__',
    '/ui/toString',
    '/ui/app.js/',
    '/ui/sub/app.js',
  ]
  for (const url of refused) {
    const res = await app.inject({ url })
    t.ok(res.statusCode === 404 || res.statusCode === 401, `${url}: ${res.statusCode}`)
    t.notMatch(res.body, /"name":\s*"steerdns"|root:/, `${url} leaks nothing`)
  }
  const unknown = await app.inject({ url: '/ui/favicon.ico' })
  t.equal(unknown.statusCode, 404)
  t.equal(unknown.json().field, 'params.file')
})

t.test('the address allow-list still applies to the files', async (t) => {
  const app = await build(t, ['10.0.0.0/8'])
  t.equal((await app.inject({ url: '/ui', remoteAddress: '127.0.0.1' })).statusCode, 403)
  t.equal((await app.inject({ url: '/ui', remoteAddress: '10.1.2.3' })).statusCode, 200)
})

t.test('a package without ui/ answers 404 with a message, and keeps running', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'steerdns-ui-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'style.css'), 'body{}')
  const app = Fastify()
  registerUiRoutes(app, { dir })
  t.teardown(() => app.close())
  const missing = await app.inject({ url: '/ui' })
  t.equal(missing.statusCode, 404)
  t.match(missing.json().message, /status page is not installed \(index\.html not found/)
  t.equal((await app.inject({ url: '/ui/style.css' })).body, 'body{}', 'the files that are there are served')
})
