/**
 * Response rate limiting (RRL) for UDP answers, after BIND 9's design (ARM,
 * "Response Rate Limiting"; lib/dns/rrl.c): one token-bucket account per
 * (client prefix, response category, name), bounded in memory by an LRU.
 *
 * Owns the limiting decision only. It does not decide who is exempt by
 * transport or cookie (the caller skips TCP and cookie-validated clients, as
 * Knot's mod-rrl skips clients the cookie module validated), does not build
 * the truncated reply, and does no I/O. Pure and synchronous: the clock is an
 * argument, so the same inputs give the same decision.
 */
import { LRUCache } from 'lru-cache'
import { createAcl } from './acl.js'
import type { AddressAcl } from './acl.js'

/** What kind of response an account is kept for; each has its own budget. */
export const RRL_CATEGORY = { ANSWER: 0, NXDOMAIN: 1, REFERRAL: 2, ERROR: 3 } as const
export type RrlCategory = (typeof RRL_CATEGORY)[keyof typeof RRL_CATEGORY]

/** The decision: send normally, send nothing, or send TC=1 with no records (a "slip"). */
export const RRL_ACTION = { SEND: 0, DROP: 1, SLIP: 2 } as const
export type RrlAction = (typeof RRL_ACTION)[keyof typeof RRL_ACTION]

/** Settings, as in `guard.rrl` of the config. Rates are responses per second per account. */
export interface RrlOptions {
  /** Answers (including NODATA), per (prefix, qname). 0 disables limiting of the category (BIND). */
  readonly responsesPerSecond: number
  /** NXDOMAIN, per (prefix, zone): a random-subdomain flood shares one account. */
  readonly nxdomainsPerSecond: number
  /** Errors (any rcode but NOERROR and NXDOMAIN), per prefix alone. */
  readonly errorsPerSecond: number
  /** Referrals, per (prefix, delegation). Defaults to responsesPerSecond, as in BIND. */
  readonly referralsPerSecond?: number | undefined
  /** How far into debt an account may go, in seconds of its rate; also the recovery time after a flood. 1..3600. */
  readonly windowSec: number
  /** Every slip-th limited response is sent truncated; 0 drops all, 1 truncates all. 0..10. */
  readonly slip: number
  /** Client prefix length grouping IPv4 sources into one account. 0..32. */
  readonly ipv4Prefix: number
  /** Client prefix length grouping IPv6 sources into one account. 0..128. */
  readonly ipv6Prefix: number
  /** CIDRs (or bare addresses), IPv4 or IPv6, never limited. */
  readonly exempt: readonly string[]
  /** Accounts kept at most; the least recently used is forgotten first. Default 100000. */
  readonly maxEntries?: number | undefined
}

/** Decisions taken since creation, for metrics. Never reset. */
export interface RrlCounters {
  readonly sent: number
  readonly dropped: number
  readonly slipped: number
}

/** A rate limiter; one per server, shared by all UDP sockets. */
export interface Rrl {
  /**
   * Debits the account of (client's prefix, category, name) and returns what
   * to do with the response. `client` is the 4- or 16-byte source address
   * (IPv4-mapped IPv6 already unwrapped by the caller). `name` is the qname
   * for ANSWER, the zone or delegation owner for NXDOMAIN and REFERRAL, and
   * ignored for ERROR; ASCII case does not matter. `nowMs` is a millisecond
   * clock that need not be wall time but should not run backwards (if it
   * does, no credit is earned until it passes the last reading). Never
   * throws; allocates only when it creates an account.
   */
  check(client: Uint8Array, category: RrlCategory, name: string, nowMs: number): RrlAction
  /** Accounts currently held (at most maxEntries). */
  readonly size: number
  /** Decisions so far, exempt clients counted as sent. */
  readonly counters: RrlCounters
}

const DEFAULT_MAX_ENTRIES = 100_000

