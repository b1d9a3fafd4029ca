/**
 * StateFeed over the shared store: one atomic fetch script, the events
 * channel for announcements, and every reconnection reported as "fetch
 * everything" (pub/sub messages sent while a connection was down are lost).
 */
import type { SharedStore } from '../store/index.js'
import { StoreError, StoreErrorCode } from '../store/index.js'
import type { OperatorSnapshot } from './operator-events.js'
import { emptyOperatorSnapshot, PUBLISHED_FORMAT } from './published-state.js'
import type { PublishedState, StateFeed } from './published-state.js'

const SOURCES = new Set(['compiled', 'imported', 'file', 'state', 'empty'])

export function createStoreFeed(store: SharedStore): StateFeed {
  return {
    async fetchAll(have) {
      const raw = await store.fetchState(have?.version ?? -1, have?.mapVersion ?? -1)
      if (raw === 'unchanged') return undefined
      const source = raw.mapSource !== undefined && SOURCES.has(raw.mapSource) ? (raw.mapSource as PublishedState['mapSource']) : 'compiled'
      return {
        format: PUBLISHED_FORMAT,
        version: raw.version,
        mapVersion: raw.mapVersion,
        ...(raw.mapJson !== undefined ? { map: parse(raw.mapJson, 'map') } : {}),
        mapSource: source,
        operator: raw.operatorJson === undefined ? emptyOperatorSnapshot() : { ...(parse(raw.operatorJson, 'operator') as OperatorSnapshot), audit: [] },
        operatorRev: raw.operatorRev,
        health: raw.healthJson === undefined ? {} : (parse(raw.healthJson, 'health') as PublishedState['health']),
      }
    },
    onAnnounce(listener) {
      store.onEvent((event) => listener(event.kind === 'seed' ? undefined : event.version))
      store.onReconnect(() => listener(undefined))
    },
    close: () => store.close(),
  }
}

function parse(text: string, what: string): unknown {
  try {
    return JSON.parse(text) as unknown
  } catch (err) {
    throw new StoreError(StoreErrorCode.CORRUPT, `the shared store's ${what} is not JSON`, { cause: err })
  }
}
