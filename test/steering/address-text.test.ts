// Address text parsing agrees with node:net (isIPv4/isIPv6) and client-key's parseAddress.
import { isIPv4, isIPv6 } from 'node:net'
import t from 'tap'
import { parseIpv4Into, parseIpv6Into } from '../../src/steering/address-text.js'
import { parseAddress } from '../../src/steering/client-key.js'

function check(text: string): string | undefined {
  const out = new Uint8Array(16)
  const v4 = parseIpv4Into(text, 0, text.length, out)
  const wantV4 = isIPv4(text)
  if (v4 !== wantV4) return `IPv4 ${JSON.stringify(text)}: ${v4}, node:net ${wantV4}`
  if (v4 && out.subarray(0, 4).join('.') !== (parseAddress(text) as Uint8Array).join('.')) return `IPv4 bytes ${text}`
  const v6 = parseIpv6Into(text, 0, text.length, out)
  const wantV6 = isIPv6(text) && !text.includes('%')
  if (v6 !== wantV6) return `IPv6 ${JSON.stringify(text)}: ${v6}, node:net ${wantV6}`
  if (v6 && out.join(',') !== (parseAddress(text) as Uint8Array).join(',')) return `IPv6 bytes ${text}`
  return undefined
}

t.test('hand-picked addresses', async (t) => {
  const texts = [
    '0.0.0.0', '255.255.255.255', '198.51.100.7', '256.1.1.1', '01.2.3.4', '1.2.3', '1.2.3.4.5', '1..2.3', '1.2.3.', '.1.2.3', '1.2.3.04', '1.2.3.0',
    '::', '::1', '1::', '2001:db8::', '2001:DB8::1', '2001:0db8:0000:0000:0000:0000:0000:0001', '1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7::', '::2:3:4:5:6:7:8',
    '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7', ':::', '1:::2', ':1', '1:', '1::2::3', '12345::', 'g::', '::ffff:198.51.100.7', '::198.51.100.7',
    '1:2:3:4:5:6:1.2.3.4', '1:2:3:4:5:6:7:1.2.3.4', '1::1.2.3.4', '::ffff:1.2.3', '::ffff:01.2.3.4', '::ffff:1.2.3.4:5', 'fe80::1%eth0', '', ' ::1', '::1 ',
    '1:2:3:4:5::1.2.3.4', '1:2:3:4:5:6::1.2.3.4', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', '::0:0', '0:0::', 'a:b:c:d:e:f:0:1',
  ]
  for (const text of texts) t.equal(check(text), undefined, JSON.stringify(text))
})

t.test('random strings over the address alphabet agree with node:net', async (t) => {
  let a = 7
  const rand = () => {
    a = (a * 1103515245 + 12345) >>> 0
    return a / 4294967296
  }
  const alphabet = '0123456789abcdefABCDEF:::..'
  let disagreements = 0
  for (let n = 0; n < 20000; n++) {
    let text = ''
    const len = 1 + Math.floor(rand() * 24)
    for (let i = 0; i < len; i++) text += alphabet[Math.floor(rand() * alphabet.length)]
    const problem = check(text)
    if (problem && disagreements++ < 5) t.fail(problem)
  }
  // Random text is mostly invalid; also mutate valid addresses.
  const valid = ['2001:db8:1:2:3:4:5:6', '::ffff:198.51.100.7', '2001:db8::1', '198.51.100.7', '1:2:3:4:5:6:1.2.3.4']
  for (let n = 0; n < 20000; n++) {
    const chars = [...(valid[n % valid.length] as string)]
    const at = Math.floor(rand() * chars.length)
    const c = alphabet[Math.floor(rand() * alphabet.length)] as string
    if (rand() < 0.5) chars.splice(at, 1)
    else chars.splice(at, 0, c)
    const problem = check(chars.join(''))
    if (problem && disagreements++ < 5) t.fail(problem)
  }
  t.equal(disagreements, 0)
})
