/**
 * The README's "Debugging with dig" section is executable: every `$ ` line of
 * its console block is run verbatim with sh against the example
 * configuration (the real CLI on 127.0.0.1:5353, as `npm start` serves it),
 * and its output must be exactly the lines the README shows under it. A
 * README that drifts from the server fails here.
 */
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { REPO_ROOT, startSteerdns } from '../helpers/steerdns-process.js'

interface Example {
  readonly command: string
  readonly expected: string
}

/** The `$ command` / output pairs of the first console block after the heading. */
function examples(markdown: string, heading: string): Example[] {
  const start = markdown.indexOf(`\n## ${heading}\n`)
  if (start < 0) throw new Error(`README has no "## ${heading}" section`)
  const open = markdown.indexOf('```console\n', start)
  const close = markdown.indexOf('\n```', open + 1)
  if (open < 0 || close < 0) throw new Error(`no console block under "## ${heading}"`)
  const lines = markdown.slice(open + '```console\n'.length, close).split('\n')
  const out: { command: string; output: string[] }[] = []
  for (const line of lines) {
    if (line.startsWith('$ ')) out.push({ command: line.slice(2), output: [] })
    else out.at(-1)?.output.push(line)
  }
  return out.map((e) => ({ command: e.command, expected: e.output.join('\n') }))
}

function run(command: string): Promise<{ stdout: string; code: number }> {
  return new Promise((resolve) => {
    execFile('sh', ['-c', command], { timeout: 10_000 }, (err, stdout) => {
      resolve({ stdout: stdout.replace(/\n+$/, ''), code: typeof err?.code === 'number' ? err.code : err ? 1 : 0 })
    })
  })
}

const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8')
const cases = examples(readme, 'Debugging with dig')

t.test('the README shows commands with their outputs', async (t) => {
  t.ok(cases.length >= 5, `${cases.length} commands`)
  t.ok(cases.every((c) => c.expected.length > 0), 'each with the output it gives')
})

t.test('every command in "Debugging with dig" prints what the README shows', async (t) => {
  // The example configuration on its own addresses (--listen is not given: 127.0.0.1:5353 and [::1]:5353).
  const server = await startSteerdns(['serve'], { probe: { host: '127.0.0.1', port: 5353 } })
  t.teardown(() => server.stop())
  for (const c of cases) {
    const { stdout, code } = await run(c.command)
    t.equal(code, 0, `exit 0: ${c.command}`)
    t.equal(stdout, c.expected, c.command)
  }
})
