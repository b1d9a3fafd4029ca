/**
 * SharedStore over Redis (ioredis; the only folder that imports it). Two
 * connections: one for commands, one subscribed to the events channel.
 * Commands never queue while disconnected and time out after
 * store.timeoutMs, so a caller waits at most that long and gets StoreError
 * UNAVAILABLE; ioredis reconnects in the background (100 ms, growing to 1 s
 * between attempts) and resubscribes, and listeners hear of every
 * reconnection so they can fetch what announcements they missed.
 */
import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import { Redis, ReplyError } from 'ioredis'
import type { RedisOptions } from 'ioredis'
import type { PublishMapResult, SeedState, SharedStore, StoredState, StoreEvent, WriteOperatorResult } from './shared-store.js'
import { storeKeys } from './store-keys.js'
import { StoreError, StoreErrorCode } from './store-error.js'
import {
  CHECKPOINT_SCRIPT,
  FETCH_SCRIPT,
  LOCK_RELEASE_SCRIPT,
  LOCK_RENEW_SCRIPT,
  PUBLISH_HEALTH_SCRIPT,
  PUBLISH_MAP_SCRIPT,
  SEED_SCRIPT,
  WRITE_OPERATOR_SCRIPT,
} from './store-scripts.js'

export interface RedisStoreOptions {
  /** store.url */
  readonly url: string
  readonly keyPrefix: string
  readonly timeoutMs: number
  /** Audit entries kept in the capped list. */
  readonly auditKeep: number
  /** Told about connection errors (rate-limited by the caller if it likes). */
  readonly onError?: (err: Error) => void
}

/** Creates the store and starts connecting; never rejects for an unreachable Redis (see waitConnected). */
export function createRedisStore(opts: RedisStoreOptions): SharedStore {
  return new RedisStore(opts)
}

class RedisStore implements SharedStore {
  readonly description: string
  readonly nodeToken = `${hostname()}:${process.pid}:${randomBytes(6).toString('hex')}`
  private readonly keys
  private readonly command: Redis
  private readonly subscriber: Redis
  private readonly reconnectListeners = new Set<() => void>()
  private readonly eventListeners: ((event: StoreEvent) => void)[] = []
  private closed = false

  constructor(private readonly opts: RedisStoreOptions) {
    this.keys = storeKeys(opts.keyPrefix)
    const url = new URL(opts.url)
    this.description = `redis ${url.host}${url.pathname && url.pathname !== '/' ? url.pathname : '/0'}`
    const base: RedisOptions = {
      lazyConnect: true,
      connectTimeout: opts.timeoutMs,
      commandTimeout: opts.timeoutMs,
      maxRetriesPerRequest: 0,
      retryStrategy: (attempt: number) => Math.min(attempt * 100, 1000),
    }
    // Commands fail at once while disconnected: a write answers 503 instead of hanging.
    this.command = new Redis(opts.url, { ...base, enableOfflineQueue: false })
    // The subscription is queued until connected and renewed after every reconnection.
    this.subscriber = new Redis(opts.url, { ...base, commandTimeout: undefined, autoResubscribe: true })
    for (const connection of [this.command, this.subscriber]) {
      connection.on('error', (err: Error) => this.opts.onError?.(err))
      connection.on('ready', () => {
        // Both must be up: commands fetch, and the subscription hears what follows.
        if (this.command.status !== 'ready' || this.subscriber.status !== 'ready') return
        for (const listener of this.reconnectListeners) listener()
      })
    }
    // Subscribing on every connection: a subscription asked for while disconnected is dropped, and SUBSCRIBE twice is harmless.
    this.subscriber.on('ready', () => {
      if (this.eventListeners.length > 0) this.subscriber.subscribe(this.keys.events).catch(() => undefined)
    })
    this.subscriber.on('message', (_channel: string, message: string) => {
      let event: StoreEvent
      try {
        event = JSON.parse(message) as StoreEvent
      } catch {
        return
      }
      if (typeof event.version !== 'number') return
      for (const listener of this.eventListeners) listener(event)
    })
    this.command.connect().catch(() => undefined)
    this.subscriber.connect().catch(() => undefined)
  }

  isConnected(): boolean {
    return this.command.status === 'ready'
  }

