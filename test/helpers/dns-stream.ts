/**
 * Long-lived raw DNS clients for end-to-end tests that need more than one
 * exchange per socket: a TCP connection that writes arbitrary bytes and reads
 * length-framed messages as they arrive (RFC 7766 pipelining, split writes,
 * limits), and a UDP socket that keeps every datagram the server sends back.
 * Neither builds nor parses DNS messages, and neither retries.
 */
import { createSocket } from 'node:dgram'
import type { Socket as UdpSocket } from 'node:dgram'
import { connect, isIPv6 } from 'node:net'
import type { Socket } from 'node:net'

/** `code` is stable: tests may assert it. */
export class StreamTimeoutError extends Error {
  readonly code = 'DNS_STREAM_TIMEOUT'
}

/** Adds the two-byte length prefix (RFC 1035 section 4.2.2). */
export function frame(message: Uint8Array): Buffer {
  const out = Buffer.alloc(2 + message.length)
  out.writeUInt16BE(message.length & 0xffff, 0)
  out.set(message, 2)
  return out
}

interface Waiter<T> {
  resolve(value: T): void
  reject(err: Error): void
  timer: NodeJS.Timeout
}

/**
 * A queue of values that `next(timeoutMs)` takes in arrival order. After
 * `end()`, takers get the end error once the queue is empty.
 */
class ArrivalQueue<T> {
  private readonly items: T[] = []
  private readonly waiters: Waiter<T>[] = []
  private endError: Error | undefined

  push(item: T): void {
    const waiter = this.waiters.shift()
    if (waiter) {
      clearTimeout(waiter.timer)
      waiter.resolve(item)
    } else {
      this.items.push(item)
    }
  }

  end(err: Error): void {
    this.endError = err
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer)
      w.reject(err)
    }
  }

  /** Everything received and not taken yet, emptying the queue. */
  takeAll(): T[] {
    return this.items.splice(0)
  }

  next(timeoutMs: number, what: string): Promise<T> {
    if (this.items.length > 0) return Promise.resolve(this.items.shift() as T)
    if (this.endError) return Promise.reject(this.endError)
    return new Promise<T>((resolve, reject) => {
      const waiter: Waiter<T> = {
        resolve,
        reject,
        timer: setTimeout(() => {
          const i = this.waiters.indexOf(waiter)
          if (i >= 0) this.waiters.splice(i, 1)
          reject(new StreamTimeoutError(`no ${what} within ${timeoutMs} ms`))
        }, timeoutMs),
      }
      this.waiters.push(waiter)
    })
  }
}

export interface TcpOpenOptions {
  /** Source address to connect from (e.g. 127.0.0.2 to look like another client). */
  readonly localAddress?: string
  /** Rejects when the connection is not established in time. Default 5000. */
  readonly timeoutMs?: number
}

/**
 * One TCP connection to a DNS server. Incoming bytes are split into messages
 * by their length prefix; `closed` resolves when the socket closes for any
 * reason (write errors after a server close are expected and swallowed).
 */
export class DnsTcpConnection {
  /** Resolves once the socket has closed; never rejects. */
  readonly closed: Promise<void>
  /** Bytes received that do not (yet) make a whole message. */
  private buffered: Buffer = Buffer.alloc(0)
  private readonly messages = new ArrivalQueue<Buffer>()
  private isClosed = false
  /** The socket error that preceded the close, if any (ECONNRESET, EPIPE...). */
  lastError: NodeJS.ErrnoException | undefined

