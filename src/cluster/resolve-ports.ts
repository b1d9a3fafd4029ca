/**
 * Listen addresses with port 0 made concrete before the workers start: each
 * worker binds its own UDP socket, and port 0 would give each a different
 * port. A port free for both UDP and TCP is picked here, then released for
 * the workers to bind (a short window in which something else could take it;
 * only tests listen on port 0).
 */
import { createSocket } from 'node:dgram'
import { createServer } from 'node:net'
import type { ListenAddress } from '../server/index.js'

const ATTEMPTS = 20

export async function resolveListenPorts(addresses: readonly ListenAddress[]): Promise<ListenAddress[]> {
  const out: ListenAddress[] = []
  for (const addr of addresses) out.push(addr.port === 0 ? { ...addr, port: await freePort(addr) } : addr)
  return out
}

async function freePort(addr: ListenAddress): Promise<number> {
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const udp = createSocket({ type: addr.family === 6 ? 'udp6' : 'udp4', ipv6Only: addr.family === 6 })
    const port = await new Promise<number>((resolve, reject) => {
      udp.once('error', reject)
      udp.bind(0, addr.host, () => resolve(udp.address().port))
    })
    const tcp = createServer()
    const tcpFree = await new Promise<boolean>((resolve) => {
      tcp.once('error', () => resolve(false))
      tcp.listen({ port, host: addr.host, exclusive: true }, () => resolve(true))
    })
    await new Promise<void>((resolve) => udp.close(() => resolve()))
    if (tcpFree) await new Promise<void>((resolve) => tcp.close(() => resolve()))
    if (tcpFree) return port
  }
  throw Object.assign(new Error(`no port free for both UDP and TCP on ${addr.host} after ${ATTEMPTS} attempts`), { code: 'EADDRINUSE' })
}
