/**
 * The one error a bad configuration raises: every problem at once, each with
 * the JSON path (`zones[1].file`) and, when known, the file and line.
 */

export interface ConfigProblem {
  /** JSON path in the file, e.g. `guard.tcp.maxPerClient`; "" for the whole file. */
  readonly path: string
  readonly message: string
  readonly file: string | undefined
  readonly line: number | undefined
}

export class ConfigError extends Error {
  readonly code = 'STEER_ERR_CONFIG_INVALID'
  readonly problems: readonly ConfigProblem[]

  constructor(problems: readonly ConfigProblem[]) {
    super(problems.map(formatConfigProblem).join('\n'))
    this.name = 'ConfigError'
    this.problems = problems
  }
}

/** `file:line: path: message`, the parts that are known. */
export function formatConfigProblem(p: ConfigProblem): string {
  const where = p.file ? `${p.file}${p.line ? `:${p.line}` : ''}: ` : ''
  return `${where}${p.path ? `${p.path}: ` : ''}${p.message}`
}
