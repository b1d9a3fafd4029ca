/**
 * RFC 1035 section 5 master files → records with their source file and line:
 * directives ($ORIGIN, $TTL of RFC 2308, $INCLUDE), owners (`@`, relative,
 * absolute, omitted), TTL and class in either order, rdata via rdata-text.ts.
 * Every problem is collected and parsing goes on with the next entry, so one
 * pass reports them all (like kzonecheck and named-checkzone).
 *
 * The parser is a generator that yields a request whenever it needs an
 * $INCLUDE file, so the same code is driven synchronously (tests, text) and
 * asynchronously (loadZoneFile) without reading files itself. Zone-level rules
 * (SOA, CNAME, delegations) are validate-zone.ts's job, not this file's.
 */
import path from 'node:path'
import { RRCLASS } from '../wire/index.js'
import type { ResourceRecord } from '../wire/index.js'
import { lexMasterFile } from './master-file-lexer.js'
import type { Entry, Token } from './master-file-lexer.js'
import { decodeText, parseNameText } from './rdata-fields.js'
import { parseRdata } from './rdata-text.js'
import { parseRrType } from './rdata-types.js'
import { looksLikeTtl, parseTtlSec } from './ttl.js'
import { ZONE_PROBLEM, ZoneSyntaxError } from './zone-problem.js'
import type { ZoneProblem, ZoneProblemCode } from './zone-problem.js'

/**
 * TTL for records when the file has neither $TTL nor an earlier explicit TTL:
 * Knot's `default-ttl` (3600 unless configured). BIND instead takes the SOA
 * MINIMUM of a leading SOA or rejects the zone; Knot is our differential oracle.
 */
export const DEFAULT_TTL_SEC = 3600

/** $INCLUDE nesting limit; deeper chains are almost certainly a mistake. */
export const MAX_INCLUDE_DEPTH = 16

/** A parsed record and where it was written. */
export interface SourcedRecord {
  readonly rr: ResourceRecord
  readonly file: string
  /** 1-based line where the record's entry starts. */
  readonly line: number
}

/**
 * What the parser asks its driver for: the text of an $INCLUDE file (path
 * resolved against the including file's directory), or a pause, offered every
 * PAUSE_EVERY_ENTRIES entries so an asynchronous driver can let the event loop
 * (and the query path sharing it) run while a large zone loads.
 */
export type ParserRequest = { readonly kind: 'include'; readonly path: string } | { readonly kind: 'pause' }

/** The driver's answer to an include request: the file text, or why it could not be read. */
export type IncludeReply = { readonly text: string } | { readonly error: string }

/** The parser generator: yields requests, receives include replies (undefined for pauses). */
export type MasterFileParser = Generator<ParserRequest, ParseOutput, IncludeReply | undefined>

/** Entries parsed between two pause requests. */
export const PAUSE_EVERY_ENTRIES = 5000

export interface ParseOptions {
  /** Zone origin, internal form: the initial $ORIGIN. */
  readonly origin: string
  /** Name of the main file, used in problems and to resolve relative $INCLUDE paths. */
  readonly fileName: string
  /** TTL when neither $TTL nor an earlier explicit TTL applies. Default DEFAULT_TTL_SEC. */
  readonly defaultTtlSec?: number
  readonly maxIncludeDepth?: number
}

export interface ParseOutput {
  readonly records: SourcedRecord[]
  readonly problems: ZoneProblem[]
  /** Every file the parse needed, main file first, including ones that could not be read. */
  readonly files: string[]
}

interface Context {
  readonly records: SourcedRecord[]
  readonly problems: ZoneProblem[]
  readonly files: string[]
  /** Resolved paths of the files being parsed, outermost first (loop detection). */
  readonly stack: string[]
  readonly defaultTtlSec: number
  readonly maxIncludeDepth: number
  warnedTtlFromPrevious: boolean
  warnedTtlDefaulted: boolean
  entriesSincePause: number
}

/** Per-file parser state. An included file starts from a copy and never changes its parent's. */
interface FileState {
  readonly file: string
  origin: string
  dollarTtlSec: number | undefined
  lastTtlSec: number | undefined
  previousOwner: string | undefined
}

