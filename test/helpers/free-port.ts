/**
 * Finds a port on 127.0.0.1 that is free for both UDP and TCP, for servers
 * that tests start as separate processes (those cannot be handed port 0 and
 * report back as easily). There is a window between the check and the
 * server's bind; callers start the server at once.
 */
import { createSocket } from 'node:dgram'
import { createServer } from 'node:net'

const HOST = '127.0.0.1'
const MAX_ATTEMPTS = 20

function bindTcp(port: number): Promise<{ port: number; close: () => Promise<void> }> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen({ host: HOST, port, exclusive: true }, () => {
      const address = server.address()
      if (address === null || typeof address === 'string') {
        reject(new Error('tcp server has no port'))
        return
      }
      resolve({ port: address.port, close: () => new Promise((done) => server.close(() => done())) })
    })
  })
}

function bindUdp(port: number): Promise<{ close: () => Promise<void> }> {
  return new Promise((resolve, reject) => {
    const socket = createSocket({ type: 'udp4', reuseAddr: false })
    socket.once('error', (err) => {
      socket.close()
      reject(err)
    })
    socket.bind(port, HOST, () => {
      resolve({ close: () => new Promise((done) => socket.close(() => done())) })
    })
  })
}

/** Resolves with a port free for UDP and TCP on 127.0.0.1; rejects after 20 tries. */
export async function getFreePort(): Promise<number> {
  let lastError: unknown
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const tcp = await bindTcp(0)
    try {
      const udp = await bindUdp(tcp.port)
      await udp.close()
      return tcp.port
    } catch (err) {
      lastError = err
    } finally {
      await tcp.close()
    }
  }
  throw new Error(`no port free for both UDP and TCP on ${HOST} after ${MAX_ATTEMPTS} tries`, { cause: lastError })
}
