/** Public surface of telemetry/: the logger and the data-plane counters. */
export { createLogger } from './logger.js'
export type { Logger } from './logger.js'
export { bump, createQueryCounters, HANDLING_BUCKETS_SEC, observeHandling } from './query-counters.js'
export type { QueryCounters } from './query-counters.js'
export { createMetrics } from './metrics.js'
export type { MetricSources, Metrics } from './metrics.js'
