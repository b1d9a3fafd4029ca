/**
 * The answer cache's own rules: which query bytes make one key (the ID and
 * the name's letter case do not count; every other byte does), which
 * messages are not cached at all, and that memory stays bounded by entries
 * and by bytes whatever keys a flood invents.
 */
import dnsPacket from 'dns-packet'
import type { Answer } from 'dns-packet'
import t from 'tap'
import { AnswerCache } from '../../src/query/index.js'
import type { AnswerFacts } from '../../src/query/answer-cache.js'

function query(name: string, opts: { id?: number; type?: string; ecs?: string; rd?: boolean } = {}): Buffer {
  const options = opts.ecs ? [{ code: 8, family: 1, sourcePrefixLength: 24, scopePrefixLength: 0, ip: opts.ecs }] : []
  return dnsPacket.encode({
    type: 'query',
    id: opts.id ?? 1,
    flags: opts.rd ? dnsPacket.RECURSION_DESIRED : 0,
    questions: [{ name, type: (opts.type ?? 'A') as dnsPacket.RecordType }],
    additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, options } as unknown as Answer],
  })
}

t.test('one key for the same question whatever the ID and letter case; another for any other byte', async (t) => {
  const cache = new AnswerCache()
  const key = (b: Uint8Array, transport: 'udp' | 'tcp' = 'udp'): string | undefined => cache.keyOf(b, transport)?.key
  const base = key(query('www.example.net'))
  t.ok(base)
  t.equal(key(query('WwW.ExAmPlE.NeT', { id: 999 })), base, 'ID and case ignored')
  t.not(key(query('www.example.net', { type: 'AAAA' })), base, 'type')
  t.not(key(query('www.example.net', { rd: true })), base, 'RD flag')
  t.not(key(query('www.example.net', { ecs: '198.51.100.0' })), base, 'ECS option')
  t.not(key(query('www.example.net', { ecs: '198.51.101.0' })), key(query('www.example.net', { ecs: '198.51.100.0' })), 'ECS address')
  t.not(key(query('www.example.net'), 'tcp'), base, 'transport')
  t.equal(cache.keyOf(query('www.example.net'), 'udp')?.nameEnd, 12 + 17, 'the name ends after its 17 wire bytes')
})

t.test('messages that are not cached: not one question, a pointer in the name, oversized, truncated', async (t) => {
  const cache = new AnswerCache()
  const two = dnsPacket.encode({ type: 'query', id: 1, questions: [{ name: 'a.example', type: 'A' }, { name: 'b.example', type: 'A' }] })
  t.equal(cache.keyOf(two, 'udp'), undefined, 'QDCOUNT 2')
  const pointer = Buffer.from(query('www.example.net'))
  pointer[12] = 0xc0
  t.equal(cache.keyOf(pointer, 'udp'), undefined, 'compression pointer in the question')
  const big = Buffer.concat([query('www.example.net'), Buffer.alloc(600)])
  t.equal(cache.keyOf(big, 'udp'), undefined, 'over 512 bytes')
  t.equal(cache.keyOf(query('www.example.net').subarray(0, 20), 'udp'), undefined, 'the name runs past the end')
})

const facts: AnswerFacts = {
    nameEnd: 12,
    zones: {} as AnswerFacts['zones'],
    view: undefined,
    expiresAtMs: Infinity,
    qtype: 1,
    rcode: 0,
    truncated: false,
    ecsScope: undefined,
    rrlCategory: 0,
    rrlName: '',
    rule: undefined,
    decision: undefined,
    log: undefined,
}

t.test('memory is bounded by entries and by bytes: at most two generations', async (t) => {
  const byEntries = new AnswerCache(100, 1 << 30)
  for (let i = 0; i < 10_000; i++) byEntries.set(`k${i}`, '', facts, new Uint8Array(50), false)
  t.ok(byEntries.size <= 200, `10,000 distinct keys keep ${byEntries.size} entries (limit 2 × 100)`)
  t.ok(byEntries.get('k9999', ''), 'the newest is kept')
  t.equal(byEntries.get('k0', ''), undefined, 'the oldest is gone')

  const byBytes = new AnswerCache(1_000_000, 100_000)
  for (let i = 0; i < 10_000; i++) byBytes.set(`k${i}`, '', facts, new Uint8Array(1000).fill(i % 251), false)
  t.ok(byBytes.size <= 200, `10,000 answers of 1000 bytes keep ${byBytes.size} (limit 2 × 100,000 bytes)`)
  const last = byBytes.get('k9999', '')
  t.ok(last && last.length === 1000 && last.arena.subarray(last.offset, last.offset + 1000).every((v) => v === 9999 % 251), 'the newest answer reads back its own bytes')
  t.notOk(AnswerCache.fits(1233), 'answers over 1232 bytes are not stored')
  t.ok(AnswerCache.fits(1232))
})

t.test('per-client entries: the same bytes from another address are a miss', async (t) => {
  const cache = new AnswerCache()
  cache.set('q', '192.0.2.1', facts, new Uint8Array(60), true)
  t.ok(cache.get('q', '192.0.2.1'))
  t.equal(cache.get('q', '192.0.2.2'), undefined)
})

t.test('an answer used again in the older generation moves to the newer one with its own bytes', async (t) => {
  const cache = new AnswerCache(2, 1 << 20)
  const bytesOf = (key: string): number[] | undefined => {
    const e = cache.get(key, '')
    return e ? [...e.arena.subarray(e.offset, e.offset + e.length)] : undefined
  }
  cache.set('a', '', facts, Uint8Array.of(1, 1, 1), false)
  cache.set('b', '', facts, Uint8Array.of(2, 2), false)
  cache.set('c', '', facts, Uint8Array.of(3), false) // a and b are now the older generation
  t.same(bytesOf('a'), [1, 1, 1], 'read from the older generation, and moved')
  cache.set('d', '', facts, Uint8Array.of(4, 4), false) // c and a become the older generation
  cache.set('e', '', facts, Uint8Array.of(5), false)
  t.same(bytesOf('a'), [1, 1, 1], 'still its own bytes after two generation changes')
  t.equal(cache.get('b', ''), undefined, 'b was not used again: gone')
})
