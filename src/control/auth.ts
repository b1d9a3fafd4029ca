/**
 * Bearer-token authentication and role checks for the API. Tokens are
 * compared as SHA-256 digests with timingSafeEqual against every configured
 * token, so neither a token's length nor how much of it matched leaks through
 * timing. 401 means "who are you?" (no token, or not one we know; with
 * WWW-Authenticate as RFC 6750 section 3 asks), 403 means "we know you, and
 * you may not" (missing role, or an address outside api.allow).
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { ApiRole, ApiTokenConfig } from '../config/index.js'

export interface Principal {
  readonly name: string
  readonly roles: ReadonlySet<ApiRole>
}

export interface TokenTable {
  /** The token's owner, or undefined for a token nobody has. */
  identify(token: string): Principal | undefined
}

const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest()

export function createTokenTable(tokens: readonly ApiTokenConfig[]): TokenTable {
  const entries = tokens.map((t) => ({ digest: digest(t.token), principal: { name: t.name, roles: new Set(t.roles) } }))
  return {
    identify(token) {
      const presented = digest(token)
      let found: Principal | undefined
      // No early exit: every entry is compared, whichever matches.
      for (const entry of entries) if (timingSafeEqual(presented, entry.digest)) found = entry.principal
      return found
    },
  }
}

/** The token from an `Authorization: Bearer …` header (RFC 6750 section 2.1), or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined
  const match = /^Bearer[ ]+([A-Za-z0-9\-._~+/]+=*)\s*$/i.exec(header)
  return match?.[1]
}
