/** Public surface of measure/: batch validation, aggregation into the latency map, snapshots, probe recipes. */
export { formatClientPrefix, parseResolverAddress, reduceClient } from './client-prefix.js'
export type { ClientPrefix, PrefixPolicy } from './client-prefix.js'
export { DEFAULT_MAX_BATCH_SIZE, DEFAULT_MAX_FUTURE_SKEW_SEC, DEFAULT_MAX_RTT_MS, parseRfc3339Ms, validateMeasurementBatch } from './report.js'
export type { AcceptedReport, BatchContext, RejectedReport, ValidatedBatch } from './report.js'
export { DEFAULT_OUTLIER_FLOOR_MS, DEFAULT_OUTLIER_FLOOR_PCT, DEFAULT_OUTLIER_K } from './estimator.js'
export type { EstimatorParams, EstimatorState } from './estimator.js'
export { Aggregator, createAggregator, DEFAULT_MAX_ESTIMATORS, DEFAULT_MAX_KEYS, restoreAggregator, SNAPSHOT_FORMAT } from './aggregator.js'
export type {
  AddStats,
  AggregatorOptions,
  AggregatorSnapshot,
  CompileOptions,
  CompileResult,
  CompileStats,
  KeyEstimates,
  SnapshotKey,
  TargetEstimate,
} from './aggregator.js'
export { createRecipeMaker } from './probe-recipe.js'
export type { ProbeRecipeOptions, ProbeRecipeRequest, ProbeRole, ProbnikRecipe, ProbnikRecipeTarget, RecipeMaker, RecipeTarget } from './probe-recipe.js'
export { MeasureError, MeasureErrorCode } from './measure-error.js'
export type { MeasureProblem } from './measure-error.js'
