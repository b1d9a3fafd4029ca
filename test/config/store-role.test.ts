/**
 * The many-node keys: store (kind, url, keyPrefix, timeouts) and role, their
 * defaults (one node, local state: today's behaviour) and the cross-check
 * that a dns-only or control-only node needs a shared store.
 */
import t from 'tap'
import { checkRole, parseConfigText } from '../../src/config/index.js'
import type { ConfigError } from '../../src/config/index.js'

const parse = (text: string) => parseConfigText(text, { file: '/etc/steerdns/steerdns.yaml', env: {} })

t.test('defaults: local store, role all', async (t) => {
  const c = parse('identity: n1')
  t.equal(c.role, 'all')
  t.same(c.store, { kind: 'local', url: 'redis://127.0.0.1:6379/0', keyPrefix: 'steerdns:', timeoutMs: 2000, lockTtlMs: 10000, pollIntervalMs: 5000 })
})

t.test('the interface operators script against parses as written', async (t) => {
  const c = parse(['store: { kind: redis, url: "redis://127.0.0.1:6379/0", keyPrefix: "steerdns:" }', 'role: dns'].join('\n'))
  t.equal(c.store.kind, 'redis')
  t.equal(c.store.url, 'redis://127.0.0.1:6379/0')
  t.equal(c.store.keyPrefix, 'steerdns:')
  t.equal(c.role, 'dns')
  t.equal(parse('store: { kind: redis }\nrole: control').role, 'control')
  t.equal(parse('store: { kind: local }\nrole: all').role, 'all')
})

t.test('role dns or control without a shared store is an error at role, with its line', async (t) => {
  for (const role of ['dns', 'control']) {
    const err = t.throws(() => parse(['identity: n1', `role: ${role}`].join('\n'))) as ConfigError
    t.equal(err.code, 'STEER_ERR_CONFIG_INVALID')
    t.same(
      err.problems.map((p) => [p.line, p.path]),
      [[2, 'role']],
      `role ${role}`,
    )
    t.match(err.problems[0]?.message, /store\.kind: redis/)
  }
  const explicit = t.throws(() => parse('store: { kind: local }\nrole: control')) as ConfigError
  t.equal(explicit.problems[0]?.path, 'role')
})

t.test('bad store keys are reported with every other problem', async (t) => {
  const err = t.throws(() => parse(['store:', '  kind: memcached', '  url: "http://x"', '  colour: red', 'role: everything'].join('\n'))) as ConfigError
  t.same(err.problems.map((p) => `${p.line}:${p.path}`).sort(), ['2:store.kind', '3:store.url', '4:store.colour', '5:role'].sort())
})

t.test('checkRole (serve --role) applies the same rule to a loaded configuration', async (t) => {
  t.same(checkRole({ role: 'all', store: { kind: 'local' } }), [])
  t.same(checkRole({ role: 'dns', store: { kind: 'redis' } }), [])
  t.equal(checkRole({ role: 'dns', store: { kind: 'local' } }).length, 1)
})

t.test('dns.workers: 1..64, and more than one only with the local store (workers follow this process)', async (t) => {
  t.equal(parse('identity: n1').dns.workers, 1, 'one process by default')
  t.equal(parse('dns: { workers: 4 }').dns.workers, 4)
  const range = t.throws(() => parse('dns: { workers: 0 }')) as ConfigError
  t.same(range.problems.map((p) => [p.line, p.path]), [[1, 'dns.workers']])
  const redis = t.throws(() => parse(['store: { kind: redis, url: "redis://127.0.0.1:6379/0", keyPrefix: "s:" }', 'dns:', '  workers: 2'].join('\n'))) as ConfigError
  t.same(redis.problems.map((p) => [p.line, p.path]), [[3, 'dns.workers']])
  t.match(redis.problems[0]?.message, /store\.kind local/)
  t.same(checkRole({ role: 'all', store: { kind: 'local' }, dns: { workers: 2 } }), [], 'serve --workers 2 on a local store')
})
