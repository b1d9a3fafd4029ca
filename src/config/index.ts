/** Public surface of config/: load and validate the YAML configuration. */
export { checkRole, defaultConfig, formatPath, loadConfigFile, normalizeOrigin, parseConfigText } from './load-config.js'
export { ConfigError, formatConfigProblem } from './config-error.js'
export type { ConfigProblem } from './config-error.js'
export type { ApiConfig, HealthCheckConfig, HealthConfig, ApiRole, ApiTokenConfig, MeasureConfig, NodeRole, SteerdnsConfig, StoreConfig, TcpGuardConfig, ZoneConfig } from './schema.js'
