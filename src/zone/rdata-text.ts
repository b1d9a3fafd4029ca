/**
 * Rdata presentation text → ResourceRecord rdata parts, one parser per type
 * (RFC 1035 section 3.3 and each type's own RFC), plus the RFC 3597 generic
 * `\# <length> <hex>` form for every type. Names in rdata are relative to the
 * current $ORIGIN and stored in the internal (lowercase) form, as Knot stores
 * them (it canonicalises rdata names on load). Only NS, CNAME, SOA, MX and PTR
 * names are marked compressible (RFC 3597 section 4).
 */
import type { RdataPart } from '../wire/index.js'
import type { Token } from './master-file-lexer.js'
import {
  decodeText,
  encodeCharacterString,
  MAX_CHARACTER_STRING_BYTES,
  parseHexWords,
  parseIpv4,
  parseIpv6,
  parseNameText,
  parseUint,
  uintBytes,
} from './rdata-fields.js'
import { ZONE_RRTYPE, rrTypeToText } from './rdata-types.js'
import { genericToParts, RdataBuilder, rdataToWire } from './rdata-wire.js'
import { MAX_UINT32, parseDurationSec } from './ttl.js'
import { ZONE_PROBLEM, ZoneSyntaxError } from './zone-problem.js'

/** Largest rdata (RDLENGTH is 16 bits, RFC 1035 section 3.2.1). */
export const MAX_RDATA_BYTES = 0xffff

// DNSSEC algorithm mnemonics (IANA "DNS Security Algorithm Numbers"), accepted
// wherever an algorithm number is, as Knot does.
const DNSSEC_ALGORITHM: Readonly<Record<string, number>> = {
  RSAMD5: 1,
  DH: 2,
  DSA: 3,
  RSASHA1: 5,
  'DSA-NSEC3-SHA1': 6,
  'RSASHA1-NSEC3-SHA1': 7,
  RSASHA256: 8,
  RSASHA512: 10,
  'ECC-GOST': 12,
  ECDSAP256SHA256: 13,
  ECDSAP384SHA384: 14,
  ED25519: 15,
  ED448: 16,
  INDIRECT: 252,
  PRIVATEDNS: 253,
  PRIVATEOID: 254,
}

// DS digest sizes by digest type: SHA-1 (RFC 4034), SHA-256 (RFC 4509),
// GOST (RFC 5933), SHA-384 (RFC 6605). Other digest types are not checked.
const DS_DIGEST_BYTES: ReadonlyMap<number, number> = new Map([
  [1, 20],
  [2, 32],
  [3, 32],
  [4, 48],
])

/** Reads rdata tokens in order; every failure names the field and its line. */
class Fields {
  private i = 0

  constructor(
    private readonly tokens: readonly Token[],
    private readonly typeName: string,
    private readonly fallbackLine: number,
  ) {}

  /** Next token, quoted or not. */
  any(what: string): Token {
    const t = this.tokens[this.i]
    if (t === undefined) {
      const last = this.tokens[this.tokens.length - 1]
      throw new ZoneSyntaxError(ZONE_PROBLEM.BAD_RDATA, `${this.typeName}: missing ${what}`, last?.line ?? this.fallbackLine)
    }
    this.i++
    return t
  }

  /** Next token, which must not be quoted (numbers, names, addresses). */
  plain(what: string): Token {
    const t = this.any(what)
    if (t.quoted) throw new ZoneSyntaxError(ZONE_PROBLEM.BAD_RDATA, `${this.typeName}: ${what} must not be quoted`, t.line)
    return t
  }

  /** Runs a field decoder, attaching the token's line and the type to its error. */
  field<T>(t: Token, decode: (text: string) => T): T {
    try {
      return decode(t.text)
    } catch (err) {
      if (err instanceof ZoneSyntaxError) throw new ZoneSyntaxError(err.code, `${this.typeName}: ${err.message}`, t.line)
      throw err
    }
  }

  uint(what: string, max: number): number {
    return this.field(this.plain(what), (s) => parseUint(s, max, what))
  }

  name(what: string, origin: string): string {
    return this.field(this.plain(what), (s) => parseNameText(s, origin, what))
  }

  hasMore(): boolean {
    return this.i < this.tokens.length
  }

  rest(): Token[] {
    const out = this.tokens.slice(this.i)
    this.i = this.tokens.length
    return out
  }

  end(): void {
    const t = this.tokens[this.i]
    if (t !== undefined) {
      throw new ZoneSyntaxError(ZONE_PROBLEM.BAD_RDATA, `${this.typeName}: unexpected extra field "${t.text}"`, t.line)
    }
  }
}

type TextParser = (f: Fields, origin: string) => RdataPart[]

function singleName(compress: boolean, what: string): TextParser {
  return (f, origin) => {
    const name = f.name(what, origin)
    f.end()
    return [{ name, compress }]
  }
}

