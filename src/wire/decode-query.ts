/**
 * The query decoder on the hot path: one pass over the received bytes, hand
 * written (no dns-packet), no exceptions, a handful of small allocations (the
 * qname string, the question copy, the EDNS object). It decides drop / error /
 * query; it never looks at zones, ACLs or cookie validity (guard/ does that).
 */
import type { ClientSubnet, DecodeResult, QueryEdns } from './message.js'
import { NAME_SCAN, scanQuestionName, scanned, skipName, skipped } from './name-scan.js'
import { EDNS_OPTION, OPCODE, RCODE, RRTYPE } from './record.js'

const HEADER_BYTES = 12
/** Smallest question: root name (1) + QTYPE + QCLASS. */
const MIN_QUESTION_BYTES = 5
/** Smallest RR: root owner (1) + TYPE, CLASS, TTL, RDLENGTH (10). */
const MIN_RR_BYTES = 11

const FLAG_QR = 0x8000
const FLAG_RD = 0x0100
const FLAG_CD = 0x0010
/** DNSSEC OK, top bit of the OPT TTL's flags half (RFC 3225, RFC 6891 section 6.1.4). */
const EDNS_FLAG_DO = 0x8000

const ECS_FAMILY_IPV4 = 1
const ECS_FAMILY_IPV6 = 2
/** COOKIE option sizes (RFC 7873 section 5.2.2): client only, or client + 8..32 server. */
const COOKIE_CLIENT_BYTES = 8
const COOKIE_MIN_BYTES = 16
const COOKIE_MAX_BYTES = 40

/** Why a message was dropped or refused: stable strings for metrics and tests. */
export const DECODE_REASON = {
  SHORT: 'short-header',
  RESPONSE: 'qr-set',
  INTERNAL: 'internal-error',
  OPCODE: 'opcode-not-implemented',
  QDCOUNT_ZERO: 'qdcount-zero',
  QDCOUNT_MANY: 'qdcount-many',
  COUNTS: 'counts-exceed-size',
  QNAME_TRUNCATED: 'qname-truncated',
  QNAME_POINTER: 'qname-pointer',
  QNAME_LABEL_TYPE: 'qname-label-type',
  QNAME_TOO_LONG: 'qname-too-long',
  QUESTION_TRUNCATED: 'question-truncated',
  RR_NAME: 'rr-name-malformed',
  RR_TRUNCATED: 'rr-truncated',
  TRAILING: 'trailing-data',
  OPT_OUTSIDE_ADDITIONAL: 'opt-outside-additional',
  OPT_OWNER: 'opt-owner-not-root',
  OPT_TWICE: 'opt-twice',
  OPTION_LENGTH: 'edns-option-length',
  BADVERS: 'edns-version',
  ECS_LENGTH: 'ecs-length',
  ECS_FAMILY: 'ecs-family',
  ECS_SOURCE: 'ecs-source-prefix',
  ECS_SCOPE: 'ecs-scope-nonzero',
  ECS_ADDRESS_BITS: 'ecs-address-bits',
  COOKIE_LENGTH: 'cookie-length',
} as const

export type DecodeReason = (typeof DECODE_REASON)[keyof typeof DECODE_REASON]

const DROP_SHORT: DecodeResult = { kind: 'drop', reason: DECODE_REASON.SHORT }
const DROP_RESPONSE: DecodeResult = { kind: 'drop', reason: DECODE_REASON.RESPONSE }
const DROP_INTERNAL: DecodeResult = { kind: 'drop', reason: DECODE_REASON.INTERNAL }

/**
 * Decodes one received DNS message (UDP payload or TCP message without its
 * length prefix). Never throws: every outcome is a value.
 *
 * - `drop`: shorter than a header, or QR=1 (answering responses invites
 *   reflection loops between servers).
 * - `error` NOTIMP: opcode other than QUERY, decided before anything else is
 *   judged because other opcodes have other layouts (DSO, RFC 8490, puts TLVs
 *   after a header with zero counts). RD/CD are not echoed; the question is
 *   echoed only when exactly one parses cleanly.
 * - `error` FORMERR: anything malformed (see DECODE_REASON), including data
 *   after the last record (Knot: knot_pkt_parse returns KNOT_ETRAIL and the
 *   server answers FORMERR because `parsed < size`), QDCOUNT other than 1
 *   (RFC 9619) and every ECS/COOKIE violation.
 * - `error` BADVERS: OPT version above 0 (RFC 6891 section 6.1.3); `edns` is
 *   filled so the response carries an OPT of version 0.
 * - `query`: answerable.
 *
 * Error results carry id, opcode, RD/CD, the question (when exactly one parsed)
 * and the EDNS (when an OPT record was found and read) for the response to echo.
 */