  private constructor(readonly socket: Socket) {
    this.closed = new Promise<void>((resolve) =>
      socket.once('close', () => {
        this.isClosed = true
        this.messages.end(new Error(`connection closed with ${this.buffered.length} bytes of an unfinished message`))
        resolve()
      }),
    )
    socket.on('error', (err: NodeJS.ErrnoException) => {
      this.lastError = err
    })
    socket.on('data', (chunk: Buffer) => {
      this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk])
      while (this.buffered.length >= 2) {
        const length = this.buffered.readUInt16BE(0)
        if (this.buffered.length < 2 + length) break
        this.messages.push(Buffer.from(this.buffered.subarray(2, 2 + length)))
        this.buffered = this.buffered.subarray(2 + length)
      }
    })
  }

  /** Connects; rejects on a connect error or timeout. */
  static open(host: string, port: number, opts: TcpOpenOptions = {}): Promise<DnsTcpConnection> {
    const timeoutMs = opts.timeoutMs ?? 5000
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port, noDelay: true, ...(opts.localAddress ? { localAddress: opts.localAddress } : {}) })
      const timer = setTimeout(() => {
        socket.destroy()
        reject(new StreamTimeoutError(`tcp connect to ${host}:${port} not done within ${timeoutMs} ms`))
      }, timeoutMs)
      socket.once('error', (err) => {
        clearTimeout(timer)
        reject(err)
      })
      socket.once('connect', () => {
        clearTimeout(timer)
        socket.removeAllListeners('error')
        resolve(new DnsTcpConnection(socket))
      })
    })
  }

  get isOpen(): boolean {
    return !this.isClosed
  }

  /** Writes bytes as given (no prefix added). Resolves when handed to the kernel; errors are swallowed. */
  write(bytes: Uint8Array): Promise<void> {
    if (this.isClosed || this.socket.destroyed || this.socket.writableEnded) return Promise.resolve()
    return new Promise((resolve) => this.socket.write(bytes, () => resolve()))
  }

  /** Writes one message with its length prefix. */
  send(message: Uint8Array): Promise<void> {
    return this.write(frame(message))
  }

  /** The next whole message received (without its prefix). Rejects on timeout or close. */
  next(timeoutMs: number): Promise<Buffer> {
    return this.messages.next(timeoutMs, 'tcp message')
  }

  /** Messages received and not taken yet. */
  takeReceived(): Buffer[] {
    return this.messages.takeAll()
  }

  /** Half-close: no more writes from us; the server may still answer. */
  end(): void {
    if (!this.socket.destroyed) this.socket.end()
  }

  /** True if the socket closed within `timeoutMs` (an upper bound, not a measurement). */
  async closesWithin(timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs)
    })
    const result = await Promise.race([this.closed.then(() => true), timedOut])
    clearTimeout(timer)
    return result
  }

  destroy(): void {
    this.socket.destroy()
  }
}

/** One UDP socket that sends to a server and queues every datagram it sends back. */
export class DnsUdpSocket {
  private readonly datagrams = new ArrivalQueue<Buffer>()

  private constructor(
    private readonly socket: UdpSocket,
    readonly host: string,
    readonly port: number,
  ) {
    socket.on('message', (msg, rinfo) => {
      // Only the server we talk to: a stray datagram is not its answer.
      if (rinfo.port === port && rinfo.address === host) this.datagrams.push(msg)
    })
    socket.on('error', (err) => this.datagrams.end(err))
  }

  /** Binds an ephemeral port on the matching family. */
  static open(host: string, port: number): Promise<DnsUdpSocket> {
    return new Promise((resolve, reject) => {
      const socket = createSocket(isIPv6(host) ? 'udp6' : 'udp4')
      socket.once('error', reject)
      socket.bind(0, () => {
        socket.off('error', reject)
        resolve(new DnsUdpSocket(socket, host, port))
      })
    })
  }

  /** Sends one datagram (zero length allowed). Rejects on a send error. */
  send(bytes: Uint8Array): Promise<void> {
    return new Promise((resolve, reject) => {
      this.socket.send(bytes, this.port, this.host, (err) => (err ? reject(err) : resolve()))
    })
  }

  /** The next datagram from the server. Rejects with StreamTimeoutError after `timeoutMs`. */
  next(timeoutMs: number): Promise<Buffer> {
    return this.datagrams.next(timeoutMs, 'udp datagram')
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.socket.close(() => resolve()))
  }
}
