/**
 * GET /v1/explain: the decision DNS would make for a name and client, by the
 * same select() on the same snapshot, with its trace. The client is what ECS
 * would carry (an address or prefix); without one (or with /0) the resolver's
 * address decides, as on the wire (DESIGN.md, decision step 1).
 */
import { ApiProblem } from '../control/index.js'
import type { ExplainService } from '../control/index.js'
import { explain, parseClientKey } from '../steering/index.js'
import type { ClientKey, SteeringState } from '../steering/index.js'

export function createExplainService(steering: SteeringState, nowMs: () => number): ExplainService {
  return {
    explain(query) {
      const name = query.name.toLowerCase().replace(/\.$/, '')
      if (query.client === undefined && query.resolver === undefined) throw new ApiProblem(400, 'query.client', 'give client (an address or prefix, as ECS carries it) or resolver')
      const ecs = query.client === undefined ? undefined : parseKey(query.client, 'ecs', 'query.client')
      const key = ecs && ecs.prefixLen > 0 ? ecs : parseKey(query.resolver ?? '0.0.0.0', 'resolver', 'query.resolver')
      const family = query.type === 'AAAA' ? 6 : 4
      const result = explain(steering.current(), name, key, family, nowMs())
      if (!result) throw new ApiProblem(404, 'query.name', `${name} is not a steered name`)
      return { answer: result.answer, answerTargets: result.answerTargets, scopePrefixLen: result.scopePrefixLen, ttlSec: result.ttlSec, trace: result.trace }
    },
  }
}

function parseKey(text: string, source: ClientKey['source'], field: string): ClientKey {
  try {
    return parseClientKey(text, source)
  } catch (err) {
    throw new ApiProblem(400, field, (err as Error).message)
  }
}