export function decodeQuery(msg: Uint8Array): DecodeResult {
  try {
    return decode(msg)
  } catch {
    // Unreachable by design (every read is bounds-checked); kept so a bug here
    // costs one dropped query, never the listener.
    return DROP_INTERNAL
  }
}

/** What the OPT record said, before its options are judged. */
interface OptFound {
  readonly rdataStart: number
  readonly rdataEnd: number
  readonly udpPayloadBytes: number
  readonly version: number
  readonly dnssecOk: boolean
}

function u16(msg: Uint8Array, o: number): number {
  return ((msg[o] as number) << 8) | (msg[o + 1] as number)
}

/**
 * A copy, not a view: the bytes outlive the receive buffer (TCP reassembly
 * reuses it) and must not pin a large one. (Buffer#slice would be a view.)
 */
function copyBytes(msg: Uint8Array, start: number, end: number): Uint8Array {
  const out = new Uint8Array(end - start)
  // A loop beats subarray + set for the few dozen bytes copied here.
  for (let i = start; i < end; i++) out[i - start] = msg[i] as number
  return out
}

function decode(msg: Uint8Array): DecodeResult {
  if (msg.length < HEADER_BYTES) return DROP_SHORT
  const flags = u16(msg, 2)
  if ((flags & FLAG_QR) !== 0) return DROP_RESPONSE

  const id = u16(msg, 0)
  const opcode = (flags >> 11) & 0xf
  const qdCount = u16(msg, 4)
  const rrCount = u16(msg, 6) + u16(msg, 8) + u16(msg, 10)

  let error: DecodeReason | undefined
  let questionBytes: Uint8Array | undefined
  let qname = ''
  let qtype = 0
  let qclass = 0
  let pos = HEADER_BYTES

  // Counts that cannot fit the bytes: refuse before walking anything.
  if (qdCount * MIN_QUESTION_BYTES + rrCount * MIN_RR_BYTES > msg.length - HEADER_BYTES) {
    error = DECODE_REASON.COUNTS
  }

  // Question section. The first question is read strictly (no pointers) and
  // kept; any further ones are only skipped, to reach the OPT record.
  for (let i = 0; i < qdCount && error === undefined; i++) {
    if (i === 0) {
      const code = scanQuestionName(msg, pos)
      if (code !== NAME_SCAN.OK) {
        error = qnameReason(code)
        break
      }
      if (scanned.end + 4 > msg.length) {
        error = DECODE_REASON.QUESTION_TRUNCATED
        break
      }
      qname = scanned.text
      qtype = u16(msg, scanned.end)
      qclass = u16(msg, scanned.end + 2)
      pos = scanned.end + 4
      questionBytes = copyBytes(msg, HEADER_BYTES, pos)
    } else {
      const code = skipName(msg, pos)
      if (code !== NAME_SCAN.OK) {
        error = qnameReason(code)
        break
      }
      pos = skipped.end + 4
      if (pos > msg.length) error = DECODE_REASON.QUESTION_TRUNCATED
    }
  }

  // Answer, authority, additional: skipped, except the OPT record. Names here
  // may be compressed; skipName bounds and validates the pointers.
  let opt: OptFound | undefined
  if (error === undefined) {
    const anNsCount = u16(msg, 6) + u16(msg, 8)
    for (let i = 0; i < rrCount; i++) {
      if (skipName(msg, pos) !== NAME_SCAN.OK) {
        error = DECODE_REASON.RR_NAME
        break
      }
      const fixed = skipped.end
      if (fixed + 10 > msg.length) {
        error = DECODE_REASON.RR_TRUNCATED
        break
      }
      const type = u16(msg, fixed)
      const rdataStart = fixed + 10
      const rdataEnd = rdataStart + u16(msg, fixed + 8)
      if (rdataEnd > msg.length) {
        error = DECODE_REASON.RR_TRUNCATED
        break
      }
      if (type === RRTYPE.OPT) {
        // RFC 6891 section 6.1.1: one OPT, in the additional section, owner
        // root. Knot rejects the first two the same way (check_rr_constraints).
        if (i < anNsCount) error = DECODE_REASON.OPT_OUTSIDE_ADDITIONAL
        else if (opt !== undefined) error = DECODE_REASON.OPT_TWICE
        else if (!skipped.isRoot) error = DECODE_REASON.OPT_OWNER
        if (error !== undefined) {
          // Which OPT to believe is unknowable: the response carries none.
          opt = undefined
          break
        }
        opt = {
          rdataStart,
          rdataEnd,
          // The CLASS field, reported raw; the server clamps (RFC 6891 6.2.5).
          udpPayloadBytes: u16(msg, fixed + 2),
          // TTL: extended rcode (meaningless in a query, ignored), version,
          // flags (DO; unknown flags ignored, RFC 6891 section 6.1.4).
          version: msg[fixed + 5] as number,
          dnssecOk: (u16(msg, fixed + 6) & EDNS_FLAG_DO) !== 0,
        }
      }
      pos = rdataEnd
    }
    // Knot-compatible: bytes after the last record make the message malformed
    // (knot_pkt_parse -> KNOT_ETRAIL, then process_query_out answers FORMERR
    // because parsed < size). A sender that pads or miscounts is broken, and
    // guessing what it meant is how parser differentials start.
    if (error === undefined && pos !== msg.length) error = DECODE_REASON.TRAILING
  }

  // EDNS. A version we do not speak may lay its options out differently, so
  // they are not read (RFC 6891 section 6.1.3: answer BADVERS, nothing more).
  let edns: QueryEdns | undefined
  let optionError: DecodeReason | undefined
  if (opt !== undefined) {
    if (opt.version === 0) {
      const parsed = parseOptions(msg, opt)
      if (typeof parsed === 'string') {
        optionError = parsed
        edns = bareEdns(opt)
      } else {
        edns = parsed
      }
    } else {
      edns = bareEdns(opt)
    }
  }

  const question = qdCount === 1 ? questionBytes : undefined
  if (opcode !== OPCODE.QUERY) {
    // No flags copied, no judgement of a layout we do not implement; the OPT is
    // passed only when the whole message read cleanly as a classic one.
    const clean = error === undefined && optionError === undefined
    return errorResult(RCODE.NOTIMP, id, opcode, false, false, question, clean ? edns : undefined, DECODE_REASON.OPCODE)
  }

  const rd = (flags & FLAG_RD) !== 0
  const cd = (flags & FLAG_CD) !== 0
  if (error === undefined && qdCount > 1) error = DECODE_REASON.QDCOUNT_MANY
  if (error !== undefined) return errorResult(RCODE.FORMERR, id, opcode, rd, cd, question, edns, error)
  if (opt !== undefined && opt.version !== 0) {
    return errorResult(RCODE.BADVERS, id, opcode, rd, cd, question, edns, DECODE_REASON.BADVERS)
  }
  if (optionError !== undefined) return errorResult(RCODE.FORMERR, id, opcode, rd, cd, question, edns, optionError)
  if (qdCount === 0 || questionBytes === undefined) {
    // RFC 9619. With a COOKIE option this is RFC 7873 section 5.4's cookie-only
    // query: the edns, cookie included, is kept so query/ can answer NOERROR.
    return errorResult(RCODE.FORMERR, id, opcode, rd, cd, undefined, edns, DECODE_REASON.QDCOUNT_ZERO)
  }

  return {
    kind: 'query',
    query: {
      id,
      opcode,
      recursionDesired: rd,
      checkingDisabled: cd,
      qname,
      qtype,
      qclass,
      questionBytes,
      edns,
    },
  }
}