// TXT and SPF: one or more character-strings. A string longer than 255 bytes is
// split into 255-byte strings, as Knot's zscanner does, rather than refused.
const parseTxt: TextParser = (f) => {
  const b = new RdataBuilder()
  const first = f.any('character-string')
  for (const t of [first, ...f.rest()]) {
    const bytes = f.field(t, (s) => decodeText(s, 'character-string'))
    if (bytes.length === 0) b.bytes([0])
    for (let o = 0; o < bytes.length; o += MAX_CHARACTER_STRING_BYTES) {
      const chunk = bytes.subarray(o, o + MAX_CHARACTER_STRING_BYTES)
      b.bytes([chunk.length]).bytes(chunk)
    }
  }
  return b.done()
}

function hexTail(f: Fields, what: string): Uint8Array {
  const words = f.rest()
  if (words.length === 0) throw new ZoneSyntaxError(ZONE_PROBLEM.BAD_RDATA, `missing ${what}`)
  for (const w of words) {
    if (w.quoted) throw new ZoneSyntaxError(ZONE_PROBLEM.BAD_RDATA, `${what} must not be quoted`, w.line)
  }
  const first = words[0] as Token
  return f.field(first, () => parseHexWords(words.map((w) => w.text), what))
}

function algorithm(f: Fields): number {
  const t = f.plain('algorithm')
  const named = DNSSEC_ALGORITHM[t.text.toUpperCase()]
  return named ?? f.field(t, (s) => parseUint(s, 0xff, 'algorithm'))
}

const parseDs: TextParser = (f) => {
  const keyTag = f.uint('key tag', 0xffff)
  const alg = algorithm(f)
  const digestType = f.uint('digest type', 0xff)
  const digest = hexTail(f, 'digest')
  const want = DS_DIGEST_BYTES.get(digestType)
  if (want !== undefined && digest.length !== want) {
    throw new ZoneSyntaxError(ZONE_PROBLEM.BAD_RDATA, `digest type ${digestType} needs a ${want}-byte digest, got ${digest.length} bytes`)
  }
  return new RdataBuilder().bytes(uintBytes(keyTag, 2)).bytes([alg, digestType]).bytes(digest).done()
}

const TEXT_PARSERS: ReadonlyMap<number, TextParser> = new Map<number, TextParser>([
  [
    ZONE_RRTYPE.A,
    (f) => {
      const addr = f.field(f.plain('address'), parseIpv4)
      f.end()
      return [addr]
    },
  ],
  [
    ZONE_RRTYPE.AAAA,
    (f) => {
      const addr = f.field(f.plain('address'), parseIpv6)
      f.end()
      return [addr]
    },
  ],
  [ZONE_RRTYPE.NS, singleName(true, 'name server')],
  [ZONE_RRTYPE.CNAME, singleName(true, 'target')],
  [ZONE_RRTYPE.PTR, singleName(true, 'target')],
  // DNAME names are never compressed (RFC 6672 section 2.5 keeps RFC 3597's rule).
  [ZONE_RRTYPE.DNAME, singleName(false, 'target')],
  [
    ZONE_RRTYPE.MX,
    (f, origin) => {
      const preference = f.uint('preference', 0xffff)
      const exchange = f.name('exchange', origin)
      f.end()
      return new RdataBuilder().bytes(uintBytes(preference, 2)).name(exchange, true).done()
    },
  ],
  [
    ZONE_RRTYPE.SOA,
    (f, origin) => {
      const mname = f.name('primary name server (MNAME)', origin)
      const rname = f.name('mailbox (RNAME)', origin)
      const serial = f.uint('serial', MAX_UINT32)
      const b = new RdataBuilder().name(mname, true).name(rname, true).bytes(uintBytes(serial, 4))
      // The timers accept units (1h, 2w) like TTLs; they are 32-bit fields.
      for (const what of ['refresh', 'retry', 'expire', 'minimum']) {
        const sec = f.field(f.plain(what), (s) => parseDurationSec(s, MAX_UINT32, what))
        b.bytes(uintBytes(sec, 4))
      }
      f.end()
      return b.done()
    },
  ],
  [ZONE_RRTYPE.TXT, parseTxt],
  [ZONE_RRTYPE.SPF, parseTxt],
  [
    ZONE_RRTYPE.HINFO,
    (f) => {
      const cpu = f.field(f.any('CPU'), (s) => encodeCharacterString(s, 'CPU'))
      const os = f.field(f.any('OS'), (s) => encodeCharacterString(s, 'OS'))
      f.end()
      return new RdataBuilder().bytes(cpu).bytes(os).done()
    },
  ],
  [
    ZONE_RRTYPE.SRV,
    (f, origin) => {
      const priority = f.uint('priority', 0xffff)
      const weight = f.uint('weight', 0xffff)
      const port = f.uint('port', 0xffff)
      const target = f.name('target', origin)
      f.end()
      // RFC 2782: the target is not compressed.
      return new RdataBuilder()
        .bytes(uintBytes(priority, 2))
        .bytes(uintBytes(weight, 2))
        .bytes(uintBytes(port, 2))
        .name(target, false)
        .done()
    },
  ],
  [
    ZONE_RRTYPE.NAPTR,
    (f, origin) => {
      const order = f.uint('order', 0xffff)
      const preference = f.uint('preference', 0xffff)
      const flags = f.field(f.any('flags'), (s) => encodeCharacterString(s, 'flags'))
      const services = f.field(f.any('services'), (s) => encodeCharacterString(s, 'services'))
      const regexp = f.field(f.any('regexp'), (s) => encodeCharacterString(s, 'regexp'))
      const replacement = f.name('replacement', origin)
      f.end()
      // RFC 3403 section 4.1: the replacement is not compressed.
      return new RdataBuilder()
        .bytes(uintBytes(order, 2))
        .bytes(uintBytes(preference, 2))
        .bytes(flags)
        .bytes(services)
        .bytes(regexp)
        .name(replacement, false)
        .done()
    },
  ],
  [
    ZONE_RRTYPE.CAA,
    (f) => {
      const flags = f.uint('flags', 0xff)
      const tagTok = f.any('tag')
      // RFC 8659 section 4.1: the tag is one or more ASCII letters and digits.
      if (!/^[a-zA-Z0-9]{1,255}$/.test(tagTok.text)) {
        throw new ZoneSyntaxError(ZONE_PROBLEM.BAD_RDATA, `CAA: tag "${tagTok.text}" must be letters and digits only`, tagTok.line)
      }
      const value = f.field(f.any('value'), (s) => decodeText(s, 'value'))
      f.end()
      // The value has no length byte: it runs to the end of the rdata.
      return new RdataBuilder().bytes([flags, tagTok.text.length]).bytes(Buffer.from(tagTok.text, 'ascii')).bytes(value).done()
    },
  ],
  [ZONE_RRTYPE.DS, parseDs],
  [ZONE_RRTYPE.CDS, parseDs],
  [
    ZONE_RRTYPE.SSHFP,
    (f) => {
      const alg = f.uint('algorithm', 0xff)
      const fpType = f.uint('fingerprint type', 0xff)
      return new RdataBuilder().bytes([alg, fpType]).bytes(hexTail(f, 'fingerprint')).done()
    },
  ],
  ...[ZONE_RRTYPE.TLSA, ZONE_RRTYPE.SMIMEA].map((type): [number, TextParser] => [
    type,
    (f) => {
      const usage = f.uint('certificate usage', 0xff)
      const selector = f.uint('selector', 0xff)
      const matching = f.uint('matching type', 0xff)
      return new RdataBuilder().bytes([usage, selector, matching]).bytes(hexTail(f, 'certificate association data')).done()
    },
  ]),
])