const CLASS_RE = /^(?:IN|CS|CH|HS|NONE|ANY|CLASS[0-9]+)$/i

/**
 * Parses one master file and, through the driver, its includes. Yields an
 * include request per $INCLUDE (and expects an IncludeReply back) and pause
 * requests; returns every record and problem. Never throws for bad content.
 */
export function* parseMasterFile(text: string, opts: ParseOptions): MasterFileParser {
  const ctx: Context = {
    records: [],
    problems: [],
    files: [opts.fileName],
    stack: [path.resolve(opts.fileName)],
    defaultTtlSec: opts.defaultTtlSec ?? DEFAULT_TTL_SEC,
    maxIncludeDepth: opts.maxIncludeDepth ?? MAX_INCLUDE_DEPTH,
    warnedTtlFromPrevious: false,
    warnedTtlDefaulted: false,
    entriesSincePause: 0,
  }
  const state: FileState = {
    file: opts.fileName,
    origin: opts.origin,
    dollarTtlSec: undefined,
    lastTtlSec: undefined,
    previousOwner: undefined,
  }
  yield* parseText(ctx, text, state)
  return { records: ctx.records, problems: ctx.problems, files: ctx.files }
}

/** Runs the parser to completion with a synchronous include reader (pauses are ignored). */
export function runParserSync(gen: MasterFileParser, read: (p: string) => IncludeReply): ParseOutput {
  let step = gen.next()
  while (!step.done) step = gen.next(step.value.kind === 'include' ? read(step.value.path) : undefined)
  return step.value
}

/** Runs the parser to completion with an asynchronous include reader, yielding to the event loop at pauses. */
export async function runParserAsync(gen: MasterFileParser, read: (p: string) => Promise<IncludeReply>): Promise<ParseOutput> {
  let step = gen.next()
  while (!step.done) {
    if (step.value.kind === 'include') {
      step = gen.next(await read(step.value.path))
    } else {
      await new Promise<void>((resolve) => setImmediate(resolve))
      step = gen.next(undefined)
    }
  }
  return step.value
}

function report(ctx: Context, file: string, line: number, code: ZoneProblemCode, message: string, severity: 'error' | 'warning' = 'error'): void {
  ctx.problems.push({ file, line, severity, code, message })
}

function* parseText(ctx: Context, text: string, state: FileState): Generator<ParserRequest, void, IncludeReply | undefined> {
  for (const entry of lexMasterFile(text)) {
    if (++ctx.entriesSincePause >= PAUSE_EVERY_ENTRIES) {
      ctx.entriesSincePause = 0
      yield { kind: 'pause' }
    }
    if (entry.error !== undefined) {
      report(ctx, state.file, entry.error.line, entry.error.code, entry.error.message)
      continue
    }
    const first = entry.tokens[0] as Token
    try {
      if (!entry.blankOwner && !first.quoted && first.text.startsWith('$')) {
        yield* directive(ctx, entry, state)
      } else {
        record(ctx, entry, state)
      }
    } catch (err) {
      if (!(err instanceof ZoneSyntaxError)) throw err
      report(ctx, state.file, err.line ?? entry.line, err.code, err.message)
    }
  }
}

function* directive(ctx: Context, entry: Entry, state: FileState): Generator<ParserRequest, void, IncludeReply | undefined> {
  const [first, ...args] = entry.tokens as [Token, ...Token[]]
  const name = first.text.toUpperCase()
  const arity = (min: number, max: number): void => {
    if (args.length < min || args.length > max) {
      const want = min === max ? `${min}` : `${min} or ${max}`
      throw new ZoneSyntaxError(ZONE_PROBLEM.BAD_DIRECTIVE, `${name} takes ${want} argument${max > 1 ? 's' : ''}, got ${args.length}`)
    }
  }
  switch (name) {
    case '$ORIGIN': {
      arity(1, 1)
      const arg = args[0] as Token
      // A relative $ORIGIN is taken relative to the current origin, as BIND does
      // (Knot requires an absolute name).
      state.origin = asCode(ZONE_PROBLEM.BAD_ORIGIN, arg, () => parseNameText(arg.text, state.origin, '$ORIGIN'))
      return
    }
    case '$TTL': {
      arity(1, 1)
      const arg = args[0] as Token
      state.dollarTtlSec = asCode(ZONE_PROBLEM.BAD_TTL, arg, () => parseTtlSec(arg.text))
      return
    }
    case '$INCLUDE': {
      arity(1, 2)
      yield* include(ctx, entry, state, args[0] as Token, args[1])
      return
    }
    default:
      throw new ZoneSyntaxError(ZONE_PROBLEM.BAD_DIRECTIVE, `unsupported directive ${first.text} (only $ORIGIN, $TTL and $INCLUDE)`)
  }
}