function errorResult(
  rcode: number,
  id: number,
  opcode: number,
  recursionDesired: boolean,
  checkingDisabled: boolean,
  questionBytes: Uint8Array | undefined,
  edns: QueryEdns | undefined,
  reason: DecodeReason,
): DecodeResult {
  return { kind: 'error', rcode, id, opcode, recursionDesired, checkingDisabled, questionBytes, edns, reason }
}

function qnameReason(code: number): DecodeReason {
  switch (code) {
    case NAME_SCAN.POINTER:
    case NAME_SCAN.BAD_POINTER:
      return DECODE_REASON.QNAME_POINTER
    case NAME_SCAN.LABEL_TYPE:
      return DECODE_REASON.QNAME_LABEL_TYPE
    case NAME_SCAN.TOO_LONG:
      return DECODE_REASON.QNAME_TOO_LONG
    default:
      return DECODE_REASON.QNAME_TRUNCATED
  }
}

function bareEdns(opt: OptFound): QueryEdns {
  return {
    version: opt.version,
    udpPayloadBytes: opt.udpPayloadBytes,
    dnssecOk: opt.dnssecOk,
    clientSubnet: undefined,
    nsidRequested: false,
    cookie: undefined,
  }
}

/**
 * Walks the options of a version-0 OPT. Every option must fit RDLENGTH exactly
 * (RFC 6891 section 6.1.2). The first ECS and the first COOKIE are judged and
 * kept; repeats are skipped unjudged, as BIND (process_ecs: "already seen") and
 * Knot (first match of knot_edns_get_option) do. Unknown options are ignored
 * (RFC 6891 section 6.1.2).
 */
