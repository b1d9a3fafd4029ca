/**
 * The explain view of a decision: the same select() the DNS path runs, with
 * its trace, in the JSON shape the CLI prints and the API will serve
 * (`{ answer, scopePrefixLen, ttlSec, trace }`). Control plane only.
 */
import { formatAddress } from './client-key.js'
import type { ClientKey } from './client-key.js'
import { select } from './select.js'
import type { DecisionTrace, SteeringView } from './select.js'

export interface Explanation {
  readonly name: string
  readonly family: 4 | 6
  /** Addresses the DNS answer would carry, best target first. */
  readonly answer: readonly string[]
  /** Target id of each address in `answer`. */
  readonly answerTargets: readonly string[]
  readonly scopePrefixLen: number
  readonly ttlSec: number
  readonly trace: DecisionTrace
}

/**
 * Explains the answer for steered `name` (internal form). Returns undefined
 * when the name is not steered. Never throws.
 */
export function explain(view: SteeringView, name: string, key: ClientKey, family: 4 | 6, nowMs: number): Explanation | undefined {
  const service = view.setup.services.get(name)
  if (!service) return undefined
  const decision = select(service, key, family, view, nowMs, true)
  const answer: string[] = []
  const answerTargets: string[] = []
  for (const index of decision.targets) {
    const target = view.setup.targets[index]
    if (!target) continue
    for (const address of family === 4 ? target.ipv4 : target.ipv6) {
      answer.push(formatAddress(address))
      answerTargets.push(target.id)
    }
  }
  return {
    name,
    family,
    answer,
    answerTargets,
    scopePrefixLen: decision.scopePrefixLen,
    ttlSec: decision.ttlSec,
    trace: decision.trace as DecisionTrace,
  }
}