/** True when `type` has a text parser here (otherwise only `\#` works). */
export function hasTextForm(type: number): boolean {
  return TEXT_PARSERS.has(type)
}

/** Parses RFC 3597 section 5 generic rdata: tokens after `\#`. */
function parseGeneric(type: number, f: Fields): RdataPart[] {
  const length = f.uint('generic rdata length', MAX_RDATA_BYTES)
  const data = f.hasMore() ? hexTail(f, 'generic rdata') : new Uint8Array(0)
  if (data.length !== length) {
    throw new ZoneSyntaxError(ZONE_PROBLEM.BAD_RDATA, `generic rdata says ${length} bytes but has ${data.length}`)
  }
  return genericToParts(type, data)
}

/**
 * Rdata parts of one record from its rdata tokens. `origin` (internal form)
 * completes relative names. `line` is the record's first line, used when a
 * problem has no token of its own. Throws ZoneSyntaxError: BAD_RDATA for bad
 * fields, UNSUPPORTED_TYPE for a known type without a text form here (write it
 * as `\#`).
 */
export function parseRdata(type: number, tokens: readonly Token[], origin: string, line: number): RdataPart[] {
  const typeName = rrTypeToText(type)
  const f = new Fields(tokens, typeName, line)
  let parts: RdataPart[]
  const first = tokens[0]
  if (first !== undefined && !first.quoted && first.text === '\\#') {
    f.any('\\#')
    parts = withType(typeName, () => parseGeneric(type, f))
  } else {
    const parser = TEXT_PARSERS.get(type)
    if (parser === undefined) {
      const known = typeName.startsWith('TYPE') ? 'unknown type' : 'type'
      throw new ZoneSyntaxError(
        ZONE_PROBLEM.UNSUPPORTED_TYPE,
        `${known} ${typeName} has no text form here: write its rdata as "\\# <length> <hex>" (RFC 3597 section 5)`,
        line,
      )
    }
    parts = withType(typeName, () => parser(f, origin))
  }
  const size = rdataToWire(parts).length
  if (size > MAX_RDATA_BYTES) {
    throw new ZoneSyntaxError(ZONE_PROBLEM.BAD_RDATA, `${typeName}: rdata is ${size} bytes, above ${MAX_RDATA_BYTES}`, line)
  }
  return parts
}

/** Prefixes the type to errors thrown without one (hexTail, generic checks). */
function withType(typeName: string, run: () => RdataPart[]): RdataPart[] {
  try {
    return run()
  } catch (err) {
    if (err instanceof ZoneSyntaxError && !err.message.startsWith(`${typeName}:`) && !err.message.startsWith('generic rdata for')) {
      throw new ZoneSyntaxError(err.code, `${typeName}: ${err.message}`, err.line)
    }
    throw err
  }
}
