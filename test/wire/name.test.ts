// name.ts: the one internal name form, and the decoder's scanner agreeing with it.
import t from 'tap'
import {
  isSubdomainOf,
  labelCount,
  labelToText,
  labelsToName,
  nameToLabels,
  nameToWire,
  nameWireLength,
  parentName,
  splitName,
  toFqdn,
} from '../../src/wire/index.js'
import { NAME_SCAN, scanQuestionName, scanned, skipName, skipped } from '../../src/wire/name-scan.js'

const b = (s: string): Uint8Array => Buffer.from(s, 'latin1')

t.test('labelToText: lowercase, escapes', async (t) => {
  const cases: Array<[Uint8Array, string]> = [
    [b('www'), 'www'],
    [b('WwW'), 'www'],
    [b('a.b'), 'a\\.b'],
    [b('a\\b'), 'a\\\\b'],
    [Uint8Array.of(0), '\\000'],
    [Uint8Array.of(0x20), '\\032'],
    [Uint8Array.of(0x7f, 0xff), '\\127\\255'],
    [b('_dmarc'), '_dmarc'],
    [b('*'), '*'],
    [b('xn--Bcher-KVA'), 'xn--bcher-kva'],
    [new Uint8Array(0), ''],
  ]
  for (const [label, text] of cases) t.equal(labelToText(label), text, JSON.stringify(text))
})

t.test('nameToLabels / labelsToName / nameToWire', async (t) => {
  const cases: Array<{ name: string; labels: string[]; wire: number[] }> = [
    { name: '', labels: [], wire: [0] },
    { name: 'example', labels: ['example'], wire: [7, ...b('example'), 0] },
    { name: 'www.example.com', labels: ['www', 'example', 'com'], wire: [3, ...b('www'), 7, ...b('example'), 3, ...b('com'), 0] },
    { name: 'a\\.b.example', labels: ['a.b', 'example'], wire: [3, ...b('a.b'), 7, ...b('example'), 0] },
    { name: '\\000\\255.x', labels: ['\u0000\u00ff', 'x'], wire: [2, 0, 255, 1, ...b('x'), 0] },
    { name: 'a\\\\.b', labels: ['a\\', 'b'], wire: [2, ...b('a\\'), 1, ...b('b'), 0] },
  ]
  for (const c of cases) {
    const labels = nameToLabels(c.name)
    t.same(
      labels.map((l) => Buffer.from(l).toString('latin1')),
      c.labels,
      `labels of ${JSON.stringify(c.name)}`,
    )
    t.equal(labelsToName(labels), c.name, `round trip ${JSON.stringify(c.name)}`)
    t.same([...nameToWire(c.name)], c.wire, `wire of ${JSON.stringify(c.name)}`)
    t.equal(nameWireLength(c.name), c.wire.length)
  }
})

t.test('splitName, parentName, labelCount, toFqdn', async (t) => {
  const cases: Array<{ name: string; split: string[]; parent: string | undefined; fqdn: string }> = [
    { name: '', split: [], parent: undefined, fqdn: '.' },
    { name: 'com', split: ['com'], parent: '', fqdn: 'com.' },
    { name: 'www.example.com', split: ['www', 'example', 'com'], parent: 'example.com', fqdn: 'www.example.com.' },
    { name: 'a\\.b.example', split: ['a\\.b', 'example'], parent: 'example', fqdn: 'a\\.b.example.' },
    { name: '\\046x.y', split: ['\\046x', 'y'], parent: 'y', fqdn: '\\046x.y.' },
  ]
  for (const c of cases) {
    t.same(splitName(c.name), c.split, `split ${c.name}`)
    t.equal(parentName(c.name), c.parent, `parent ${c.name}`)
    t.equal(labelCount(c.name), c.split.length)
    t.equal(toFqdn(c.name), c.fqdn)
  }
})

t.test('isSubdomainOf', async (t) => {
  const cases: Array<[string, string, boolean]> = [
    ['www.example.com', 'example.com', true],
    ['example.com', 'example.com', true],
    ['example.com', '', true],
    ['', '', true],
    ['wwwexample.com', 'example.com', false],
    ['example.com', 'www.example.com', false],
    // Labels "a.example" and "com": not below "example.com".
    ['a\\.example.com', 'example.com', false],
    ['x.a\\.example.com', 'a\\.example.com', true],
    // The last label is "a.example", not "example": the matched dot is escaped.
    ['a\\.example', 'example', false],
    ['a\\\\.example', 'example', true],
  ]
  for (const [name, ancestor, expected] of cases) t.equal(isSubdomainOf(name, ancestor), expected, `${name} under ${ancestor}`)
})