/** One account. A class, so every account has the same shape (V8 inline caches). */
class Account {
  constructor(
    /** Credits; a response is sent while it stays >= 0 after the debit. In [-windowSec * rate, rate]. */
    public balance: number,
    /** Last clock reading that earned credit, in ms. */
    public lastMs: number,
    /** Limited responses since the slip sequence (re)started. */
    public slipCount: number,
  ) {}
}

/**
 * Validates `opts` and builds a limiter. Throws STEER_ERR_GUARD_RRL_CONFIG
 * listing every bad setting (each bad exempt entry by its text), with the
 * first address-parse error as `cause`.
 */
export function createRrl(opts: RrlOptions): Rrl {
  const problems: string[] = []
  let cause: unknown
  const rate = (key: string, value: number | undefined): number => {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) problems.push(`${key} must be a number >= 0, got ${String(value)}`)
    return value ?? 0
  }
  const int = (key: string, value: number | undefined, min: number, max: number): number => {
    if (!Number.isInteger(value) || (value as number) < min || (value as number) > max) problems.push(`${key} must be an integer in ${min}..${max}, got ${String(value)}`)
    return value ?? min
  }
  const responses = rate('responsesPerSecond', opts.responsesPerSecond)
  const rates = [
    responses,
    rate('nxdomainsPerSecond', opts.nxdomainsPerSecond),
    rate('referralsPerSecond', opts.referralsPerSecond ?? responses),
    rate('errorsPerSecond', opts.errorsPerSecond),
  ] as const
  // Ranges as BIND's (window 1..3600, slip 0..10).
  const windowSec = int('windowSec', opts.windowSec, 1, 3600)
  const slip = int('slip', opts.slip, 0, 10)
  const v4Len = int('ipv4Prefix', opts.ipv4Prefix, 0, 32)
  const v6Len = int('ipv6Prefix', opts.ipv6Prefix, 0, 128)
  const maxEntries = int('maxEntries', opts.maxEntries ?? DEFAULT_MAX_ENTRIES, 1, 2 ** 30)
  // One entry at a time, so the error names every bad entry, not just the first.
  for (const entry of opts.exempt) {
    try {
      createAcl([entry])
    } catch (err) {
      cause ??= err
      problems.push(`exempt entry "${entry}" is not an address or CIDR`)
    }
  }
  if (problems.length > 0) {
    throw Object.assign(new Error(`guard.rrl: ${problems.join('; ')}`, { cause }), { code: 'STEER_ERR_GUARD_RRL_CONFIG' })
  }
  const exempt: AddressAcl | undefined = opts.exempt.length > 0 ? createAcl(opts.exempt) : undefined
  const windowMs = windowSec * 1000
  const cache = new LRUCache<number, Account>({ max: maxEntries })
  const counters = { sent: 0, dropped: 0, slipped: 0 }
  // Keyed per process: nobody outside can aim a name at another client's account or at the Map's buckets.
  const seeds = crypto.getRandomValues(new Uint32Array(2))
  const seed1 = seeds[0] as number
  const seed2 = seeds[1] as number

  /**
   * The account key: two 32-bit FNV-1a-style lanes over (family, masked
   * prefix, category, case-folded name), finished with murmur3's fmix32 and
   * packed into 53 bits, so the LRU holds numbers, not strings. BIND also
   * keys on a hash of the name (dns_rrl_key_t.qname_hash). Two accounts
   * sharing a key share a budget; among 100000 accounts that happens with
   * probability ~n^2/2^54, about 5e-7. Hand-written: no hashing library
   * takes mixed bytes and string chars without building a buffer per call.
   */
  function accountKey(client: Uint8Array, category: number, name: string): number {
    const len = client.length
    const prefixLen = Math.min(len === 4 ? v4Len : v6Len, len * 8)
    let h1 = Math.imul(seed1 ^ len, 0x01000193)
    let h2 = Math.imul(seed2 ^ len, 0x85ebca77)
    const full = prefixLen >> 3
    for (let i = 0; i < full; i++) {
      const b = client[i] as number
      h1 = Math.imul(h1 ^ b, 0x01000193)
      h2 = Math.imul(h2 ^ b, 0x85ebca77)
    }
    const rest = prefixLen & 7
    if (rest !== 0) {
      const b = (client[full] as number) & ((0xff << (8 - rest)) & 0xff)
      h1 = Math.imul(h1 ^ b, 0x01000193)
      h2 = Math.imul(h2 ^ b, 0x85ebca77)
    }
    h1 = Math.imul(h1 ^ (category + 0x100), 0x01000193)
    h2 = Math.imul(h2 ^ (category + 0x100), 0x85ebca77)
    // Errors are limited per prefix alone (BIND), so junk names cannot open new accounts.
    if (category !== RRL_CATEGORY.ERROR) {
      for (let i = 0; i < name.length; i++) {
        let c = name.charCodeAt(i)
        // Names compare case-insensitively (RFC 4343): 0x20-randomised qnames share an account.
        if (c >= 65 && c <= 90) c += 32
        h1 = Math.imul(h1 ^ c, 0x01000193)
        h2 = Math.imul(h2 ^ c, 0x85ebca77)
      }
    }
    return (fmix32(h1) >>> 0) * 0x200000 + (fmix32(h2) >>> 11)
  }

  return {
    check(client, category, name, nowMs) {
      if (exempt !== undefined && exempt.allows(client)) {
        counters.sent++
        return RRL_ACTION.SEND
      }
      // An unknown category (a caller's cast) gets the strictest shape: the error budget, no name.
      const cat = category >= 0 && category <= 3 ? category : RRL_CATEGORY.ERROR
      const perSec = rates[cat]
      // Rate 0: the category is not limited (BIND), and costs no memory.
      if (perSec === 0) {
        counters.sent++
        return RRL_ACTION.SEND
      }
      const key = accountKey(client, cat, name)
      let account = cache.get(key)
      if (account === undefined) {
        // A new account starts full: one second of burst (BIND: e->responses = rate).
        account = new Account(perSec, nowMs, 0)
        cache.set(key, account)
      } else {
        const elapsedMs = nowMs - account.lastMs
        // A clock running backwards earns nothing and leaves lastMs alone, so no credit is earned twice.
        if (elapsedMs > 0) {
          if (elapsedMs > windowMs) {
            // BIND: an account idle longer than the window is treated as new.
            account.balance = perSec
            account.slipCount = 0
          } else {
            // Credit accrues per millisecond; BIND credits whole seconds, which lets a burst
            // straddling a second boundary through at twice the rate.
            account.balance += (elapsedMs * perSec) / 1000
            // A query after at least one token's time of silence is no flood: its limited
            // response slips (the slip sequence restarts), so a resolver re-asking while
            // the account repays a flood's debt gets TC and retries over TCP instead of
            // timing out. Flood traffic arrives faster and keeps the configured ratio;
            // a sender paced this slowly gets only question-sized TC replies.
            if (elapsedMs * perSec >= 1000) account.slipCount = 0
            if (account.balance >= perSec) {
              account.balance = perSec
              account.slipCount = 0
            }
          }
          account.lastMs = nowMs
        }
      }
      account.balance -= 1
      if (account.balance >= 0) {
        counters.sent++
        return RRL_ACTION.SEND
      }
      // Limited responses keep debiting down to -window * rate, so a flood must stop for about
      // `windowSec` before answers resume (ARM: "no more negative than window times the rate").
      const floor = -windowSec * perSec
      if (account.balance < floor) account.balance = floor
      // BIND's slip (rrl.c): the first limited response of a sequence goes out truncated,
      // then slip - 1 are dropped, and the sequence repeats.
      if (slip !== 0) {
        const position = account.slipCount
        account.slipCount = position + 1 >= slip ? 0 : position + 1
        if (position === 0) {
          counters.slipped++
          return RRL_ACTION.SLIP
        }
      }
      counters.dropped++
      return RRL_ACTION.DROP
    },
    get size() {
      return cache.size
    },
    counters,
  }
}

/** murmur3's 32-bit finaliser: every input bit affects every output bit. */
function fmix32(h: number): number {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  return h ^ (h >>> 16)
}
