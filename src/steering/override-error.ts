/**
 * The error operator overrides raise (DESIGN.md, "override": pins, biases and
 * target admin state): every problem at once, each with its JSON path
 * relative to what was checked (`targets[1]`, `[3].prefix`, `sea-1.weight`).
 * Raised by the control plane's compile step; the query path never sees it.
 */
import { formatMapProblem } from './map-error.js'

/** Stable codes, never reused. */
export const OverrideErrorCode = {
  /** Override records (pins, biases) break a rule; see `problems`. */
  INVALID: 'STEER_ERR_OVERRIDE_INVALID',
  /** Target admin state records break a rule; see `problems`. */
  TARGET_STATE_INVALID: 'STEER_ERR_OVERRIDE_TARGET_STATE_INVALID',
  /** A snapshot compiled against one steering setup was published with another (target indices would not line up). */
  SETUP_MISMATCH: 'STEER_ERR_OVERRIDE_SETUP_MISMATCH',
} as const

export type OverrideErrorCode = (typeof OverrideErrorCode)[keyof typeof OverrideErrorCode]

export interface OverrideProblem {
  /** JSON path in the checked value, e.g. `targets[1]`; "" for the whole value. */
  readonly path: string
  readonly message: string
}

export class OverrideError extends Error {
  readonly code: OverrideErrorCode
  readonly problems: readonly OverrideProblem[]

  constructor(code: OverrideErrorCode, problems: readonly OverrideProblem[], options: { cause?: unknown } = {}) {
    super(problems.map(formatOverrideProblem).join('\n'), { cause: options.cause })
    this.name = 'OverrideError'
    this.code = code
    this.problems = problems
  }
}

/** `path: message`, or just the message for the whole value. */
export function formatOverrideProblem(p: OverrideProblem): string {
  return formatMapProblem(p)
}

/** `base.key` / `base[3]` joins for problem paths ("" base gives the bare key). */
export function joinPath(base: string, key: string | number): string {
  if (typeof key === 'number') return `${base}[${key}]`
  if (/^[A-Za-z_$][\w$]*$/.test(key)) return base === '' ? key : `${base}.${key}`
  return `${base}[${JSON.stringify(key)}]`
}