t.test('scanQuestionName agrees with labelsToName on random labels', async (t) => {
  let seed = 12345
  const rand = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0
    return (seed >>> 8) % n
  }
  for (let i = 0; i < 500; i++) {
    const labels: Uint8Array[] = []
    let wireBytes = 1
    for (;;) {
      const len = 1 + rand(i % 2 === 0 ? 63 : 8)
      if (wireBytes + len + 1 > 255) break
      const label = new Uint8Array(len)
      for (let k = 0; k < len; k++) label[k] = i % 3 === 0 ? rand(256) : 0x41 + rand(58)
      labels.push(label)
      wireBytes += len + 1
      if (rand(4) === 0) break
    }
    const wire = [...labels.flatMap((l) => [l.length, ...l]), 0]
    t.equal(scanQuestionName(Uint8Array.from(wire), 0), NAME_SCAN.OK)
    const expected = labelsToName(labels)
    if (scanned.text !== expected) {
      t.fail(`scanner ${scanned.text} != ${expected}`)
      continue
    }
    // And back: the canonical text yields the lowercased labels.
    const back = nameToLabels(expected)
    const lower = labels.map((l) => l.map((x) => (x >= 0x41 && x <= 0x5a ? x + 0x20 : x)))
    if (!back.every((l, k) => Buffer.from(l).equals(Buffer.from(lower[k] as Uint8Array)))) t.fail(`round trip of ${expected}`)
  }
  t.pass('500 names')
})

t.test('scanners: exact 255-byte limit, codes for malformed names', async (t) => {
  const name255 = [...[0, 1, 2].flatMap(() => [63, ...new Array<number>(63).fill(0x61)]), 61, ...new Array<number>(61).fill(0x61), 0]
  t.equal(name255.length, 255)
  t.equal(scanQuestionName(Uint8Array.from(name255), 0), NAME_SCAN.OK)
  const name256 = [...[0, 1, 2].flatMap(() => [63, ...new Array<number>(63).fill(0x61)]), 62, ...new Array<number>(62).fill(0x61), 0]
  t.equal(scanQuestionName(Uint8Array.from(name256), 0), NAME_SCAN.TOO_LONG)
  // Header-sized prefix so pointers can be legal.
  const msg = (...tail: number[]): Uint8Array => Uint8Array.from([...new Array<number>(12).fill(0), ...tail])
  t.equal(skipName(Uint8Array.from([...new Array<number>(12).fill(0), ...name255]), 12), NAME_SCAN.OK)
  t.equal(skipName(Uint8Array.from([...new Array<number>(12).fill(0), ...name256]), 12), NAME_SCAN.TOO_LONG)
  t.equal(skipName(msg(1, 0x61, 0, 0xc0, 12), 15), NAME_SCAN.OK)
  t.equal(skipped.end, 17)
  t.equal(skipped.isRoot, false)
  t.equal(skipName(msg(0, 0xc0, 12), 13), NAME_SCAN.OK)
  t.equal(skipped.isRoot, true, 'pointer to the root is the root')
  t.equal(skipName(msg(0xc0, 12), 12), NAME_SCAN.BAD_POINTER, 'self pointer')
  t.equal(skipName(msg(1, 0x61, 0xc0, 12), 12), NAME_SCAN.BAD_POINTER, 'loop through a label')
  t.equal(skipName(msg(0xc0, 0), 12), NAME_SCAN.BAD_POINTER, 'into the header')
  t.equal(skipName(msg(0x40, 0), 12), NAME_SCAN.LABEL_TYPE)
  t.equal(skipName(msg(0xc0), 12), NAME_SCAN.TRUNCATED)
  t.equal(skipName(msg(5, 0x61), 12), NAME_SCAN.TRUNCATED)
  // A long backwards chain of pointer-to-pointer is cut by the hop bound.
  const chain = [1, 0x61, 0]
  for (let i = 0; i < 100; i++) chain.push(0xc0, i === 0 ? 12 : 12 + 3 + (i - 1) * 2)
  const chainMsg = msg(...chain)
  t.equal(skipName(chainMsg, 12 + 3 + 10 * 2), NAME_SCAN.OK, 'ten hops')
  t.equal(skipName(chainMsg, 12 + 3 + 99 * 2), NAME_SCAN.BAD_POINTER, '100 hops')
})
