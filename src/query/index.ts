/** Public surface of query/: the pipeline from a received message to the bytes to send. */
export { createQueryHandler } from './handle-query.js'
export type { GuardDeps, QueryHandler, QueryHandlerDeps, QueryLogEntry, Transport } from './handle-query.js'
export { buildChaosRecords } from './chaos.js'
export type { ChaosIdentity, ChaosRecords } from './chaos.js'
export { RecentDecisions } from './recent-decisions.js'
export type { DecisionRecord, RawDecision } from './recent-decisions.js'
export { AnswerCache, ANSWER_CACHE_ENTRIES, STEERED_REUSE_MS } from './answer-cache.js'
