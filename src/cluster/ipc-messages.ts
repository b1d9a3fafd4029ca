/**
 * What the primary and its DNS worker processes say to each other over the
 * IPC channel Node's cluster module opens, with its "advanced" (structured
 * clone) serialization: typed arrays and the big map JSON pass without a
 * JSON round trip. Every message carries `steerdns`.
 */
import type { SteerdnsConfig } from '../config/index.js'
import type { RawDecision } from '../query/index.js'
import type { PublishedState } from '../services/index.js'

/** A query counter snapshot as JSON (Maps become entry lists, typed arrays plain arrays). */
export interface CountersJson {
  readonly received: { readonly udp: number; readonly tcp: number }
  readonly responsesByRcode: readonly (readonly [number, number])[]
  readonly droppedByReason: readonly (readonly [string, number])[]
  readonly truncated: number
  readonly internalErrors: number
  readonly queriesByType: readonly (readonly [number, number])[]
  readonly decisionsByRule: readonly (readonly [string, number])[]
  readonly ecsQueries: number
  readonly scopeCounts: readonly number[]
  readonly handlingCounts: readonly number[]
  readonly handlingSumSec: number
  readonly answerCache: { readonly hits: number; readonly misses: number }
  readonly tcpConnections: number
  readonly rrl?: { readonly sent: number; readonly dropped: number; readonly slipped: number; readonly accounts: number }
}

export type WorkerMessage =
  /** The worker listens for messages: send it its configuration (anything sent before this is lost). */
  | { readonly steerdns: 'hello' }
  /** Listening on every address: the worker serves. */
  | { readonly steerdns: 'ready'; readonly listening: readonly string[] }
  /** The published state, as the follower asks for it. */
  | { readonly steerdns: 'fetch'; readonly requestId: number; readonly have?: { readonly version: number; readonly mapVersion: number } }
  /** Counters since start (totals, not deltas) and decisions since the last report. */
  | { readonly steerdns: 'report'; readonly counters: CountersJson; readonly decisions: readonly RawDecision[]; readonly mapVersion: number; readonly stateVersion: number }
  /** Startup failed: the primary stops (a worker that cannot bind will not bind on retry either). */
  | { readonly steerdns: 'failed'; readonly message: string; readonly code?: string }

export type PrimaryMessage =
  /** The configuration to serve (listen ports resolved, cookie secret and RRL rates set for this worker). */
  | { readonly steerdns: 'config'; readonly config: SteerdnsConfig; readonly workerId: number; readonly mapFile?: string }
  | { readonly steerdns: 'state'; readonly requestId: number; readonly state: PublishedState | undefined }
  | { readonly steerdns: 'announce'; readonly version: number }
  /** SIGHUP at the primary: reload zones (and the map file, which the primary publishes). */
  | { readonly steerdns: 'reload' }

export function isWorkerMessage(value: unknown): value is WorkerMessage {
  return typeof value === 'object' && value !== null && typeof (value as { steerdns?: unknown }).steerdns === 'string'
}

export function isPrimaryMessage(value: unknown): value is PrimaryMessage {
  return typeof value === 'object' && value !== null && typeof (value as { steerdns?: unknown }).steerdns === 'string'
}
