// The checker against real loopback endpoints that the test turns off and
// on: the first round decides, rise and fall count exactly, an alternating
// endpoint never changes state, seeds, periodic checks that never overlap,
// and stop() that leaves no timer or socket behind. Checks are stepped with
// checkNow(); periodic tests wait for events (bounded by the test timeout)
// and assert order and counts, never durations.
import { once } from 'node:events'
import * as http from 'node:http'
import * as net from 'node:net'
import { PassThrough } from 'node:stream'
import t from 'tap'
import type { Test } from 'tap'
import type { TargetConfig } from '../../src/config/schema.js'
import { createHealthChecker, healthCheckSpecs, HealthErrorCode } from '../../src/health/index.js'
import type { HealthCheckSpec, HealthChecker, HealthCheckerOptions, HealthLogger, HealthState } from '../../src/health/index.js'
import type { HealthError } from '../../src/health/index.js'
import { createLogger } from '../../src/telemetry/index.js'

type Mode = 'ok' | 'fail' | 'hang' | 'refuse'

interface Endpoint {
  readonly port: number
  readonly url: string
  /** 'refuse' closes the listening socket; any other mode opens it again on the same port. */
  set(mode: Mode): Promise<void>
  /** HTTP requests received so far. */
  requests(): number
  /** Most connections open at once so far. */
  maxOpen(): number
  /** Resolves when every accepted connection has closed. */
  allClosed(): Promise<void>
  /** Resolves at the n-th request (counting from the start). */
  requestNumber(n: number): Promise<void>
}

