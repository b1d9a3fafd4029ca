/**
 * Test kit for answers: zones written as master-file text, questions asked
 * through the real query handler (decode → lookup → encode), responses decoded
 * by dns-packet (an independent parser) and rendered as dig-like lines so a
 * table of cases reads like the dig output an operator would see.
 */
import dnsPacket from 'dns-packet'
import type { Answer, Packet } from 'dns-packet'
import { buildChaosRecords, createQueryHandler } from '../../src/query/index.js'
import type { Transport } from '../../src/query/index.js'
import { createQueryCounters } from '../../src/telemetry/index.js'
import { buildZone, parseZoneText, ZoneSet } from '../../src/zone/index.js'

/** Builds a ZoneSet from { origin: zone text }; throws with the problems if any zone has errors. */
export function zonesFromText(zones: Record<string, string>): ZoneSet {
  const built = Object.entries(zones).map(([origin, text]) => {
    const r = parseZoneText(text, { origin, fileName: `${origin}.zone` })
    const errors = r.problems.filter((p) => p.severity === 'error')
    if (errors.length > 0) throw new Error(errors.map((p) => `${p.file}:${p.line}: ${p.message}`).join('\n'))
    return buildZone(r.origin, r.records)
  })
  return new ZoneSet(built, 1)
}

export interface RenderedResponse {
  rcode: string
  flags: string[]
  answer: string[]
  authority: string[]
  additional: string[]
  /** The decoded packet, for checks the rendering leaves out. */
  packet: Packet
  bytes: Buffer
}

export interface AskOptions {
  transport?: Transport
  edns?: boolean
  udpPayloadBytes?: number
  id?: number
}

/** A handler answering from `zones` with test identity "test-node". */
export function handlerFor(zones: ZoneSet) {
  return createQueryHandler({
    zones: () => zones,
    chaos: buildChaosRecords({ identity: 'test-node', version: 'steerdns-test' }),
    nsid: Buffer.from('test-node'),
    maxUdpResponseBytes: 1232,
    counters: createQueryCounters(),
  })
}

/** Asks one question (class IN unless qclass is given) and renders the response. */
export function ask(zones: ZoneSet, qname: string, qtype: string, opts: AskOptions = {}, qclass = 'IN'): RenderedResponse {
  const query = dnsPacket.encode({
    type: 'query',
    id: opts.id ?? 4242,
    flags: 0,
    questions: [{ name: qname, type: qtype as dnsPacket.RecordType, class: qclass as dnsPacket.RecordClass }],
    additionals: opts.edns === false ? [] : [{ type: 'OPT', name: '.', udpPayloadSize: opts.udpPayloadBytes ?? 1232 } as Answer],
  })
  const bytes = handlerFor(zones)(query, opts.transport ?? 'udp', '192.0.2.1')
  if (!bytes) throw new Error('no response')
  const packet = dnsPacket.decode(Buffer.from(bytes))
  const flags: string[] = []
  if (packet.flag_aa) flags.push('aa')
  if (packet.flag_tc) flags.push('tc')
  if (packet.flag_rd) flags.push('rd')
  const records = (list: Answer[] | undefined) => (list ?? []).filter((a) => a.type !== 'OPT').map(render)
  return {
    rcode: packet.rcode ?? '',
    flags,
    answer: records(packet.answers),
    authority: records(packet.authorities),
    additional: records(packet.additionals),
    packet,
    bytes: Buffer.from(bytes),
  }
}

/** One record as "owner ttl TYPE data", data in a compact presentation form. */
export function render(a: Answer): string {
  const rr = a as Answer & { ttl?: number; data?: unknown }
  return `${a.name.toLowerCase()} ${rr.ttl ?? 0} ${a.type} ${renderData(a.type, rr.data)}`
}

function renderData(type: string, data: unknown): string {
  if (data === undefined || data === null) return ''
  if (Buffer.isBuffer(data)) return data.toString('hex')
  if (typeof data === 'string') return data.toLowerCase()
  if (Array.isArray(data)) return data.map((d) => (Buffer.isBuffer(d) ? JSON.stringify(d.toString()) : String(d))).join(' ')
  if (type === 'SOA') {
    const s = data as { mname: string; rname: string; serial: number; minimum: number }
    return `${s.mname} ${s.rname} ${s.serial} ${s.minimum}`
  }
  if (type === 'MX') {
    const m = data as { preference: number; exchange: string }
    return `${m.preference} ${m.exchange.toLowerCase()}`
  }
  if (type === 'SRV') {
    const s = data as { priority: number; weight: number; port: number; target: string }
    return `${s.priority} ${s.weight} ${s.port} ${s.target.toLowerCase()}`
  }
  return JSON.stringify(data)
}
