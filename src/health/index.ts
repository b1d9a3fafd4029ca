/** Public surface of health/: the active health checker (issue 5). */
export { createHealthChecker, healthCheckSpecs } from './health-checker.js'
export type { HealthCheckSpec, HealthChecker, HealthCheckerOptions, HealthLogger, SeedState } from './health-checker.js'
export { nextHealthState, seededState, UNKNOWN_STATE } from './health-state.js'
export type { HealthCheckStatus, HealthState, ProbeResult, Thresholds } from './health-state.js'
export { HealthError, HealthErrorCode } from './health-error.js'
export type { HealthProblem } from './health-error.js'
