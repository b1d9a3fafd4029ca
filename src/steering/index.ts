/** Public surface of steering/: targets, services, the map, and the decision. */
export { clientKey, formatAddress, formatPrefix, isIpv4Mapped, maskAddress, parseAddress, parseClientKey } from './client-key.js'
export type { ClientKey } from './client-key.js'
export { buildSteeringSetup, fnv1a32 } from './targets.js'
export type { Service, ServiceSpec, SteeringSetup, SteeringSetupSpec, Target, TargetSpec } from './targets.js'
export { rendezvousOrder, select } from './select.js'
export type { CandidateTrace, Decision, DecisionRule, DecisionTrace, GeoLocator, MapMatch, MapReader, SteeringView } from './select.js'
export { createSteeringState } from './steering-state.js'
export type { SteeringState, SteeringStateInit } from './steering-state.js'
