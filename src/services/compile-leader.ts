/**
 * The one control node that aggregates, compiles and checks health, chosen
 * by the compile lock in the shared store (SET NX PX, renewed at a third of
 * its expiry by compare-and-extend, released by compare-and-delete). While
 * it holds the lock it:
 *   - reads measurement batches from the stream after its cursor and folds
 *     each into the aggregator exactly once: the aggregator is checkpointed
 *     into the store with the last stream id it includes, and a new leader
 *     restores that checkpoint and reads on from its id (a deposed leader's
 *     own state is kept and used instead when it reaches further);
 *   - compiles every measure.compileIntervalSec when batches arrived, and
 *     publishes the map in one fenced step (map + version + announcement;
 *     refused once the lock is no longer ours), so a node dying mid-compile
 *     leaves the published map as it was;
 *   - runs the active health checks and passive health (from the batches it
 *     reads, so every report counts once whichever node took it) and
 *     publishes health states, fenced the same way.
 * The checkpoint is fenced too, and the stream is trimmed only below it.
 */
import type { SteerdnsConfig } from '../config/index.js'
import { createAggregator, restoreAggregator } from '../measure/index.js'
import type { Aggregator, AggregatorSnapshot, KeyEstimates, ClientPrefix } from '../measure/index.js'
import type { StateDocument } from '../state/index.js'
import type { SharedStore } from '../store/index.js'
import { formatMapJson } from '../steering/index.js'
import type { SteeringSetup } from '../steering/index.js'
import type { Logger } from '../telemetry/index.js'
import { createHealthRuntime } from './health-runtime.js'
import type { HealthRuntime, PersistedHealth } from './health-runtime.js'
import { decodeReports } from './report-codec.js'
import type { ReportBatchRecord } from './report-codec.js'

/** Batches read per stream request. */
const READ_BATCH = 500
/** How often the leader reads new batches (passive health stays current; the compile reads too). */
const CONSUME_INTERVAL_MS = 200
/** Longest gap between aggregator checkpoints (bounds what a new leader replays). */
const CHECKPOINT_EVERY_MS = 30_000

export interface CompileLeaderDeps {
  readonly store: SharedStore
  readonly config: SteerdnsConfig
  readonly setup: SteeringSetup
  readonly nowMs: () => number
  readonly log: Logger
  /**
   * Test knob, documented in the README: extra delay between a compile and
   * its publish, so a test can kill the node mid-compile (STEERDNS_TEST_COMPILE_DELAY_MS; 0 in production).
   */
  readonly compileDelayMs: number
}

export interface CompileLeaderCounters {
  compiles: number
  lastCompileSec: number | undefined
  /** Batches this node folded as leader. */
  batches: number
  /** Stream entries skipped because they could not be read. */
  unreadable: number
}

export interface CompileLeader {
  isLeader(): boolean
  readonly counters: Readonly<CompileLeaderCounters>
  /** The aggregator's view of a prefix, when this node leads (probe recipes). */
  estimates(prefix: ClientPrefix, nowMs: number): KeyEstimates | undefined
  /** A map version published by someone else (an import): batches folded before it do not override it. */
  noticeMapVersion(mapVersion: number): void
  start(): void
  /** Stops, checkpoints and releases the lock when held. */
  close(): Promise<void>
}

interface Leading {
  readonly aggregator: Aggregator
  cursor: string
  dirty: boolean
  publishedMapVersion: number
  lastCheckpointMs: number
  checkpointedCursor: string
  health: HealthRuntime | undefined
  /** The checker's last decided states (what a next leader seeds from). */
  checks: PersistedHealth
  healthPending: boolean
  timers: NodeJS.Timeout[]
  /** Leader work (read, compile, checkpoint) runs one step at a time. */
  queue: Promise<unknown>
  /** Set by lose(): resolves once the last step finished and the checker stopped. */
  stopped: Promise<void> | undefined
}

interface Checkpoint {
  readonly lastId: string
  readonly snapshot: AggregatorSnapshot
}

