/**
 * POST /v1/measurements' validation, shared by the local and the shared
 * (Redis) measurement services: each report judged on its own, and a batch
 * that is not a batch at all answered 400 (413 when too large) naming the
 * field.
 */
import { ApiProblem } from '../control/index.js'
import type { Caller } from '../control/index.js'
import { MeasureError, validateMeasurementBatch } from '../measure/index.js'
import type { SteeringSetup } from '../steering/index.js'

export function validateBatchForApi(
  body: unknown,
  caller: Caller,
  d: {
    readonly setup: SteeringSetup
    readonly nowMs: number
    readonly measure: { readonly maxAgeSec: number }
    readonly map: { readonly ipv4Prefix: number; readonly ipv6Prefix: number }
  },
): ReturnType<typeof validateMeasurementBatch> {
  try {
    return validateMeasurementBatch(body, { resolveTarget: (id) => d.setup.targetIndex.get(id), nowMs: d.nowMs, maxAgeSec: d.measure.maxAgeSec, ipv4Prefix: d.map.ipv4Prefix, ipv6Prefix: d.map.ipv6Prefix, peerAddress: caller.address })
  } catch (err) {
    if (err instanceof MeasureError) {
      const problems = err.problems.map((p) => ({ field: p.path ? `body.${p.path}` : 'body', message: p.message }))
      const first = problems[0] ?? { field: 'body', message: err.message }
      throw new ApiProblem(err.code === 'STEER_ERR_MEASURE_BATCH_TOO_LARGE' ? 413 : 400, first.field, first.message, problems)
    }
    throw err
  }
}
