/** Public surface of store/: the shared store (Redis) behind the many-node mode. The only folder that imports ioredis. */
export { createRedisStore } from './redis-store.js'
export type { RedisStoreOptions } from './redis-store.js'
export type { PublishMapResult, SeedState, SharedStore, StoredState, StoreEvent, WriteOperatorResult } from './shared-store.js'
export { storeKeys } from './store-keys.js'
export type { StoreKeys } from './store-keys.js'
export { isStoreError, StoreError, StoreErrorCode } from './store-error.js'
