/**
 * The shared store as the services see it: the operations steerdns needs,
 * in its own words, with no Redis type in sight (redis-store.ts implements
 * it over ioredis; tests may fake it). Every method rejects with StoreError
 * STEER_ERR_STORE_UNAVAILABLE when the store is not connected or does not
 * answer within store.timeoutMs; nothing here waits longer than that.
 */

/** What fetchState() read, in one atomic step. Text fields are as stored (JSON). */
export interface StoredState {
  /** Bumped by every published change; 0 when nothing was ever published. */
  readonly version: number
  /** 0 when no map was ever published. */
  readonly mapVersion: number
  /** The map JSON; undefined when the caller holds mapVersion already, or none was published. */
  readonly mapJson: string | undefined
  readonly mapSource: string | undefined
  readonly operatorJson: string | undefined
  readonly operatorRev: number
  readonly healthJson: string | undefined
}

/** A change announcement (PUBLISH on the events channel). */
export interface StoreEvent {
  readonly version: number
  readonly kind: string
}

export type PublishMapResult =
  | { readonly status: 'published'; readonly version: number }
  | { readonly status: 'fenced' }
  | { readonly status: 'stale'; readonly currentMapVersion: number }

export type WriteOperatorResult = { readonly ok: true; readonly version: number; readonly rev: number } | { readonly ok: false; readonly rev: number }

/** A whole state to write into an empty store. */
export interface SeedState {
  readonly version: number
  readonly mapVersion: number
  /** Undefined: leave the map unpublished. */
  readonly mapJson: string | undefined
  readonly mapSource: string
  readonly operatorJson: string
  readonly operatorRev: number
  readonly healthJson: string
}

export interface SharedStore {
  /** Where the store is, for messages ("redis 127.0.0.1:6379/0"). */
  readonly description: string
  /** This process's token: the compile lock's value while it holds the lock. */
  readonly nodeToken: string
  isConnected(): boolean
  /** Resolves true once connected, false after `timeoutMs`. */
  waitConnected(timeoutMs: number): Promise<boolean>
  /** Called after every (re)connection of either connection: announcements may have been missed. Returns an unsubscribe function. */
  onReconnect(listener: () => void): () => void
  /** Receives every announcement; subscribes at once and again after each reconnection. */
  onEvent(listener: (event: StoreEvent) => void): void

  /** Everything published, atomically; 'unchanged' when the version is `haveVersion`. */
  fetchState(haveVersion: number, haveMapVersion: number): Promise<StoredState | 'unchanged'>
  readMapVersion(): Promise<number>
  /** Publishes a map; `fenced` writes only while this node holds the compile lock. */
  publishMap(opts: { readonly fenced: boolean; readonly mapVersion: number; readonly mapJson: string; readonly source: string; readonly audit?: string }): Promise<PublishMapResult>
  readOperator(): Promise<{ readonly rev: number; readonly json: string | undefined }>
  /** Writes the operator state if its rev is still `expectRev`, with audit entries, in one step. */
  writeOperator(expectRev: number, json: string, audit: readonly string[]): Promise<WriteOperatorResult>
  /** Publishes health records and the checker's states; fenced by the compile lock. Undefined when fenced out. */
  publishHealth(healthJson: string, checksJson: string): Promise<number | undefined>
  readHealthChecks(): Promise<string | undefined>
  /** The newest `limit` audit entries, oldest first. */
  readAudit(limit: number): Promise<string[]>
  /** Appends a measurement batch; resolves with its stream id once Redis has it. */
  appendMeasurements(json: string): Promise<string>
  /** Batches after `afterId` ("0-0" for all), oldest first, at most `count`. */
  readMeasurements(afterId: string, count: number): Promise<{ readonly id: string; readonly json: string }[]>
  loadCheckpoint(): Promise<string | undefined>
  /** Fenced; trims the stream below `lastId` when written. */
  saveCheckpoint(lastId: string, json: string): Promise<'written' | 'fenced' | 'older'>
  /** Takes the compile lock if free. */
  tryLock(ttlMs: number): Promise<boolean>
  /** Extends the lock if this node still holds it. */
  renewLock(ttlMs: number): Promise<boolean>
  releaseLock(): Promise<void>
  /** Writes `state` when the store holds none (version missing); false when it does. */
  seed(state: SeedState): Promise<boolean>
  close(): Promise<void>
}