/** Attaches the token's line to a ZoneSyntaxError thrown by `run`, keeping its code. */
function atLine<T>(tok: Token, run: () => T): T {
  try {
    return run()
  } catch (err) {
    if (err instanceof ZoneSyntaxError && err.line === undefined) throw new ZoneSyntaxError(err.code, err.message, tok.line)
    throw err
  }
}

/** Re-codes a ZoneSyntaxError thrown by `run` (a name error in $ORIGIN is a BAD_ORIGIN) at the token's line. */
function asCode<T>(code: ZoneProblemCode, tok: Token, run: () => T): T {
  try {
    return run()
  } catch (err) {
    if (err instanceof ZoneSyntaxError) throw new ZoneSyntaxError(code, err.message, tok.line)
    throw err
  }
}

function* include(
  ctx: Context,
  entry: Entry,
  state: FileState,
  fileTok: Token,
  originTok: Token | undefined,
): Generator<ParserRequest, void, IncludeReply | undefined> {
  const fileName = Buffer.from(decodeText(fileTok.text, '$INCLUDE file name')).toString('utf8')
  if (fileName === '') throw new ZoneSyntaxError(ZONE_PROBLEM.BAD_DIRECTIVE, '$INCLUDE needs a file name')
  // RFC 1035 section 5.1: the optional origin applies to the included file only.
  const origin =
    originTok === undefined ? state.origin : asCode(ZONE_PROBLEM.BAD_ORIGIN, originTok, () => parseNameText(originTok.text, state.origin, '$INCLUDE origin'))
  // Relative paths resolve against the including file's directory, as Knot does
  // (BIND uses the server's working directory, which makes files non-portable).
  const target = path.isAbsolute(fileName) ? fileName : path.join(path.dirname(state.file), fileName)
  const resolved = path.resolve(target)
  if (ctx.stack.includes(resolved)) {
    throw new ZoneSyntaxError(ZONE_PROBLEM.INCLUDE_LOOP, `$INCLUDE ${target} would include itself (loop through ${ctx.stack.length} files)`)
  }
  if (ctx.stack.length > ctx.maxIncludeDepth) {
    throw new ZoneSyntaxError(ZONE_PROBLEM.INCLUDE_TOO_DEEP, `$INCLUDE ${target} is nested deeper than ${ctx.maxIncludeDepth} files`)
  }
  if (!ctx.files.includes(target)) ctx.files.push(target)
  const reply = (yield { kind: 'include', path: target }) ?? { error: 'the driver gave no reply' }
  if ('error' in reply) {
    throw new ZoneSyntaxError(ZONE_PROBLEM.INCLUDE_UNREADABLE, `cannot read $INCLUDE file ${target}: ${reply.error}`, entry.line)
  }
  // The included file starts with the current origin and TTL defaults but no
  // previous owner (as in Knot, whose included scanner starts fresh); nothing it
  // sets flows back here (RFC 1035 section 5.1 for $ORIGIN, Knot for $TTL).
  const child: FileState = {
    file: target,
    origin,
    dollarTtlSec: state.dollarTtlSec,
    lastTtlSec: state.lastTtlSec,
    previousOwner: undefined,
  }
  ctx.stack.push(resolved)
  try {
    yield* parseText(ctx, reply.text, child)
  } finally {
    ctx.stack.pop()
  }
}

