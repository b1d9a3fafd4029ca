/**
 * Splits master-file text into entries (RFC 1035 section 5.1): one entry per
 * logical line, with parentheses joining physical lines, `;` comments dropped,
 * quoted strings kept whole. Tokens keep their backslash escapes untouched; the
 * field parsers decode them, because `\.` means different things in a name and
 * in a string. Does not interpret directives, names or types.
 */
import { ZONE_PROBLEM } from './zone-problem.js'
import type { ZoneProblemCode } from './zone-problem.js'

export interface Token {
  /** Text as written, escapes kept, without the surrounding quotes when quoted. */
  readonly text: string
  readonly quoted: boolean
  /** 1-based line the token starts on. */
  readonly line: number
}

export interface Entry {
  /** 1-based line where the entry starts. */
  readonly line: number
  /** True when the entry starts with a blank (the owner is omitted: RFC 1035 section 5.1). */
  readonly blankOwner: boolean
  readonly tokens: readonly Token[]
  /** Set when the entry is lexically broken; the parser reports it and skips the entry. */
  readonly error?: { readonly code: ZoneProblemCode; readonly message: string; readonly line: number }
}

const SPACE = 0x20
const TAB = 0x09
const CR = 0x0d
const LF = 0x0a
const SEMICOLON = 0x3b
const QUOTE = 0x22
const BACKSLASH = 0x5c
const OPEN = 0x28
const CLOSE = 0x29

function isBlank(c: number): boolean {
  // CR counts as a blank so CRLF files load (Knot rejects them; refusing a
  // whole zone over line endings helps nobody).
  return c === SPACE || c === TAB || c === CR
}

/**
 * Tokenises a whole file. Never throws: lexical errors are attached to the entry
 * they break (the rest of that entry is skipped, later entries still parse).
 */
export function lexMasterFile(text: string): Entry[] {
  const entries: Entry[] = []
  const n = text.length
  let i = 0
  let line = 1

  while (i < n) {
    // One logical entry per iteration.
    const startLine = line
    const blankOwner = isBlank(text.charCodeAt(i))
    const tokens: Token[] = []
    let depth = 0
    let openLine = 0
    let error: Entry['error']

    const fail = (code: ZoneProblemCode, message: string, atLine: number): void => {
      if (error === undefined) error = { code, message, line: atLine }
    }

    entry: while (i < n) {
      const c = text.charCodeAt(i)
      if (isBlank(c)) {
        i++
      } else if (c === LF) {
        i++
        line++
        if (depth === 0) break entry
      } else if (c === SEMICOLON) {
        while (i < n && text.charCodeAt(i) !== LF) i++
      } else if (c === OPEN) {
        // Nested parentheses are an error in Knot's zscanner too.
        if (depth > 0) fail(ZONE_PROBLEM.BAD_PARENTHESES, 'nested "(": parentheses do not nest', line)
        else openLine = line
        depth = 1
        i++
      } else if (c === CLOSE) {
        if (depth === 0) fail(ZONE_PROBLEM.BAD_PARENTHESES, '")" without a matching "("', line)
        depth = 0
        i++
      } else if (c === QUOTE) {
        const tokLine = line
        let j = i + 1
        let closed = false
        while (j < n) {
          const d = text.charCodeAt(j)
          if (d === BACKSLASH && j + 1 < n) {
            if (text.charCodeAt(j + 1) === LF) line++
            j += 2
          } else if (d === QUOTE) {
            closed = true
            break
          } else if (d === LF) {
            // A newline inside quotes is only allowed inside parentheses (as in Knot).
            if (depth === 0) break
            line++
            j++
          } else {
            j++
          }
        }
        if (!closed) {
          fail(ZONE_PROBLEM.UNTERMINATED_STRING, 'quoted string is not closed on this line', tokLine)
          i = j
          continue
        }
        tokens.push({ text: text.slice(i + 1, j), quoted: true, line: tokLine })
        i = j + 1
      } else {
        const tokLine = line
        let j = i
        while (j < n) {
          const d = text.charCodeAt(j)
          if (d === BACKSLASH && j + 1 < n) {
            // An escaped character never ends the token: "\;" "\(" "\ " are literal.
            if (text.charCodeAt(j + 1) === LF) break
            j += 2
            continue
          }
          if (isBlank(d) || d === LF || d === SEMICOLON || d === OPEN || d === CLOSE || d === QUOTE) break
          j++
        }
        if (j === i) {
          // Lone backslash before a newline: take it as a one-character token.
          j = i + 1
        }
        tokens.push({ text: text.slice(i, j), quoted: false, line: tokLine })
        i = j
      }
    }

    if (depth > 0) fail(ZONE_PROBLEM.BAD_PARENTHESES, '"(" is never closed', openLine)
    if (tokens.length > 0 || error !== undefined) {
      entries.push(error === undefined ? { line: startLine, blankOwner, tokens } : { line: startLine, blankOwner, tokens, error })
    }
  }
  return entries
}
