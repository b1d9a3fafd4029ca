/**
 * The shapes that cross the wire/ boundary: what the decoder makes of a query
 * and what the encoder needs to write a response. Types only.
 */
import type { ResourceRecord } from './record.js'

/** EDNS Client Subnet as received (RFC 7871 section 6), already validated. */
export interface ClientSubnet {
  /** 1 = IPv4, 2 = IPv6. */
  readonly family: 1 | 2
  readonly sourcePrefixLen: number
  readonly scopePrefixLen: number
  /** Full-length address (4 or 16 bytes), bits beyond the source prefix zero. */
  readonly address: Uint8Array
}

/** One EDNS option as raw bytes. */
export interface EdnsOption {
  readonly code: number
  readonly data: Uint8Array
}

/** The OPT pseudo-record of a query (RFC 6891 section 6.1.2). */
export interface QueryEdns {
  readonly version: number
  /** Requestor's UDP payload size as sent (not yet clamped). */
  readonly udpPayloadBytes: number
  /** DNSSEC OK bit. */
  readonly dnssecOk: boolean
  readonly clientSubnet: ClientSubnet | undefined
  readonly nsidRequested: boolean
  /** COOKIE option bytes as received (8 or 16..40 bytes), undefined when absent. */
  readonly cookie: Uint8Array | undefined
}

/** A decoded query: only what answering needs. */
export interface Query {
  readonly id: number
  readonly opcode: number
  readonly recursionDesired: boolean
  readonly checkingDisabled: boolean
  /** Internal form (lowercase, no trailing dot). */
  readonly qname: string
  readonly qtype: number
  readonly qclass: number
  /** The question section exactly as received: echoed so the client's case survives. */
  readonly questionBytes: Uint8Array
  readonly edns: QueryEdns | undefined
}

/**
 * The outcome of decoding one message.
 * - `query`: a QUERY-opcode message with exactly one question, answerable.
 * - `error`: the server must answer with `rcode` (FORMERR, NOTIMP, BADVERS...);
 *   the partial fields are what could be read safely and should be echoed.
 * - `drop`: no answer at all (QR=1, shorter than a header); `reason` is for metrics.
 */
export type DecodeResult =
  | { readonly kind: 'query'; readonly query: Query }
  | {
      readonly kind: 'error'
      readonly rcode: number
      readonly id: number
      readonly opcode: number
      readonly recursionDesired: boolean
      readonly checkingDisabled: boolean
      /** The question to echo, when exactly one could be read. */
      readonly questionBytes: Uint8Array | undefined
      /** The query's EDNS when it could be read: the response then carries OPT. */
      readonly edns: QueryEdns | undefined
      readonly reason: string
    }
  | { readonly kind: 'drop'; readonly reason: string }

/** The OPT record to put in a response. */
export interface ResponseEdns {
  /** Our UDP payload size advertisement (RFC 6891 section 6.2.5). */
  readonly udpPayloadBytes: number
  readonly dnssecOk: boolean
  /** Options to include, in order (ECS echo, NSID...). */
  readonly options: readonly EdnsOption[]
}

/** Everything the encoder needs to write a response. */
export interface Response {
  readonly id: number
  readonly opcode: number
  /** Full rcode; values above 15 need `edns` (their upper bits go in the OPT TTL). */
  readonly rcode: number
  readonly authoritative: boolean
  readonly recursionDesired: boolean
  readonly checkingDisabled: boolean
  readonly questionBytes: Uint8Array | undefined
  readonly answer: readonly ResourceRecord[]
  readonly authority: readonly ResourceRecord[]
  readonly additional: readonly ResourceRecord[]
  /**
   * How many leading records of `additional` must fit or the response is
   * truncated (in-domain glue of a referral, RFC 9471). The rest are dropped
   * silently when space runs out (RFC 2181 section 9).
   */
  readonly requiredAdditional: number
  readonly edns: ResponseEdns | undefined
  /** Largest message allowed (UDP limit, or 65535 on TCP). */
  readonly maxBytes: number
  /** Send the minimal TC=1 answer (header, question, OPT) even if the records fit: a rate-limit slip. */
  readonly truncate?: boolean
}
