/**
 * What is wrong with a zone file, and where: the one shape every master-file
 * check reports (lexer, parser, rdata, includes, validation), plus the registry
 * of their stable codes. Codes are never reused or renamed; tests assert them.
 * Must not import anything outside zone/.
 */

/** Every code a zone problem can carry. Stable: tooling and tests match on them. */
export const ZONE_PROBLEM = {
  // Reading files.
  FILE_UNREADABLE: 'STEER_ERR_ZONE_FILE_UNREADABLE',
  INCLUDE_UNREADABLE: 'STEER_ERR_ZONE_INCLUDE_UNREADABLE',
  INCLUDE_LOOP: 'STEER_ERR_ZONE_INCLUDE_LOOP',
  INCLUDE_TOO_DEEP: 'STEER_ERR_ZONE_INCLUDE_TOO_DEEP',
  // Lexical structure (RFC 1035 section 5.1).
  BAD_PARENTHESES: 'STEER_ERR_ZONE_BAD_PARENTHESES',
  UNTERMINATED_STRING: 'STEER_ERR_ZONE_UNTERMINATED_STRING',
  // Directives.
  BAD_DIRECTIVE: 'STEER_ERR_ZONE_BAD_DIRECTIVE',
  BAD_ORIGIN: 'STEER_ERR_ZONE_BAD_ORIGIN',
  // Record fields.
  BAD_NAME: 'STEER_ERR_ZONE_BAD_NAME',
  NO_PREVIOUS_OWNER: 'STEER_ERR_ZONE_NO_PREVIOUS_OWNER',
  BAD_TTL: 'STEER_ERR_ZONE_BAD_TTL',
  UNSUPPORTED_CLASS: 'STEER_ERR_ZONE_UNSUPPORTED_CLASS',
  UNKNOWN_TYPE: 'STEER_ERR_ZONE_UNKNOWN_TYPE',
  UNSUPPORTED_TYPE: 'STEER_ERR_ZONE_UNSUPPORTED_TYPE',
  BAD_RDATA: 'STEER_ERR_ZONE_BAD_RDATA',
  // TTL defaults (warnings: the record is loaded).
  TTL_FROM_PREVIOUS: 'STEER_ERR_ZONE_TTL_FROM_PREVIOUS',
  TTL_DEFAULTED: 'STEER_ERR_ZONE_TTL_DEFAULTED',
  // Zone content (validate-zone.ts).
  SOA_MISSING: 'STEER_ERR_ZONE_SOA_MISSING',
  SOA_MULTIPLE: 'STEER_ERR_ZONE_SOA_MULTIPLE',
  SOA_NOT_AT_APEX: 'STEER_ERR_ZONE_SOA_NOT_AT_APEX',
  NS_MISSING: 'STEER_ERR_ZONE_NS_MISSING',
  CNAME_AND_OTHER_DATA: 'STEER_ERR_ZONE_CNAME_AND_OTHER_DATA',
  CNAME_MULTIPLE: 'STEER_ERR_ZONE_CNAME_MULTIPLE',
  CNAME_AT_APEX: 'STEER_ERR_ZONE_CNAME_AT_APEX',
  OUT_OF_ZONE: 'STEER_ERR_ZONE_OUT_OF_ZONE',
  OCCLUDED: 'STEER_ERR_ZONE_OCCLUDED',
  TTL_MISMATCH: 'STEER_ERR_ZONE_TTL_MISMATCH',
} as const

export type ZoneProblemCode = (typeof ZONE_PROBLEM)[keyof typeof ZONE_PROBLEM]

export type ZoneProblemSeverity = 'error' | 'warning'

/**
 * One problem found in a zone. `line` is 1-based; 0 means the problem concerns
 * the file as a whole (unreadable, no SOA anywhere). `file` is the file that
 * holds the offending text: an included file reports its own name.
 */
export interface ZoneProblem {
  readonly file: string
  readonly line: number
  readonly severity: ZoneProblemSeverity
  readonly code: ZoneProblemCode
  readonly message: string
}

/**
 * Thrown inside the zone parser for one bad field; caught per record and turned
 * into a ZoneProblem, so it never escapes the public zone/ functions. `line` is
 * set when the offending token's line differs from the record's first line.
 */
export class ZoneSyntaxError extends Error {
  readonly code: ZoneProblemCode
  readonly line: number | undefined

  constructor(code: ZoneProblemCode, message: string, line?: number) {
    super(message)
    this.name = 'ZoneSyntaxError'
    this.code = code
    this.line = line
  }
}

/** True when any problem is an error (the zone must not be served). */
export function hasZoneErrors(problems: readonly ZoneProblem[]): boolean {
  return problems.some((p) => p.severity === 'error')
}