function record(ctx: Context, entry: Entry, state: FileState): void {
  const tokens = entry.tokens
  let idx = 0
  let owner: string
  if (entry.blankOwner) {
    if (state.previousOwner === undefined) {
      throw new ZoneSyntaxError(ZONE_PROBLEM.NO_PREVIOUS_OWNER, 'the owner is omitted but no earlier record in this file names one')
    }
    owner = state.previousOwner
  } else {
    const tok = tokens[0] as Token
    if (tok.quoted) throw new ZoneSyntaxError(ZONE_PROBLEM.BAD_NAME, `owner "${tok.text}" must not be quoted`)
    owner = parseNameText(tok.text, state.origin, 'owner')
    state.previousOwner = owner
    idx = 1
  }

  // RFC 1035 section 5.1: TTL and class are both optional and may come in either order.
  let ttlSec: number | undefined
  let classSeen = false
  for (let k = 0; k < 2; k++) {
    const tok = tokens[idx]
    if (tok === undefined || tok.quoted) break
    if (looksLikeTtl(tok.text)) {
      if (ttlSec !== undefined) throw new ZoneSyntaxError(ZONE_PROBLEM.BAD_TTL, `second TTL "${tok.text}" in one record`, tok.line)
      ttlSec = asCode(ZONE_PROBLEM.BAD_TTL, tok, () => parseTtlSec(tok.text))
    } else if (CLASS_RE.test(tok.text)) {
      if (classSeen) throw new ZoneSyntaxError(ZONE_PROBLEM.UNSUPPORTED_CLASS, `second class "${tok.text}" in one record`, tok.line)
      checkClass(tok)
      classSeen = true
    } else {
      break
    }
    idx++
  }

  const typeTok = tokens[idx]
  if (typeTok === undefined) throw new ZoneSyntaxError(ZONE_PROBLEM.UNKNOWN_TYPE, 'the record has no type')
  const type = typeTok.quoted ? undefined : atLine(typeTok, () => parseRrType(typeTok.text))
  if (type === undefined) throw new ZoneSyntaxError(ZONE_PROBLEM.UNKNOWN_TYPE, `unknown record type "${typeTok.text}"`, typeTok.line)

  if (ttlSec !== undefined) {
    state.lastTtlSec = ttlSec
  } else if (state.dollarTtlSec !== undefined) {
    ttlSec = state.dollarTtlSec
  } else if (state.lastTtlSec !== undefined) {
    // RFC 1035 section 5.1 semantics (BIND's too). Knot would use its default
    // TTL here instead, so say so once: the two servers disagree on this file.
    ttlSec = state.lastTtlSec
    if (!ctx.warnedTtlFromPrevious) {
      ctx.warnedTtlFromPrevious = true
      report(
        ctx,
        state.file,
        entry.line,
        ZONE_PROBLEM.TTL_FROM_PREVIOUS,
        `no $TTL: records without a TTL take the last explicit TTL (${ttlSec}) per RFC 1035 section 5.1; add $TTL to make this explicit`,
        'warning',
      )
    }
  } else {
    ttlSec = ctx.defaultTtlSec
    if (!ctx.warnedTtlDefaulted) {
      ctx.warnedTtlDefaulted = true
      report(
        ctx,
        state.file,
        entry.line,
        ZONE_PROBLEM.TTL_DEFAULTED,
        `no $TTL and no earlier TTL: using the default TTL ${ttlSec} (as Knot does); add $TTL`,
        'warning',
      )
    }
  }

  const rdata = parseRdata(type, tokens.slice(idx + 1), state.origin, entry.line)
  ctx.records.push({ rr: { name: owner, type, class: RRCLASS.IN, ttlSec, rdata }, file: state.file, line: entry.line })
}

function checkClass(tok: Token): void {
  const upper = tok.text.toUpperCase()
  // RFC 3597 section 5: CLASS1 is the generic spelling of IN.
  if (upper === 'IN' || upper === 'CLASS1') return
  throw new ZoneSyntaxError(ZONE_PROBLEM.UNSUPPORTED_CLASS, `class ${tok.text} is not supported: only IN zones are served`, tok.line)
}