  waitConnected(timeoutMs: number): Promise<boolean> {
    if (this.isConnected()) return Promise.resolve(true)
    return new Promise((resolve) => {
      const done = (ok: boolean): void => {
        clearTimeout(timer)
        this.command.off('ready', onReady)
        resolve(ok)
      }
      const onReady = (): void => done(true)
      const timer = setTimeout(() => done(false), timeoutMs)
      this.command.on('ready', onReady)
    })
  }

  onReconnect(listener: () => void): () => void {
    this.reconnectListeners.add(listener)
    return () => this.reconnectListeners.delete(listener)
  }

  onEvent(listener: (event: StoreEvent) => void): void {
    this.eventListeners.push(listener)
    if (this.eventListeners.length === 1 && this.subscriber.status === 'ready') this.subscriber.subscribe(this.keys.events).catch(() => undefined)
  }

  async fetchState(haveVersion: number, haveMapVersion: number): Promise<StoredState | 'unchanged'> {
    const k = this.keys
    const reply = (await this.run(() =>
      this.command.eval(FETCH_SCRIPT, 7, k.version, k.mapVersion, k.map, k.mapSource, k.operator, k.operatorRev, k.health, String(haveVersion), String(haveMapVersion)),
    )) as (string | null)[]
    if (reply.length === 1) return 'unchanged'
    const [version, mapVersion, mapJson, mapSource, operatorJson, operatorRev, healthJson] = reply
    return {
      version: toInt(version),
      mapVersion: toInt(mapVersion),
      mapJson: mapJson ?? undefined,
      mapSource: mapSource ?? undefined,
      operatorJson: operatorJson ?? undefined,
      operatorRev: toInt(operatorRev),
      healthJson: healthJson ?? undefined,
    }
  }

  async readMapVersion(): Promise<number> {
    return toInt(await this.run(() => this.command.get(this.keys.mapVersion)))
  }

  async publishMap(o: { fenced: boolean; mapVersion: number; mapJson: string; source: string; audit?: string }): Promise<PublishMapResult> {
    const k = this.keys
    const [status, value] = (await this.run(() =>
      this.command.eval(
        PUBLISH_MAP_SCRIPT,
        7,
        k.compileLock,
        k.mapVersion,
        k.map,
        k.mapSource,
        k.version,
        k.events,
        k.audit,
        o.fenced ? this.nodeToken : '',
        String(o.mapVersion),
        o.mapJson,
        o.source,
        String(this.opts.auditKeep),
        o.audit ?? '',
      ),
    )) as [number, number]
    if (status === 1) return { status: 'published', version: value }
    if (status === 0) return { status: 'fenced' }
    return { status: 'stale', currentMapVersion: value }
  }

  async readOperator(): Promise<{ rev: number; json: string | undefined }> {
    const [[, rev], [, json]] = (await this.run(() => this.command.multi().get(this.keys.operatorRev).get(this.keys.operator).exec())) as [[unknown, string | null], [unknown, string | null]]
    return { rev: toInt(rev), json: json ?? undefined }
  }

  async writeOperator(expectRev: number, json: string, audit: readonly string[]): Promise<WriteOperatorResult> {
    const k = this.keys
    const reply = (await this.run(() =>
      this.command.eval(WRITE_OPERATOR_SCRIPT, 5, k.operatorRev, k.operator, k.audit, k.version, k.events, String(expectRev), json, String(this.opts.auditKeep), ...audit),
    )) as number[]
    if (reply[0] === 1) return { ok: true, version: reply[1] as number, rev: reply[2] as number }
    return { ok: false, rev: reply[1] as number }
  }

  async publishHealth(healthJson: string, checksJson: string): Promise<number | undefined> {
    const k = this.keys
    const v = (await this.run(() => this.command.eval(PUBLISH_HEALTH_SCRIPT, 5, k.compileLock, k.health, k.healthChecks, k.version, k.events, this.nodeToken, healthJson, checksJson))) as number
    return v === 0 ? undefined : v
  }

  async readHealthChecks(): Promise<string | undefined> {
    return (await this.run(() => this.command.get(this.keys.healthChecks))) ?? undefined
  }

  readAudit(limit: number): Promise<string[]> {
    return this.run(() => this.command.lrange(this.keys.audit, -Math.max(1, limit), -1))
  }