/** An HTTP health endpoint on 127.0.0.1: ok (200), fail (503), hang (never answers) or refuse (not listening). */
async function endpoint(t: Test, initial: Mode = 'ok'): Promise<Endpoint> {
  let mode: Mode = initial === 'refuse' ? 'ok' : initial
  let requests = 0
  let maxOpen = 0
  const sockets = new Set<net.Socket>()
  const waiters: { n: number; resolve: () => void }[] = []
  const server = http.createServer((_req, res) => {
    requests++
    for (const w of waiters.splice(0)) if (requests >= w.n) w.resolve()
    else waiters.push(w)
    if (mode === 'ok') res.writeHead(200).end('ok\n')
    else if (mode === 'fail') res.writeHead(503).end('no\n')
  })
  server.on('connection', (s: net.Socket) => {
    sockets.add(s)
    maxOpen = Math.max(maxOpen, sockets.size)
    s.on('error', () => {})
    s.on('close', () => sockets.delete(s))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as net.AddressInfo).port
  let listening = true
  const set = async (next: Mode): Promise<void> => {
    if (next === 'refuse' && listening) {
      listening = false
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    } else if (next !== 'refuse' && !listening) {
      server.listen(port, '127.0.0.1')
      await once(server, 'listening')
      listening = true
    }
    if (next !== 'refuse') mode = next
  }
  await set(initial)
  t.teardown(() => set('refuse'))
  return {
    port,
    url: `http://127.0.0.1:${port}/healthz`,
    set,
    requests: () => requests,
    maxOpen: () => maxOpen,
    allClosed: async () => {
      for (const s of sockets) await new Promise((resolve) => s.once('close', resolve))
    },
    requestNumber: (n) => (requests >= n ? Promise.resolve() : new Promise((resolve) => waiters.push({ n, resolve }))),
  }
}

/** A TCP listener that accepts and closes; refuse() stops listening. */
async function tcpListener(t: Test): Promise<{ address: string; refuse: () => Promise<void> }> {
  const server = net.createServer((s) => s.destroy())
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const refuse = (): Promise<void> => new Promise((resolve) => (server.listening ? server.close(() => resolve()) : resolve()))
  t.teardown(refuse)
  return { address: `127.0.0.1:${(server.address() as net.AddressInfo).port}`, refuse }
}

function spec(target: string, check: { http?: string; tcp?: string }, extra: Partial<HealthCheckSpec> = {}): HealthCheckSpec {
  return { target, ...check, expectStatus: 200, intervalMs: 1000, timeoutMs: 500, rise: 2, fall: 3, ...extra }
}

interface Recorder {
  readonly changes: string[]
  readonly opts: HealthCheckerOptions
  /** Resolves at the next onChange of `target` to `status`. */
  next(target: string, status: HealthState['status']): Promise<HealthState>
}

function recorder(extra: HealthCheckerOptions = {}): Recorder {
  const changes: string[] = []
  const waiters: { target: string; status: string; resolve: (s: HealthState) => void }[] = []
  let clock = 1_700_000_000_000
  return {
    changes,
    opts: {
      nowMs: () => (clock += 1000),
      random: () => 0.5,
      onChange: (target, state) => {
        changes.push(`${target}:${state.status}`)
        for (const w of waiters.splice(0)) if (w.target === target && w.status === state.status) w.resolve(state)
        else waiters.push(w)
      },
      ...extra,
    },
    next: (target, status) => new Promise((resolve) => waiters.push({ target, status, resolve })),
  }
}

function checker(t: Test, specs: HealthCheckSpec[], opts: HealthCheckerOptions): HealthChecker {
  const c = createHealthChecker(specs, opts)
  t.teardown(() => c.stop())
  return c
}

async function rejection(p: Promise<unknown>): Promise<HealthError> {
  try {
    await p
  } catch (err) {
    return err as HealthError
  }
  throw new Error('expected a rejection')
}

t.test('the first round decides every target it finishes; one it does not finish stays unknown', async (t) => {
  const ok = await endpoint(t, 'ok')
  const failing = await endpoint(t, 'fail')
  const hanging = await endpoint(t, 'hang')
  const refused = await endpoint(t, 'refuse')
  const tcp = await tcpListener(t)
  const rec = recorder()
  const c = checker(
    t,
    [
      spec('ok', { http: ok.url }),
      spec('fail', { http: failing.url }),
      spec('refused', { http: refused.url }),
      spec('tcp', { tcp: tcp.address }),
      spec('hang', { http: hanging.url }, { timeoutMs: 60_000, intervalMs: 120_000 }),
    ],
    rec.opts,
  )
  t.same([...c.current().values()].map((s) => s.status), ['unknown', 'unknown', 'unknown', 'unknown', 'unknown'], 'unknown before any check')
  await c.firstRound(300)
  const now = c.current()
  t.match(now.get('ok'), { status: 'up', consecutiveOk: 1, consecutiveFail: 0 })
  t.match(now.get('fail'), { status: 'down', consecutiveFail: 1, lastError: 'status 503' })
  t.match(now.get('refused'), { status: 'down', lastError: 'ECONNREFUSED' })
  t.match(now.get('tcp'), { status: 'up' })
  t.match(now.get('hang'), { status: 'unknown', changedAtMs: undefined }, 'a check still running after maxWaitMs leaves its target unknown (serving)')
  t.same([...rec.changes].sort(), ['fail:down', 'ok:up', 'refused:down', 'tcp:up'], 'onChange once per decided target')
  t.ok(typeof now.get('ok')?.changedAtMs === 'number' && typeof now.get('ok')?.lastDurationMs === 'number')
  await c.stop()
  t.equal(c.current().get('hang')?.status, 'unknown', 'the aborted check is not a result')
  t.equal(rec.changes.length, 4, 'and not a change')
  await hanging.allClosed()
})

t.test('fall: up goes down on exactly the 3rd consecutive failure, whatever the failure', async (t) => {
  const ep = await endpoint(t, 'ok')
  const rec = recorder()
  const c = checker(t, [spec('sea-1', { http: ep.url }, { timeoutMs: 100 })], rec.opts)
  t.equal((await c.checkNow('sea-1')).status, 'up')
  await ep.set('fail')
  t.match(await c.checkNow('sea-1'), { status: 'up', consecutiveFail: 1, lastError: 'status 503' })
  await ep.set('refuse')
  t.match(await c.checkNow('sea-1'), { status: 'up', consecutiveFail: 2, lastError: 'ECONNREFUSED' })
  await ep.set('hang')
  t.match(await c.checkNow('sea-1'), { status: 'down', consecutiveFail: 3, lastError: 'timeout after 100 ms' })
  t.same(rec.changes, ['sea-1:up', 'sea-1:down'])
})

t.test('rise: down goes up on exactly the 2nd consecutive success; a failure in between starts over', async (t) => {
  const ep = await endpoint(t, 'fail')
  const rec = recorder()
  const c = checker(t, [spec('sea-1', { http: ep.url })], rec.opts)
  t.equal((await c.checkNow('sea-1')).status, 'down')
  await ep.set('ok')
  t.match(await c.checkNow('sea-1'), { status: 'down', consecutiveOk: 1 })
  await ep.set('fail')
  t.match(await c.checkNow('sea-1'), { status: 'down', consecutiveOk: 0 })
  await ep.set('ok')
  t.match(await c.checkNow('sea-1'), { status: 'down', consecutiveOk: 1 })
  t.match(await c.checkNow('sea-1'), { status: 'up', consecutiveOk: 2 })
  t.same(rec.changes, ['sea-1:down', 'sea-1:up'])
})

t.test('an endpoint alternating ok and fail never changes the decided state (rise 2, fall 3)', async (t) => {
  for (const first of ['ok', 'fail'] as const) {
    const ep = await endpoint(t, first)
    const rec = recorder()
    const c = checker(t, [spec('flappy', { http: ep.url })], rec.opts)
    let mode: Mode = first
    const statuses = new Set<string>()
    for (let i = 0; i < 20; i++) {
      statuses.add((await c.checkNow('flappy')).status)
      mode = mode === 'ok' ? 'fail' : 'ok'
      await ep.set(mode)
    }
    t.equal(ep.requests(), 20)
    t.same([...statuses], [first === 'ok' ? 'up' : 'down'], `starting ${first}: one status throughout`)
    t.same(rec.changes, [`flappy:${first === 'ok' ? 'up' : 'down'}`], 'one change: the first decision')
  }
})

t.test('seed: a target down before the restart and still down is never up', async (t) => {
  const ep = await endpoint(t, 'fail')
  const rec = recorder()
  const c = checker(t, [spec('sea-1', { http: ep.url })], rec.opts)
  c.seed(new Map([['sea-1', { status: 'down', changedAtMs: 42 }]]))
  t.match(c.current().get('sea-1'), { status: 'down', changedAtMs: 42 }, 'down from the seed, before any check')
  await c.firstRound(5000)
  for (let i = 0; i < 3; i++) t.equal((await c.checkNow('sea-1')).status, 'down')
  t.same(rec.changes, [], 'never a change, never up')
  t.equal(c.current().get('sea-1')?.changedAtMs, 42)
})

t.test('seed: a target down before the restart that recovered needs rise successes', async (t) => {
  const ep = await endpoint(t, 'ok')
  const rec = recorder()
  const c = checker(t, [spec('sea-1', { http: ep.url })], rec.opts)
  c.seed(new Map([['sea-1', { status: 'down', changedAtMs: 42 }]]))
  await c.firstRound(5000)
  t.match(c.current().get('sea-1'), { status: 'down', consecutiveOk: 1 }, 'one success after a restart does not bring it back')
  t.equal((await c.checkNow('sea-1')).status, 'up')
  t.same(rec.changes, ['sea-1:up'])
})

t.test('seed: a target up before the restart keeps serving through fall-1 failures (the first round cannot knock it out)', async (t) => {
  const ep = await endpoint(t, 'refuse')
  const rec = recorder()
  const c = checker(t, [spec('sea-1', { http: ep.url })], rec.opts)
  c.seed(new Map([['sea-1', { status: 'up', changedAtMs: 42 }]]))
  await c.firstRound(5000)
  t.match(c.current().get('sea-1'), { status: 'up', consecutiveFail: 1, lastError: 'ECONNREFUSED' })
  t.equal((await c.checkNow('sea-1')).status, 'up')
  t.equal((await c.checkNow('sea-1')).status, 'down')
  t.same(rec.changes, ['sea-1:down'])
})

t.test('seed: ignored for targets already checked, unknown ids and bad statuses; logged, no onChange', async (t) => {
  const ep = await endpoint(t, 'ok')
  const lines: string[] = []
  const log: HealthLogger = { info: (o, m) => lines.push(`${m} ${JSON.stringify(o)}`), warn: (o, m) => lines.push(`${m} ${JSON.stringify(o)}`) }
  const rec = recorder({ log })
  const c = checker(t, [spec('a', { http: ep.url }), spec('b', { http: ep.url })], rec.opts)
  await c.checkNow('a')
  c.seed(
    new Map([
      ['a', { status: 'down', changedAtMs: 1 }],
      ['b', { status: 'sideways' as 'down', changedAtMs: 1 }],
      ['gone', { status: 'down', changedAtMs: 1 }],
    ]),
  )
  t.equal(c.current().get('a')?.status, 'up', 'a result beats a seed')
  t.equal(c.current().get('b')?.status, 'unknown', 'a status that is not up/down is ignored')
  t.notOk(c.current().has('gone'))
  t.ok(lines.some((l) => l.includes('"target":"gone"')), 'the unknown id is logged')
  t.same(rec.changes, ['a:up'])
})

t.test('checkNow joins a check in flight instead of starting another', async (t) => {
  const ep = await endpoint(t, 'hang')
  const c = checker(t, [spec('sea-1', { http: ep.url }, { timeoutMs: 60_000 })], recorder().opts)
  const a = c.checkNow('sea-1')
  const b = c.checkNow('sea-1')
  t.equal(a, b, 'the same promise')
  await ep.requestNumber(1)
  await c.stop()
  await a
  t.equal(ep.requests(), 1)
})

t.test('periodic checks follow the endpoint: up, down after fall failures, up after rise successes', async (t) => {
  const ep = await endpoint(t, 'ok')
  const rec = recorder({ random: Math.random })
  const c = checker(t, [spec('sea-1', { http: ep.url }, { intervalMs: 20, timeoutMs: 15, rise: 2, fall: 2 })], rec.opts)
  const up = rec.next('sea-1', 'up')
  c.start()
  c.start()
  await up
  const down = rec.next('sea-1', 'down')
  const before = ep.requests()
  await ep.set('fail')
  await down
  t.ok(ep.requests() - before >= 2, 'at least fall checks saw the failure')
  const upAgain = rec.next('sea-1', 'up')
  await ep.set('ok')
  await upAgain
  t.same(rec.changes, ['sea-1:up', 'sea-1:down', 'sea-1:up'])
})

t.test('a check that hangs longer than the interval is never overlapped by the next', async (t) => {
  const ep = await endpoint(t, 'hang')
  const tcp = await tcpListener(t)
  // The timeout is ten intervals: a scheduler that started checks by the clock would have ~10 open at once.
  const c = checker(t, [spec('slow', { http: ep.url }, { intervalMs: 10, timeoutMs: 100 }), spec('fast', { tcp: tcp.address }, { intervalMs: 10, timeoutMs: 100 })], recorder({ random: Math.random }).opts)
  c.start()
  await ep.requestNumber(4)
  t.equal(ep.maxOpen(), 1, 'one connection at a time')
  t.match(c.current().get('slow'), { status: 'down', lastError: 'timeout after 100 ms' })
  t.equal(c.current().get('fast')?.status, 'up', 'other targets go on meanwhile')
  await c.stop()
  await ep.allClosed()
})

t.test('stop() aborts checks in flight and leaves no timer or socket; idempotent; the checker is unusable after', async (t) => {
  const hanging = await endpoint(t, 'hang')
  const ok = await endpoint(t, 'ok')
  const tcp = await tcpListener(t)
  const count = (): Record<string, number> => {
    const out: Record<string, number> = {}
    for (const r of process.getActiveResourcesInfo()) out[r] = (out[r] ?? 0) + 1
    return out
  }
  const baseline = count()
  const c = createHealthChecker(
    [
      spec('hang', { http: hanging.url }, { timeoutMs: 60_000, intervalMs: 120_000 }),
      spec('ok', { http: ok.url }, { intervalMs: 10, timeoutMs: 5 }),
      spec('tcp', { tcp: tcp.address }, { intervalMs: 10, timeoutMs: 5 }),
    ],
    recorder({ random: () => 0 }).opts,
  )
  c.start()
  await hanging.requestNumber(1)
  await ok.requestNumber(3)
  const during = count()
  t.ok((during['Timeout'] ?? 0) > (baseline['Timeout'] ?? 0), 'timers while running (the count can see them)')
  const first = c.stop()
  t.equal(c.stop(), first, 'a second stop() is the same promise')
  await first
  await hanging.allClosed()
  await ok.allClosed()
  const after = count()
  t.equal(after['Timeout'] ?? 0, baseline['Timeout'] ?? 0, 'no timers left')
  t.equal(after['TCPSocketWrap'] ?? 0, baseline['TCPSocketWrap'] ?? 0, 'no sockets left')
  t.equal((await rejection(c.checkNow('ok'))).code, HealthErrorCode.STOPPED)
  t.equal((await rejection(c.firstRound(10))).code, HealthErrorCode.STOPPED)
  t.throws(() => c.start(), { code: HealthErrorCode.STOPPED })
  t.equal(c.current().get('hang')?.status, 'unknown')
})

t.test('invalid specs: every problem at once, with paths', async (t) => {
  const good = spec('a', { tcp: '127.0.0.1:1' })
  try {
    createHealthChecker([
      good,
      { ...good, target: 'b', http: 'http://127.0.0.1/' },
      { ...good, target: 'c', tcp: undefined },
      { ...good, target: 'd', tcp: undefined, http: 'ftp://x/' },
      { ...good, target: 'e', tcp: '127.0.0.1' },
      { ...good, target: 'f', rise: 0, fall: 1.5, intervalMs: 0, timeoutMs: -1, expectStatus: 99 },
      { ...good },
    ])
    t.fail('expected a throw')
  } catch (err) {
    const e = err as HealthError
    t.equal(e.code, HealthErrorCode.SPEC_INVALID)
    t.same(
      e.problems.map((p) => p.path),
      ['[1]', '[2]', '[3].http', '[4].tcp', '[5].expectStatus', '[5].intervalMs', '[5].timeoutMs', '[5].rise', '[5].fall', '[6].target'],
    )
  }
  const c = checker(t, [], {})
  t.equal((await rejection(c.checkNow('nope'))).code, HealthErrorCode.UNKNOWN_TARGET)
  await c.firstRound(10)
  t.equal(c.current().size, 0)
})

t.test('a throwing onChange is logged and checks go on; a pino logger gets the change lines', async (t) => {
  const ep = await endpoint(t, 'ok')
  const out = new PassThrough()
  const lines: string[] = []
  out.on('data', (b: Buffer) => lines.push(...b.toString().split('\n').filter((l) => l !== '')))
  const log = createLogger({ level: 'info', identity: 'test', destination: out })
  let calls = 0
  const c = checker(t, [spec('sea-1', { http: ep.url }, { fall: 1 })], {
    log,
    onChange: () => {
      calls++
      throw new Error('listener bug')
    },
  })
  t.equal((await c.checkNow('sea-1')).status, 'up')
  await ep.set('fail')
  t.equal((await c.checkNow('sea-1')).status, 'down')
  t.equal(calls, 2)
  await new Promise((resolve) => setImmediate(resolve))
  const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>)
  t.ok(parsed.some((l) => l['msg'] === 'target health down' && l['target'] === 'sea-1' && l['error'] === 'status 503' && l['level'] === 40))
  t.ok(parsed.some((l) => l['msg'] === 'health onChange listener threw'))
})

t.test('healthCheckSpecs takes configured targets as they are', async (t) => {
  const base: Omit<TargetConfig, 'id' | 'health'> = { site: 's', ipv4: ['192.0.2.1'], ipv6: [], location: { lat: 0, lon: 0 }, capacity: 100, tags: [] }
  const health = { http: undefined, tcp: '192.0.2.20:443', expectStatus: 200, intervalMs: 1000, timeoutMs: 500, rise: 2, fall: 3 }
  const targets: TargetConfig[] = [
    { ...base, id: 'sea-1', health },
    { ...base, id: 'sea-2', health: undefined },
  ]
  const specs = healthCheckSpecs(targets)
  t.same(specs.map((s) => s.target), ['sea-1'])
  t.equal(specs[0]?.tcp, '192.0.2.20:443')
  t.doesNotThrow(() => createHealthChecker(specs))
})