function parseOptions(msg: Uint8Array, opt: OptFound): QueryEdns | DecodeReason {
  let clientSubnet: ClientSubnet | undefined
  let cookie: Uint8Array | undefined
  let nsidRequested = false
  let p = opt.rdataStart
  while (p < opt.rdataEnd) {
    if (p + 4 > opt.rdataEnd) return DECODE_REASON.OPTION_LENGTH
    const code = u16(msg, p)
    const len = u16(msg, p + 2)
    const data = p + 4
    if (data + len > opt.rdataEnd) return DECODE_REASON.OPTION_LENGTH
    if (code === EDNS_OPTION.NSID) {
      // RFC 5001 section 2.1 asks for an empty option; like Knot, presence is
      // the request and a payload is ignored.
      nsidRequested = true
    } else if (code === EDNS_OPTION.ECS && clientSubnet === undefined) {
      const ecs = parseClientSubnet(msg, data, len)
      if (typeof ecs === 'string') return ecs
      clientSubnet = ecs
    } else if (code === EDNS_OPTION.COOKIE && cookie === undefined) {
      // RFC 7873 section 5.2.2: any other length is FORMERR.
      if (len !== COOKIE_CLIENT_BYTES && (len < COOKIE_MIN_BYTES || len > COOKIE_MAX_BYTES)) {
        return DECODE_REASON.COOKIE_LENGTH
      }
      cookie = copyBytes(msg, data, data + len)
    }
    p = data + len
  }
  return {
    version: opt.version,
    udpPayloadBytes: opt.udpPayloadBytes,
    dnssecOk: opt.dnssecOk,
    clientSubnet,
    nsidRequested,
    cookie,
  }
}

/**
 * ECS in a query (RFC 7871 section 6), each violation FORMERR (section 7.2.1
 * for an authoritative server):
 * - FAMILY 1 or 2 (the address families steering can act on);
 * - SOURCE PREFIX-LENGTH at most 32 / 128;
 * - SCOPE PREFIX-LENGTH 0 ("in queries, it MUST be set to 0"). BIND rejects a
 *   non-zero scope (process_ecs: "invalid scope", DNS_R_OPTERR = FORMERR);
 *   Knot accepts it and zeroes it. We follow BIND: a resolver that sends a
 *   scope is broken, and echoing our own scope over its value hides that;
 * - ADDRESS exactly ceil(source / 8) bytes and no bit set past the prefix
 *   (BIND checks both; Knot masks instead).
 * Family 1 with source 0 and no address bytes is valid: "do not use my
 * address" (RFC 7871 section 7.1.2).
 */
function parseClientSubnet(msg: Uint8Array, start: number, len: number): ClientSubnet | DecodeReason {
  if (len < 4) return DECODE_REASON.ECS_LENGTH
  const family = u16(msg, start)
  if (family !== ECS_FAMILY_IPV4 && family !== ECS_FAMILY_IPV6) return DECODE_REASON.ECS_FAMILY
  const sourcePrefixLen = msg[start + 2] as number
  const scopePrefixLen = msg[start + 3] as number
  const addressBytes = family === ECS_FAMILY_IPV4 ? 4 : 16
  if (sourcePrefixLen > addressBytes * 8) return DECODE_REASON.ECS_SOURCE
  if (scopePrefixLen !== 0) return DECODE_REASON.ECS_SCOPE
  const sentBytes = (sourcePrefixLen + 7) >> 3
  if (len - 4 !== sentBytes) return DECODE_REASON.ECS_LENGTH
  const address = new Uint8Array(addressBytes)
  for (let i = 0; i < sentBytes; i++) address[i] = msg[start + 4 + i] as number
  const spareBits = sentBytes * 8 - sourcePrefixLen
  if (spareBits > 0) {
    const last = address[sentBytes - 1] as number
    if ((last & ((1 << spareBits) - 1)) !== 0) return DECODE_REASON.ECS_ADDRESS_BITS
  }
  return { family, sourcePrefixLen, scopePrefixLen, address }
}
