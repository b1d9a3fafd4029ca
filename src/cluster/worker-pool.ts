/**
 * The primary's DNS worker processes (`dns.workers` > 1, `serve --workers`).
 * Each worker is a Node cluster worker running worker-main.ts: it answers
 * DNS on the configured addresses (its own SO_REUSEPORT UDP socket; TCP
 * connections shared out by the primary) from the state this process
 * publishes, fetched over IPC like a Redis DNS node fetches from the store.
 *
 * A worker that dies is started again after a second; its counters are kept,
 * so the summed counters never go back. Workers report every second: the
 * summed counters and their decisions feed this process's /metrics and
 * /v1/decisions, which lag the workers by at most that second.
 */
import cluster from 'node:cluster'
import type { Worker } from 'node:cluster'
import { fileURLToPath } from 'node:url'
import type { SteerdnsConfig } from '../config/index.js'
import type { RecentDecisions } from '../query/index.js'
import { createQueryCounters } from '../telemetry/index.js'
import type { Logger, QueryCounters } from '../telemetry/index.js'
import { sumCountersInto } from './counters-json.js'
import { isWorkerMessage } from './ipc-messages.js'
import type { CountersJson, PrimaryMessage, WorkerMessage } from './ipc-messages.js'
import type { StateSource } from './state-source.js'

/** Where a worker starts (dist/cluster/worker-main.js next to this file once built). */
const WORKER_MAIN = fileURLToPath(new URL('./worker-main.js', import.meta.url))
const RESTART_DELAY_MS = 1000
const READY_TIMEOUT_MS = 30_000

export interface WorkerView {
  readonly id: number
  readonly pid: number | undefined
  readonly up: boolean
  readonly restarts: number
  /** Queries this worker received (since it last started). */
  readonly received: number
  readonly stateVersion: number
}

export interface WorkerPool {
  /** Every worker's counters summed (those of workers that exited included). */
  readonly counters: QueryCounters
  tcpConnections(): number
  rrl(): { sent: number; dropped: number; slipped: number; accounts: number } | undefined
  workers(): readonly WorkerView[]
  /** Tells every worker a new state version is published. */
  announce(version: number): void
  /** SIGHUP: every worker reloads its zone files. */
  reload(): void
  close(): Promise<void>
}

interface Slot {
  readonly id: number
  worker: Worker | undefined
  up: boolean
  restarts: number
  last: CountersJson | undefined
  stateVersion: number
}

export interface WorkerPoolOptions {
  readonly count: number
  /** What each worker is sent (listen ports resolved, cookie secret set); `rrlShare` divides the RRL rates. */
  readonly workerConfig: (workerId: number) => SteerdnsConfig
  readonly source: StateSource
  readonly recentDecisions: RecentDecisions
  readonly log: Logger
}

