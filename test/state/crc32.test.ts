// CRC-32: the table fallback matches the standard check value and node:zlib
// (when the runtime has it), whole and in chunks.
import * as zlib from 'node:zlib'
import t from 'tap'
import { crc32, crc32Table } from '../../src/state/crc32.js'
import { createSeededRandom } from '../helpers/seeded-random.js'

t.test('the CRC-32/ISO-HDLC check value', async (t) => {
  const check = Buffer.from('123456789', 'ascii')
  t.equal(crc32Table(check), 0xcbf43926)
  t.equal(crc32(check), 0xcbf43926)
  t.equal(crc32Table(new Uint8Array(0)), 0)
})

t.test('table and exported crc32 agree on random data, whole and continued', async (t) => {
  const rand = createSeededRandom(0x5eed)
  for (let i = 0; i < 50; i++) {
    const data = rand.bytes(rand.between(0, 5000))
    const whole = crc32Table(data)
    t.equal(crc32(data), whole, `length ${data.length}`)
    const cut = rand.int(data.length + 1)
    t.equal(crc32Table(data.subarray(cut), crc32Table(data.subarray(0, cut))), whole, 'continued across a cut')
  }
})

t.test('node:zlib crc32 agrees when present', { skip: typeof (zlib as unknown as Record<string, unknown>)['crc32'] !== 'function' && 'no zlib.crc32 in this Node' }, async (t) => {
  const native = (zlib as unknown as { crc32: (d: Uint8Array, v?: number) => number }).crc32
  const rand = createSeededRandom(7)
  for (let i = 0; i < 20; i++) {
    const data = rand.bytes(rand.between(1, 3000))
    t.equal(crc32Table(data), native(data) >>> 0)
  }
})
