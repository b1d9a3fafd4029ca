/**
 * A small seeded PRNG (mulberry32) for fuzz and property tests: the same seed
 * gives the same sequence on every machine, so a failure prints its seed and
 * replays exactly. Not for anything that needs unpredictability.
 */

export interface SeededRandom {
  readonly seed: number
  /** Uniform in [0, 1). */
  next(): number
  /** Uniform integer in [0, n). */
  int(n: number): number
  /** Uniform integer in [min, max] (both included). */
  between(min: number, max: number): number
  /** True with probability p. */
  chance(p: number): boolean
  /** One element of a non-empty list. Throws on an empty one. */
  pick<T>(items: readonly T[]): T
  /** n random bytes. */
  bytes(n: number): Buffer
}

/** A generator seeded with the low 32 bits of `seed`. */
export function createSeededRandom(seed: number): SeededRandom {
  let state = seed >>> 0
  const next = (): number => {
    state = (state + 0x6d2b79f5) >>> 0
    let x = state
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
  const int = (n: number): number => Math.floor(next() * n)
  return {
    seed: seed >>> 0,
    next,
    int,
    between: (min, max) => min + int(max - min + 1),
    chance: (p) => next() < p,
    pick<T>(items: readonly T[]): T {
      if (items.length === 0) throw new Error('pick from an empty list')
      return items[int(items.length)] as T
    },
    bytes(n) {
      const out = Buffer.alloc(n)
      for (let i = 0; i < n; i++) out[i] = int(256)
      return out
    },
  }
}