  async appendMeasurements(json: string): Promise<string> {
    const id = await this.run(() => this.command.xadd(this.keys.measurements, '*', 'b', json))
    if (typeof id !== 'string') throw new StoreError(StoreErrorCode.CORRUPT, 'XADD returned no id')
    return id
  }

  async readMeasurements(afterId: string, count: number): Promise<{ id: string; json: string }[]> {
    const start = afterId === '0-0' ? '-' : `(${afterId}`
    const entries = await this.run(() => this.command.xrange(this.keys.measurements, start, '+', 'COUNT', count))
    const out: { id: string; json: string }[] = []
    for (const [id, fields] of entries) {
      const at = fields.indexOf('b')
      const json = at >= 0 ? fields[at + 1] : undefined
      if (json !== undefined) out.push({ id, json })
    }
    return out
  }

  async loadCheckpoint(): Promise<string | undefined> {
    return (await this.run(() => this.command.get(this.keys.checkpoint))) ?? undefined
  }

  async saveCheckpoint(lastId: string, json: string): Promise<'written' | 'fenced' | 'older'> {
    const k = this.keys
    const r = (await this.run(() => this.command.eval(CHECKPOINT_SCRIPT, 3, k.compileLock, k.checkpoint, k.measurements, this.nodeToken, lastId, json))) as number
    return r === 1 ? 'written' : r === 0 ? 'fenced' : 'older'
  }

  async tryLock(ttlMs: number): Promise<boolean> {
    return (await this.run(() => this.command.set(this.keys.compileLock, this.nodeToken, 'PX', ttlMs, 'NX'))) === 'OK'
  }

  async renewLock(ttlMs: number): Promise<boolean> {
    return (await this.run(() => this.command.eval(LOCK_RENEW_SCRIPT, 1, this.keys.compileLock, this.nodeToken, String(ttlMs)))) === 1
  }

  async releaseLock(): Promise<void> {
    await this.run(() => this.command.eval(LOCK_RELEASE_SCRIPT, 1, this.keys.compileLock, this.nodeToken))
  }

  async seed(s: SeedState): Promise<boolean> {
    const k = this.keys
    const r = await this.run(() =>
      this.command.eval(
        SEED_SCRIPT,
        8,
        k.version,
        k.mapVersion,
        k.map,
        k.mapSource,
        k.operator,
        k.operatorRev,
        k.health,
        k.events,
        String(s.version),
        String(s.mapVersion),
        s.mapJson ?? '',
        s.mapSource,
        s.operatorJson,
        String(s.operatorRev),
        s.healthJson,
      ),
    )
    return r === 1
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.reconnectListeners.clear()
    // quit() waits for replies to commands already sent; disconnect() when that cannot happen.
    await Promise.all(
      [this.command, this.subscriber].map(async (connection) => {
        if (connection.status === 'ready') await connection.quit().catch(() => connection.disconnect())
        else connection.disconnect()
      }),
    )
  }

  /** Runs a command; connection trouble, timeouts and a Redis refusing work for now become StoreError UNAVAILABLE. Script errors (bugs) pass through. */
  private async run<T>(call: () => Promise<T>): Promise<T> {
    if (this.closed) throw new StoreError(StoreErrorCode.UNAVAILABLE, `${this.description}: the store is closed`)
    if (this.command.status !== 'ready') throw new StoreError(StoreErrorCode.UNAVAILABLE, `${this.description} is unreachable (not connected; reconnecting)`)
    try {
      return await call()
    } catch (err) {
      // A Redis that refuses work for now (out of memory, busy with a script, loading, a read-only replica, failing to persist) is unavailable, not a bug.
      if (err instanceof ReplyError && /^(OOM|BUSY|LOADING|READONLY|MISCONF|MASTERDOWN|TRYAGAIN|CLUSTERDOWN)\b/.test((err as Error).message)) {
        throw new StoreError(StoreErrorCode.UNAVAILABLE, `${this.description} refused the command: ${(err as Error).message}`, { cause: err })
      }
      if (err instanceof ReplyError) throw err
      throw new StoreError(StoreErrorCode.UNAVAILABLE, `${this.description} is unreachable: ${(err as Error).message}`, { cause: err })
    }
  }
}

function toInt(text: string | null | undefined): number {
  const n = text === null || text === undefined ? 0 : Number(text)
  return Number.isSafeInteger(n) ? n : 0
}