/** Forks the workers and resolves once every one listens; rejects (stopping them) if one cannot start. */
export async function startWorkerPool(opts: WorkerPoolOptions): Promise<WorkerPool> {
  const { log } = opts
  const counters = createQueryCounters()
  const slots: Slot[] = Array.from({ length: opts.count }, (_, i) => ({ id: i + 1, worker: undefined, up: false, restarts: 0, last: undefined, stateVersion: 0 }))
  /** Totals of worker runs that ended. */
  const retired: CountersJson[] = []
  let closing = false
  let firstStart: { resolve: () => void; reject: (err: Error) => void; waiting: Set<number> } | undefined

  cluster.setupPrimary({ exec: WORKER_MAIN, args: [], serialization: 'advanced' })

  const resum = (): void => sumCountersInto(counters, [...retired, ...slots.flatMap((s) => (s.last ? [s.last] : []))])

  const send = (worker: Worker, message: PrimaryMessage): void => {
    if (worker.isConnected()) worker.send(message)
  }

  function fork(slot: Slot): void {
    const worker = cluster.fork({ STEERDNS_WORKER_ID: String(slot.id) })
    slot.worker = worker
    worker.on('message', (message: unknown) => {
      if (!isWorkerMessage(message)) return
      const m = message as WorkerMessage
      switch (m.steerdns) {
        case 'hello':
          send(worker, { steerdns: 'config', config: opts.workerConfig(slot.id), workerId: slot.id })
          break
        case 'ready':
          slot.up = true
          log.info({ worker: slot.id, pid: worker.process.pid, listen: m.listening }, 'dns worker serving')
          firstStart?.waiting.delete(slot.id)
          if (firstStart && firstStart.waiting.size === 0) firstStart.resolve()
          break
        case 'fetch':
          send(worker, { steerdns: 'state', requestId: m.requestId, state: opts.source.current(m.have) })
          break
        case 'report':
          slot.last = m.counters
          slot.stateVersion = m.stateVersion
          for (const d of m.decisions) opts.recentDecisions.record(d.atMs, d.qname, d.qtype, d.key, d.rule, d.targets, d.scopePrefixLen, d.ttlSec)
          resum()
          break
        case 'failed':
          log.error({ worker: slot.id, err: m.message, code: m.code }, 'dns worker could not start')
          firstStart?.reject(Object.assign(new Error(`dns worker ${slot.id}: ${m.message}`), m.code ? { code: m.code } : {}))
          break
      }
    })
    worker.once('exit', (code, signal) => {
      slot.up = false
      slot.worker = undefined
      if (slot.last) retired.push(slot.last)
      slot.last = undefined
      resum()
      if (closing) return
      if (firstStart) {
        firstStart.reject(new Error(`dns worker ${slot.id} exited (${signal ?? `code ${code}`}) before it listened`))
        return
      }
      slot.restarts++
      log.error({ worker: slot.id, code, signal, restarts: slot.restarts }, 'dns worker exited; starting it again')
      setTimeout(() => {
        if (!closing) fork(slot)
      }, RESTART_DELAY_MS).unref()
    })
  }

  const started = new Promise<void>((resolve, reject) => {
    firstStart = { resolve, reject, waiting: new Set(slots.map((s) => s.id)) }
  })
  const timer = setTimeout(() => firstStart?.reject(new Error(`dns workers did not all listen within ${READY_TIMEOUT_MS / 1000} s`)), READY_TIMEOUT_MS)
  for (const slot of slots) fork(slot)

  const stopAll = async (): Promise<void> => {
    closing = true
    await Promise.all(
      slots.map(async (slot) => {
        const worker = slot.worker
        if (!worker || worker.isDead()) return
        const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()))
        worker.process.kill('SIGTERM')
        const killer = setTimeout(() => worker.process.kill('SIGKILL'), 5000)
        await exited
        clearTimeout(killer)
      }),
    )
  }

  try {
    await started
  } catch (err) {
    await stopAll()
    throw err
  } finally {
    clearTimeout(timer)
    firstStart = undefined
  }

  return {
    counters,
    tcpConnections: () => slots.reduce((n, s) => n + (s.last?.tcpConnections ?? 0), 0),
    rrl() {
      const parts = slots.flatMap((s) => (s.last?.rrl ? [s.last.rrl] : []))
      if (parts.length === 0) return undefined
      return parts.reduce((a, b) => ({ sent: a.sent + b.sent, dropped: a.dropped + b.dropped, slipped: a.slipped + b.slipped, accounts: a.accounts + b.accounts }))
    },
    workers: () =>
      slots.map((s) => ({
        id: s.id,
        pid: s.worker?.process.pid,
        up: s.up,
        restarts: s.restarts,
        received: (s.last?.received.udp ?? 0) + (s.last?.received.tcp ?? 0),
        stateVersion: s.stateVersion,
      })),
    announce(version) {
      for (const s of slots) if (s.worker) send(s.worker, { steerdns: 'announce', version })
    },
    reload() {
      for (const s of slots) if (s.worker) send(s.worker, { steerdns: 'reload' })
    },
    close: stopAll,
  }
}
