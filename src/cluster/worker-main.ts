/**
 * A DNS worker process's entry point (cluster.fork from worker-pool.ts).
 * Waits for the primary's configuration, serves DNS from the state the
 * primary publishes, reports counters every second, reloads zones when told,
 * and exits when the primary goes away or sends SIGTERM.
 */
import { startDnsWorker } from '../main.js'
import type { IpcChannel } from './ipc-feed.js'
import { isPrimaryMessage } from './ipc-messages.js'
import type { PrimaryMessage, WorkerMessage } from './ipc-messages.js'

const send = (message: WorkerMessage): void => {
  if (process.connected && process.send) process.send(message)
}

process.on('message', function onConfig(message: unknown) {
  if (!isPrimaryMessage(message) || (message as PrimaryMessage).steerdns !== 'config') return
  process.off('message', onConfig)
  const { config, workerId } = message as Extract<PrimaryMessage, { steerdns: 'config' }>
  const channel: IpcChannel = {
    send,
    on: (event, listener) => process.on(event, listener),
    off: (event, listener) => process.off(event, listener),
  }
  startDnsWorker({ config, workerId, channel }).then(
    (worker) => {
      const stop = (): void => {
        worker.close().then(
          () => process.exit(0),
          () => process.exit(1),
        )
      }
      process.once('SIGTERM', stop)
      process.once('SIGINT', () => {
        // The terminal's ^C reaches every process of the group: the primary decides.
      })
      // The primary is gone (crashed or killed): nothing publishes to us any more.
      process.once('disconnect', stop)
    },
    (err: unknown) => {
      send({ steerdns: 'failed', message: (err as Error).message, ...((err as NodeJS.ErrnoException).code ? { code: String((err as NodeJS.ErrnoException).code) } : {}) })
      setTimeout(() => process.exit(1), 100)
    },
  )
})
// Only now can the primary's messages reach a listener.
send({ steerdns: 'hello' })
