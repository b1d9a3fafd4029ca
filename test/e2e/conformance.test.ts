/**
 * Runs the black-box conformance battery (test/conformance/check.sh, a copy of
 * the project's shared battery; CONFORMANCE_SCRIPT overrides the path) against
 * the real command line serving the example configuration, with a steered
 * name (api.edge.example.net) as NAME. Every FAIL line is
 * reported as a failed assertion so the log says which RFC rule broke.
 */
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import t from 'tap'
import { getFreePort } from '../helpers/free-port.js'
import { REPO_ROOT, startSteerdns } from '../helpers/steerdns-process.js'

const script = process.env['CONFORMANCE_SCRIPT'] ?? join(REPO_ROOT, 'test', 'conformance', 'check.sh')

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (c: Buffer) => (out += c.toString()))
    child.stderr.on('data', (c: Buffer) => (out += c.toString()))
    child.once('error', reject)
    child.once('exit', (code) => resolve({ code, out }))
  })
}

t.test('conformance battery against the example configuration: 0 failed', async (t) => {
  const port = await getFreePort()
  const server = await startSteerdns(['serve', '--config', join(REPO_ROOT, 'steerdns.yaml'), '--listen', `127.0.0.1:${port}`])
  t.teardown(() => server.stop())
  const env = {
    ...process.env,
    EXPECT_COOKIES: '1',
    RRL_TEST: '1',
    EXPECT_NSID: '1',
    EXPECT_CHAOS: '1',
    TCP_IDLE_WAIT: '15',
    BIG_NAME: 'big.edge.example.net',
    BIG_TYPE: 'TXT',
  }
  const { code, out } = await run('bash', [script, '127.0.0.1', String(port), 'edge.example.net', 'api.edge.example.net'], env)
  const summary = /^(\d+) passed, (\d+) failed$/m.exec(out)
  t.ok(summary, 'the battery printed its summary line')
  for (const line of out.split('\n').filter((l) => l.startsWith('FAIL'))) t.fail(line)
  t.equal(summary?.[2], '0', `0 failed (${summary?.[0] ?? 'no summary'})`)
  t.ok(Number(summary?.[1]) >= 70, 'the checks ran (70 or more passed)')
  t.equal(code, 0, 'battery exit status')
  t.equal(/^(\d+) skipped$/m.exec(out)?.[1], '0', 'nothing skipped (cookies and RRL included)')
})
