// Test-only: what @types/dns-packet (5.6.x) leaves out of dns-packet 5.6.1's
// real shapes. A module augmentation for what the decoder returns and the
// rdata codecs (it applies to every file tsconfig.test.json checks), and one
// input type for the OPT records tests hand to dnsPacket.encode. Types only,
// plus one identity function; no codec logic.
import type { Answer } from 'dns-packet'

declare module 'dns-packet' {
  /** header.decode in dns-packet's index.js also returns these two, by name. */
  interface DecodedPacket {
    /** Header RCODE as dns-packet names it: 'NOERROR', 'NXDOMAIN', …, 'RCODE_11'. */
    rcode: string
    /** Header OPCODE as dns-packet names it: 'QUERY', 'NOTIFY', …. */
    opcode: string
  }

  /** An rdata codec as dns-packet exports it per type: encode writes RDLENGTH then RDATA. */
  interface RdataCodec<D> {
    encode(data: D, buf?: Buffer, offset?: number): Buffer
    decode(buf: Buffer, offset?: number): D
    encodingLength(data: D): number
  }

  export const a: RdataCodec<string>
  export const aaaa: RdataCodec<string>
  export const txt: RdataCodec<Array<string | Buffer> | string | Buffer>
}

/**
 * One EDNS option as dns-packet's encoder accepts it: a code by number or by
 * name ('CLIENT_SUBNET'), raw `data`, or the ECS fields it encodes itself.
 */
export interface OptionInput {
  code: number | string
  data?: Buffer
  family?: number
  sourcePrefixLength?: number
  scopePrefixLength?: number
  ip?: string
}

/**
 * An OPT record as dns-packet's encoder accepts it: every field but type and
 * name optional (it writes 4096 / 0 for the missing ones), options with any code.
 */
export interface OptRecordInput {
  type: 'OPT'
  name: '.'
  udpPayloadSize?: number
  extendedRcode?: number
  ednsVersion?: number
  flags?: number
  options?: OptionInput[]
}

/**
 * The same object, typed as an Answer for a Packet's sections. @types/dns-packet
 * types OPT as the decoder returns it (every field present, four option kinds),
 * so the one cast between encoder input and that type lives here. Never throws.
 */
export function optRecord(opt: OptRecordInput): Answer {
  return opt as unknown as Answer
}