export function createCompileLeader(deps: CompileLeaderDeps): CompileLeader {
  const { store, config, setup, nowMs, log } = deps
  const ttlMs = config.store.lockTtlMs
  const aggregatorOptions = { targetIds: setup.targets.map((t) => t.id), ...config.measure }
  const targetId = (index: number): string => setup.targets[index]?.id ?? `#${index}`
  const counters: CompileLeaderCounters = { compiles: 0, lastCompileSec: undefined, batches: 0, unreadable: 0 }
  let leading: Leading | undefined
  /** What a deposed leader folded, kept in case it leads again and reaches further than the checkpoint. */
  let retained: { aggregator: Aggregator; cursor: string } | undefined
  let lastRenewMs = 0
  let lockTimer: NodeJS.Timeout | undefined
  let transition: Promise<void> = Promise.resolve()
  let closed = false

  function enqueue<T>(lead: Leading, step: () => Promise<T>): Promise<T> {
    const run = lead.queue.then(step)
    lead.queue = run.catch(() => undefined)
    return run
  }

  async function tick(): Promise<void> {
    if (closed) return
    try {
      if (leading) {
        if (await store.renewLock(ttlMs)) lastRenewMs = nowMs()
        else await lose('the compile lock is held by another node now')
      } else if (await store.tryLock(ttlMs)) {
        lastRenewMs = nowMs()
        try {
          await lead()
        } catch (err) {
          // Holding the lock without leading would stall compiles until it expires.
          await store.releaseLock().catch(() => undefined)
          throw err
        }
      }
    } catch (err) {
      // The store is unreachable: past the expiry another node may hold the lock (our writes are fenced anyway).
      if (leading && nowMs() - lastRenewMs >= ttlMs) await lose(`the compile lock could not be renewed: ${(err as Error).message}`)
    }
  }

  async function lead(): Promise<void> {
    const text = await store.loadCheckpoint()
    let checkpoint: Checkpoint | undefined
    try {
      checkpoint = text === undefined ? undefined : (JSON.parse(text) as Checkpoint)
    } catch {
      log.error('the aggregator checkpoint in the shared store is not JSON: starting from the stream alone')
    }
    let aggregator: Aggregator
    let cursor: string
    if (retained && (!checkpoint || !streamIdLess(retained.cursor, checkpoint.lastId))) {
      ;({ aggregator, cursor } = retained)
    } else if (checkpoint) {
      cursor = checkpoint.lastId
      try {
        aggregator = restoreAggregator(checkpoint.snapshot, aggregatorOptions)
      } catch (err) {
        // The batches before lastId are trimmed: what they said is lost, the stream goes on.
        log.error({ err }, 'the aggregator checkpoint cannot be restored (another configuration?): starting empty after it')
        aggregator = createAggregator(aggregatorOptions)
      }
    } else {
      aggregator = createAggregator(aggregatorOptions)
      cursor = '0-0'
    }
    retained = undefined
    const publishedMapVersion = await store.readMapVersion()
    const lead: Leading = {
      aggregator,
      cursor,
      dirty: false,
      publishedMapVersion,
      lastCheckpointMs: nowMs(),
      checkpointedCursor: checkpoint?.lastId ?? '0-0',
      health: undefined,
      checks: {},
      healthPending: false,
      timers: [],
      queue: Promise.resolve(),
      stopped: undefined,
    }
    leading = lead
    log.info({ cursor, publishedMapVersion, from: checkpoint && cursor === checkpoint.lastId ? 'checkpoint' : cursor === '0-0' ? 'stream start' : 'own state' }, 'compile lock taken: this node aggregates, compiles and checks health')
    // While the store is unreachable there is nothing to read or publish (and the lock will lapse).
    const whenConnected = (step: () => Promise<void>, failed: (err: unknown) => void) => (): void => {
      if (store.isConnected()) enqueue(lead, step).catch(failed)
    }
    lead.timers.push(
      setInterval(whenConnected(() => consume(lead), (err) => log.warn({ err: (err as Error).message }, 'reading measurements failed')), CONSUME_INTERVAL_MS),
      setInterval(whenConnected(() => compile(lead), (err) => log.error({ err }, 'map compile failed; the published map keeps serving')), config.measure.compileIntervalSec * 1000),
    )
    for (const timer of lead.timers) timer.unref()
    // Not awaited: the first check round (up to health.startupWaitMs) must not hold up lock renewals.
    const health = startHealth(lead)
    lead.health = health
    void health
      .begin()
      .catch((err: unknown) => log.error({ err }, 'first health round failed'))
      .then(() => {
        if (leading !== lead) return
        health.start()
        publishHealth(lead)
      })
  }

  async function lose(why: string): Promise<void> {
    const lead = leading
    if (!lead) return
    leading = undefined
    for (const timer of lead.timers) clearInterval(timer)
    log.warn({ why }, 'compile lock lost: this node stops compiling and checking')
    // Not awaited here: lose() may be called from a step of that very queue.
    lead.stopped = lead.queue.then(async () => {
      await lead.health?.close()
      retained = { aggregator: lead.aggregator, cursor: lead.cursor }
    })
    await Promise.resolve()
  }

  /** Folds every batch after the cursor. */
  async function consume(lead: Leading): Promise<void> {
    for (;;) {
      const entries = await store.readMeasurements(lead.cursor, READ_BATCH)
      if (leading !== lead) return
      const now = nowMs()
      for (const entry of entries) {
        let decoded: ReturnType<typeof decodeReports>
        try {
          decoded = decodeReports(JSON.parse(entry.json) as ReportBatchRecord, config.map, (id) => setup.targetIndex.get(id))
        } catch (err) {
          // Not JSON, or another shape (a newer node's format, a hand edit): skipped, or it would stop every compile for good.
          log.warn({ id: entry.id, err: (err as Error).message }, 'a measurement batch in the stream is unreadable: skipped')
          counters.unreadable++
          lead.cursor = entry.id
          continue
        }
        lead.aggregator.add(decoded.reports)
        lead.health?.onReports(decoded.reports, now)
        lead.cursor = entry.id
        lead.dirty = true
        counters.batches++
      }
      if (entries.length < READ_BATCH) return
    }
  }

  async function compile(lead: Leading): Promise<void> {
    await consume(lead)
    if (!lead.dirty || leading !== lead) return
    lead.dirty = false
    try {
      await compileAndPublish(lead)
    } catch (err) {
      // Nothing was published: the folded batches still need a map (a store timeout must not wait for new reports).
      lead.dirty = true
      throw err
    }
  }

  async function compileAndPublish(lead: Leading): Promise<void> {
    const previousVersion = Math.max(lead.publishedMapVersion, await store.readMapVersion())
    log.info({ previousVersion }, 'map compile started')
    const result = await lead.aggregator.compileAsync(nowMs(), { previousVersion })
    if (deps.compileDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, deps.compileDelayMs))
    counters.compiles++
    counters.lastCompileSec = result.stats.durationMs / 1000
    const outcome = await store.publishMap({ fenced: true, mapVersion: result.map.version, mapJson: formatMapJson(result.map, targetId), source: 'compiled' })
    if (outcome.status === 'fenced') {
      await lose('the compile lock expired during the compile: its map was not published')
      return
    }
    if (outcome.status === 'stale') {
      // Someone published a newer map (an import) while this compile ran: theirs stands.
      lead.publishedMapVersion = outcome.currentMapVersion
      log.info({ version: result.map.version, current: outcome.currentMapVersion }, 'compiled map not published: a newer one was published meanwhile')
      return
    }
    lead.publishedMapVersion = result.map.version
    log.info({ version: result.map.version, stateVersion: outcome.version, ...result.stats }, 'map compiled and published')
    if (nowMs() - lead.lastCheckpointMs >= CHECKPOINT_EVERY_MS) await checkpoint(lead)
  }

  async function checkpoint(lead: Leading): Promise<void> {
    if (lead.cursor === lead.checkpointedCursor) return
    // Taken in one synchronous step with the cursor: the snapshot includes exactly the batches up to it.
    const lastId = lead.cursor
    const json = JSON.stringify({ lastId, snapshot: lead.aggregator.snapshot() })
    const outcome = await store.saveCheckpoint(lastId, json)
    lead.lastCheckpointMs = nowMs()
    if (outcome === 'written') lead.checkpointedCursor = lastId
    else if (outcome === 'fenced') await lose('the compile lock expired before the checkpoint was written')
  }

  function startHealth(lead: Leading): HealthRuntime {
    const document: StateDocument<PersistedHealth> = {
      name: 'health',
      path: 'redis:health:checks',
      async read() {
        const text = await store.readHealthChecks()
        return text === undefined ? undefined : (JSON.parse(text) as PersistedHealth)
      },
      async write(value) {
        lead.checks = value
        publishHealth(lead)
      },
    }
    return createHealthRuntime({ config, setup, document, nowMs, log: log.child({ module: 'health' }), onChange: () => publishHealth(lead) })
  }

  function publishHealth(lead: Leading): void {
    if (lead.healthPending) return
    lead.healthPending = true
    // Coalesced: a check round's change and its persisted states go out as one publish.
    setImmediate(() => {
      lead.healthPending = false
      if (leading !== lead || !lead.health) return
      const records = Object.fromEntries(lead.health.records())
      store.publishHealth(JSON.stringify(records), JSON.stringify(lead.checks)).then(
        (version) => {
          if (version === undefined) void lose('the compile lock expired: health states not published')
        },
        (err: unknown) => log.warn({ err: (err as Error).message }, 'health states could not be published; the next change retries'),
      )
    })
  }

  return {
    isLeader: () => leading !== undefined,
    counters,
    estimates: (prefix, now) => leading?.aggregator.prefixEstimates(prefix, now),
    noticeMapVersion(mapVersion) {
      if (leading && mapVersion > leading.publishedMapVersion) {
        leading.publishedMapVersion = mapVersion
        leading.dirty = false
      }
    },
    start() {
      const run = (): void => {
        transition = transition.then(tick)
      }
      run()
      lockTimer = setInterval(run, Math.max(100, Math.floor(ttlMs / 3)))
      lockTimer.unref()
    },
    async close() {
      closed = true
      if (lockTimer) clearInterval(lockTimer)
      await transition
      const lead = leading
      if (!lead) return
      for (const timer of lead.timers) clearInterval(timer)
      await enqueue(lead, () => checkpoint(lead)).catch((err: unknown) => log.warn({ err: (err as Error).message }, 'aggregator checkpoint at shutdown failed; the next leader replays from the last one'))
      await lose('shutting down')
      await lead.stopped
      await store.releaseLock().catch(() => undefined)
    },
  }
}

/** "ms-seq" stream ids in order. */
export function streamIdLess(a: string, b: string): boolean {
  const [am = 0, as = 0] = a.split('-').map(Number)
  const [bm = 0, bs = 0] = b.split('-').map(Number)
  return am !== bm ? am < bm : as < bs
}
