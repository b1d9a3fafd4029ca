import t from 'tap'
import type { ConfigError} from '../../src/config/index.js';
import { parseConfigText } from '../../src/config/index.js'

const parse = (text: string, env: NodeJS.ProcessEnv = {}) => parseConfigText(text, { file: '/etc/steerdns/steerdns.yaml', env })

t.test('defaults fill every key an operator leaves out', async (t) => {
  const c = parse('zones: [{ origin: Example.NET., file: zones/example.net.zone }]\nidentity: ns1')
  t.same(c.listen, ['127.0.0.1:5353'])
  t.same(c.zones, [{ origin: 'example.net', file: '/etc/steerdns/zones/example.net.zone' }])
  t.equal(c.dns.maxUdpResponseBytes, 1232)
  t.equal(c.dns.nsid, true)
  t.equal(c.guard.tcp.idleTimeoutMs, 10000)
  t.equal(c.guard.tcp.maxPipelined, 100)
  t.equal(c.log.queries, false)
  t.equal(c.identity, 'ns1')
})

t.test('every problem is reported at once with its JSON path and line', async (t) => {
  const text = [
    'listen: ["127.0.0.1:5353", "localhost"]', // line 1
    'zones:', // 2
    '  - { origin: a.example }', // 3: file missing
    '  - { origin: b.example, file: 7 }', // 4: wrong type
    'dns:', // 5
    '  maxUdpResponseBytes: 100', // 6: below 512
    '  colour: blue', // 7: unknown key
  ].join('\n')
  const err = t.throws(() => parse(text)) as ConfigError
  t.equal(err.code, 'STEER_ERR_CONFIG_INVALID')
  const got = err.problems.map((p) => `${p.line}:${p.path}`).sort()
  t.same(got, ['1:listen[1]', '3:zones[0].file', '4:zones[1].file', '6:dns.maxUdpResponseBytes', '7:dns.colour'].sort())
  t.ok(err.problems.every((p) => p.file === '/etc/steerdns/steerdns.yaml'))
})

t.test('duplicate zones and bad listen addresses are cross-checked', async (t) => {
  const err = t.throws(() =>
    parse('listen: ["999.1.1.1:53"]\nzones: [{ origin: a.example, file: x }, { origin: A.example., file: y }]'),
  ) as ConfigError
  t.same(err.problems.map((p) => p.path).sort(), ['listen[0]', 'zones[1].origin'])
})

t.test('${NAME} is replaced from the environment; an unset one is an error with its line', async (t) => {
  const c = parse('identity: "${NODE_NAME}-dns"', { NODE_NAME: 'sea' })
  t.equal(c.identity, 'sea-dns')
  const err = t.throws(() => parse('log: { level: info }\nidentity: "${MISSING_VAR}"')) as ConfigError
  t.equal(err.problems.length, 1)
  t.equal(err.problems[0]?.line, 2)
  t.match(err.problems[0]?.message, /MISSING_VAR/)
})

t.test('YAML syntax errors name the line', async (t) => {
  const err = t.throws(() => parse('listen: [\n  "127.0.0.1:53"\nzones: {')) as ConfigError
  t.ok(err.problems.length >= 1)
  t.ok(err.problems.every((p) => typeof p.line === 'number' && p.line > 0))
})

t.test('the example configuration is valid', async (t) => {
  const { loadConfigFile } = await import('../../src/config/index.js')
  const c = await loadConfigFile(new URL('../../steerdns.yaml', import.meta.url).pathname)
  t.ok(c.zones.length >= 1)
  t.equal(c.identity, 'steerdns-example-1')
})

const steering = (targets: string, services: string) =>
  `zones: [{ origin: edge.example.net, file: z.zone }]\ntargets:\n${targets}\nservices:\n${services}\n`

t.test('targets and services: defaults, resolved paths and normalised names', async (t) => {
  const c = parse(
    steering(
      '  - { id: sea-1, site: seattle, ipv4: [192.0.2.10], ipv6: ["2001:db8::10"], location: { lat: 47.6, lon: -122.3 }, tags: [us-west] }',
      '  - { name: API.edge.example.net., pool: [sea-1, "tag:us-west"] }',
    ) + 'map: { file: state/map.json }\ngeo: { city: geo-data/example-city.mmdb }\n',
  )
  t.equal(c.targets[0]?.capacity, 100)
  t.same(c.services[0], { name: 'api.edge.example.net', pool: ['sea-1', 'tag:us-west'], answers: 1, ttl: { min: 10, max: 60 }, allDown: 'best' })
  t.same(c.map, { file: '/etc/steerdns/state/map.json', ipv4Prefix: 24, ipv6Prefix: 48, tolerancePct: 10, staleAfterSec: 3600 })
  t.equal(c.geo.city, '/etc/steerdns/geo-data/example-city.mmdb')
})

t.test('steering problems are reported with their paths, all at once', async (t) => {
  const err = t.throws(() =>
    parse(
      steering(
        [
          '  - { id: a, ipv4: [192.0.2.1], location: { lat: 1, lon: 1 } }',
          '  - { id: b, ipv4: [192.0.2.2], location: { lat: 1, lon: 1 } }',
          '  - { id: c, ipv4: [192.0.2.300], ipv6: ["2001:db8::zz"], location: { lat: 91, lon: 1 } }',
          '  - { id: a, location: { lat: 1, lon: 1 } }',
        ].join('\n'),
        [
          '  - { name: api.edge.example.net, pool: [a, nope, "tag:missing"], ttl: { min: 90, max: 60 } }',
          '  - { name: api.other.example, pool: [b] }',
          '  - { name: API.edge.example.net, pool: [c], allDown: sometimes }',
        ].join('\n'),
      ),
    ),
  ) as ConfigError
  const messages = err.problems.map((p) => `${p.path}: ${p.message}`)
  for (const want of [
    'targets[2].ipv4[0]: not an IPv4 address',
    'targets[2].ipv6[0]: not an IPv6 address',
    'targets[3].id: target id a is already used by targets[0]',
    'targets[3]: needs at least one address in ipv4 or ipv6',
    'services[0].pool[1]: unknown target nope',
    'services[0].pool[2]: no target has tag missing',
    'services[0].ttl.min: must not exceed ttl.max (60)',
    'services[1].name: api.other.example is not inside any configured zone',
    'services[2].name: service api.edge.example.net is already defined at services[0]',
  ]) {
    t.ok(messages.includes(want), want)
  }
  t.ok(messages.some((m) => m.startsWith('targets[2].location.lat:')), 'latitude out of range')
  t.ok(messages.some((m) => m.startsWith('services[2].allDown: must be one of best, all, static')), 'allDown policy')
  t.ok(err.problems.every((p) => typeof p.line === 'number'), 'every problem has a line')
})
