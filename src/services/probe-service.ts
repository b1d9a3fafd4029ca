/**
 * GET /v1/probe/recipe, shared by the local and the shared (Redis)
 * measurement services: which targets a client should measure next, from
 * the estimates this node holds (none: the recipe explores) and the targets
 * the current steering snapshot may still send clients to.
 */
import { ApiProblem } from '../control/index.js'
import type { ProbeService } from '../control/index.js'
import { createRecipeMaker, reduceClient } from '../measure/index.js'
import type { ClientPrefix, KeyEstimates } from '../measure/index.js'
import { fnv1a32 } from '../steering/index.js'
import type { SteeringSetup, SteeringState } from '../steering/index.js'

export function createProbeService(d: {
  readonly setup: SteeringSetup
  readonly steering: SteeringState
  readonly map: { readonly ipv4Prefix: number; readonly ipv6Prefix: number }
  readonly nowMs: () => number
  /** This node's latency estimates for a client prefix, when it holds any. */
  readonly estimates: (prefix: ClientPrefix, nowMs: number) => KeyEstimates | undefined
}): ProbeService {
  const recipes = createRecipeMaker()
  return {
    recipe(client) {
      const prefix = reduceClient(client, d.map)
      if (typeof prefix === 'string') throw new ApiProblem(400, 'query.client', prefix)
      const now = d.nowMs()
      const view = d.steering.current()
      return recipes({
        client: prefix,
        estimates: d.estimates(prefix, now),
        targets: d.setup.targets.map((t, index) => ({ index, id: t.id, site: t.site, ipv4: t.ipv4, ipv6: t.ipv6 })),
        nowMs: now,
        // Seeded per client and hour: a probe asking twice gets the same recipe, and exploration moves on.
        seed: fnv1a32(`${client}|${Math.floor(now / 3_600_000)}`),
        // Degraded targets are still probed: their measurements are how they recover.
        eligible: (target: number) => (view.targetStates ? view.targetStates.serving(target, now) || view.targetStates.degradedButUp(target, now) : true),
      })
    },
  }
}
