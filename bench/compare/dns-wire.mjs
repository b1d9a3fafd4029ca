// Just enough DNS wire format for the comparison bench: encodes queries
// (EDNS0 OPT with an optional Client Subnet option, RFC 7871), frames them for
// dnsperf's binary input (-B: a 2-byte length before each message), and
// decodes the few fields the bench checks in a reply (rcode, A/AAAA answers,
// SOA serial, ECS scope). Hand-written: the bench must not depend on src/,
// whose wire codec is what is being measured.
import { createSocket } from 'node:dgram'
import { isIPv4 } from 'node:net'

export const QTYPE = { A: 1, NS: 2, CNAME: 5, SOA: 6, MX: 15, TXT: 16, AAAA: 28, SRV: 33 }
const RCODES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED']

function encodeName(name) {
  const labels = name.split('.').filter(Boolean)
  return Buffer.concat([...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'ascii')])), Buffer.from([0])])
}

/** Address bytes of an IPv4 or IPv6 address (no zone id). */
export function addressBytes(address) {
  if (isIPv4(address)) return Buffer.from(address.split('.').map(Number))
  const [head, tail = ''] = address.includes('::') ? address.split('::') : [address, undefined]
  const h = head ? head.split(':') : []
  const t = tail ? tail.split(':') : []
  const groups = address.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h
  const out = Buffer.alloc(16)
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2))
  return out
}

/** The ECS option (code 8) for `address/sourceLen`; host bits past the prefix must be zero. */
function encodeEcs(subnet) {
  const [address, lenText] = subnet.split('/')
  const sourceLen = Number(lenText)
  const family = isIPv4(address) ? 1 : 2
  const bytes = addressBytes(address).subarray(0, Math.ceil(sourceLen / 8))
  const opt = Buffer.alloc(8 + bytes.length)
  opt.writeUInt16BE(8, 0)
  opt.writeUInt16BE(4 + bytes.length, 2)
  opt.writeUInt16BE(family, 4)
  opt[6] = sourceLen
  opt[7] = 0
  bytes.copy(opt, 8)
  return opt
}

/**
 * One query (RD=0, as a resolver asks an authoritative server) with an OPT
 * record advertising 1232 bytes, as resolvers do since DNS flag day 2020, and
 * an ECS option when `ecs` ("198.51.100.0/24") is given.
 */
export function encodeQuery(id, name, qtype, ecs) {
  const header = Buffer.alloc(12)
  header.writeUInt16BE(id, 0)
  header.writeUInt16BE(1, 4)
  header.writeUInt16BE(1, 10)
  const options = ecs ? encodeEcs(ecs) : Buffer.alloc(0)
  const tail = Buffer.alloc(4 + 11)
  tail.writeUInt16BE(qtype, 0)
  tail.writeUInt16BE(1, 2)
  tail.writeUInt16BE(41, 5)
  tail.writeUInt16BE(1232, 7)
  tail.writeUInt16BE(options.length, 13)
  return Buffer.concat([header, encodeName(name), tail, options])
}

/** dnsperf -B framing: each message preceded by its length (RFC 1035 section 4.2.2). */
export function frame(message) {
  const prefix = Buffer.alloc(2)
  prefix.writeUInt16BE(message.length)
  return Buffer.concat([prefix, message])
}

function skipName(buf, offset) {
  for (;;) {
    const len = buf[offset]
    if (len === undefined) throw new Error('truncated name')
    if ((len & 0xc0) === 0xc0) return offset + 2
    if (len === 0) return offset + 1
    offset += 1 + len
  }
}

function formatAddress(bytes) {
  if (bytes.length === 4) return [...bytes].join('.')
  const groups = []
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16))
  return groups.join(':') // uncompressed: only compared with other replies
}

/** rcode, A/AAAA answers (sorted), SOA serial if any, and the ECS scope if the reply echoed ECS. */
export function decodeReply(buf) {
  const rcode = RCODES[buf[3] & 0x0f] ?? String(buf[3] & 0x0f)
  const counts = [buf.readUInt16BE(4), buf.readUInt16BE(6), buf.readUInt16BE(8), buf.readUInt16BE(10)]
  let offset = 12
  for (let i = 0; i < counts[0]; i++) offset = skipName(buf, offset) + 4
  const addresses = []
  let serial
  let ecsScope
  const records = counts[1] + counts[2] + counts[3]
  for (let i = 0; i < records; i++) {
    offset = skipName(buf, offset)
    const type = buf.readUInt16BE(offset)
    const rdlen = buf.readUInt16BE(offset + 8)
    const rdata = buf.subarray(offset + 10, offset + 10 + rdlen)
    const inAnswer = i < counts[1]
    if (inAnswer && (type === QTYPE.A || type === QTYPE.AAAA)) addresses.push(formatAddress(rdata))
    if (type === QTYPE.SOA) serial = rdata.readUInt32BE(skipName(rdata, skipName(rdata, 0)))
    if (type === 41) {
      for (let o = 0; o + 4 <= rdata.length; ) {
        const code = rdata.readUInt16BE(o)
        const len = rdata.readUInt16BE(o + 2)
        if (code === 8) ecsScope = rdata[o + 7]
        o += 4 + len
      }
    }
    offset += 10 + rdlen
  }
  return { rcode, addresses: addresses.sort(), serial, ecsScope }
}

/** One UDP query to HOST:PORT; resolves the decoded reply, or null after `timeoutMs`. */
export function query(host, port, name, qtype, ecs, timeoutMs = 500) {
  return new Promise((resolve) => {
    const socket = createSocket(isIPv4(host) ? 'udp4' : 'udp6')
    const id = Math.floor(Math.random() * 0xffff)
    const timer = setTimeout(() => (socket.close(), resolve(null)), timeoutMs)
    socket.on('message', (msg) => {
      if (msg.readUInt16BE(0) !== id) return
      clearTimeout(timer)
      socket.close()
      try {
        resolve(decodeReply(msg))
      } catch {
        resolve(null)
      }
    })
    socket.send(encodeQuery(id, name, qtype, ecs), port, host)
  })
}
