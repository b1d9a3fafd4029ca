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
