/** Access lists: CIDR membership for IPv4 and IPv6, and bad entries named. */
import t from 'tap'
import { createAcl } from '../../src/guard/index.js'
import { parseAddress } from '../../src/steering/index.js'

const bytes = (ip: string) => parseAddress(ip) as Uint8Array

t.test('membership', async (t) => {
  const acl = createAcl(['127.0.0.0/8', '192.0.2.128/25', '::1/128', '2001:db8:40::/44', '198.51.100.7'])
  for (const ip of ['127.1.2.3', '192.0.2.200', '::1', '2001:db8:4f:ffff::1', '198.51.100.7']) t.ok(acl.allows(bytes(ip)), `${ip} allowed`)
  for (const ip of ['128.0.0.1', '192.0.2.127', '::2', '2001:db8:50::1', '198.51.100.8']) t.notOk(acl.allows(bytes(ip)), `${ip} not allowed`)
  t.ok(createAcl(['0.0.0.0/0']).allows(bytes('203.0.113.9')), '/0 allows every IPv4 address')
  t.notOk(createAcl(['0.0.0.0/0']).allows(bytes('::1')), 'an IPv4 list says nothing about IPv6')
})

t.test('bad entries are refused with the entry named', async (t) => {
  for (const bad of ['10.0.0.0/33', 'nope', '::/129', '10.0.0.0/', '10.0.0.0/x']) {
    t.throws(() => createAcl([bad]), { code: 'STEER_ERR_GUARD_ACL', message: new RegExp(bad.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')) }, bad)
  }
})
