/**
 * The published state over the cluster IPC channel, for a worker process: the
 * worker's follower (services/follower.ts) asks the primary for the state and
 * hears its announcements, exactly as a Redis-backed DNS node does from the
 * store. The primary is the only source; if it is gone the worker exits
 * (worker-main.ts), so there is nothing to keep serving from here.
 */
import type { PublishedState, StateFeed } from '../services/index.js'
import { isPrimaryMessage } from './ipc-messages.js'
import type { PrimaryMessage, WorkerMessage } from './ipc-messages.js'

/** A fetch the primary has not answered within this is an error (the follower retries on its poll). */
const FETCH_TIMEOUT_MS = 5000

/** The worker's side of the IPC channel (process.send / process.on('message')). */
export interface IpcChannel {
  send(message: WorkerMessage): void
  on(event: 'message', listener: (message: unknown) => void): void
  off(event: 'message', listener: (message: unknown) => void): void
}

export function createIpcFeed(channel: IpcChannel): StateFeed {
  let nextRequestId = 1
  const pending = new Map<number, { resolve: (state: PublishedState | undefined) => void; reject: (err: Error) => void; timer: NodeJS.Timeout }>()
  const listeners: ((version: number | undefined) => void)[] = []
  const onMessage = (message: unknown): void => {
    if (!isPrimaryMessage(message)) return
    const m = message as PrimaryMessage
    if (m.steerdns === 'state') {
      const waiting = pending.get(m.requestId)
      if (!waiting) return
      pending.delete(m.requestId)
      clearTimeout(waiting.timer)
      waiting.resolve(m.state)
    } else if (m.steerdns === 'announce') {
      for (const l of listeners) l(m.version)
    }
  }
  channel.on('message', onMessage)
  return {
    fetchAll(have) {
      const requestId = nextRequestId++
      return new Promise<PublishedState | undefined>((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(requestId)
          reject(Object.assign(new Error(`the primary process did not answer a state request within ${FETCH_TIMEOUT_MS} ms`), { code: 'STEER_ERR_IPC_TIMEOUT' }))
        }, FETCH_TIMEOUT_MS)
        timer.unref()
        pending.set(requestId, { resolve, reject, timer })
        channel.send({ steerdns: 'fetch', requestId, ...(have ? { have } : {}) })
      })
    },
    onAnnounce(listener) {
      listeners.push(listener)
    },
    async close() {
      channel.off('message', onMessage)
      for (const [, p] of pending) {
        clearTimeout(p.timer)
        p.reject(new Error('feed closed'))
      }
      pending.clear()
    },
  }
}
