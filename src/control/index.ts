/** Public surface of control/: the fastify app and what it needs from main. */
export { buildControlApp } from './control-app.js'
export type { ControlAppOptions } from './control-app.js'
export { ApiProblem } from './api-problem.js'
export type { ErrorBody } from './api-problem.js'
export type * from './services.js'
