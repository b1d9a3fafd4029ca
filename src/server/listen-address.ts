/**
 * Parses listen addresses as operators write them: "127.0.0.1:5353",
 * "[::1]:5353", ":::53" is rejected (ambiguous), a bare port is not accepted.
 */
import { isIP } from 'node:net'

export interface ListenAddress {
  readonly host: string
  readonly port: number
  readonly family: 4 | 6
}

/**
 * Parses "HOST:PORT" (IPv6 in brackets). Throws STEER_ERR_CONFIG_LISTEN with a
 * message naming the bad part; never touches the network.
 */
export function parseListenAddress(text: string): ListenAddress {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(text) ?? /^([^:[\]]+):(\d+)$/.exec(text)
  if (!m) throw listenError(`"${text}" is not HOST:PORT (write IPv6 as [::1]:53)`)
  const host = m[1] as string
  const port = Number(m[2])
  const family = isIP(host)
  if (family !== 4 && family !== 6) throw listenError(`"${host}" is not an IPv4 or IPv6 address`)
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw listenError(`port ${m[2]} is out of range 0-65535`)
  return { host, port, family }
}

function listenError(message: string): Error {
  return Object.assign(new Error(message), { code: 'STEER_ERR_CONFIG_LISTEN' })
}

/** "HOST:PORT" with brackets for IPv6, as logs and dig print it. */
export function formatListenAddress(a: { host: string; port: number }): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`
}
