/** Public surface of services/: the control plane's state and the services behind the API. */
export { restoreControlState, startControlPlane, STATE_MAP_FILE } from './control-plane.js'
export type { ControlPlane, RestoredState, RestoreOptions, StartControlPlaneOptions } from './control-plane.js'
