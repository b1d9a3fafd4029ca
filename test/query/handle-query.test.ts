/**
 * The handler's last line of defence: a bug below it (here, a zone snapshot
 * that throws) becomes a SERVFAIL with the query's ID, is counted, and is
 * reported; the caller never sees an exception.
 */
import dnsPacket from 'dns-packet'
import t from 'tap'
import { buildChaosRecords, createQueryHandler } from '../../src/query/index.js'
import { createQueryCounters } from '../../src/telemetry/index.js'

t.test('an exception inside the pipeline is answered SERVFAIL, counted and reported', async (t) => {
  const counters = createQueryCounters()
  const reported: unknown[] = []
  const handler = createQueryHandler({
    zones: () => {
      throw new Error('snapshot exploded')
    },
    chaos: buildChaosRecords({ identity: 'n', version: 'v' }),
    nsid: undefined,
    maxUdpResponseBytes: 1232,
    counters,
    onInternalError: (err) => reported.push(err),
  })
  const query = dnsPacket.encode({ type: 'query', id: 0xbeef, questions: [{ name: 'www.example.test', type: 'A' }] })
  const reply = handler(query, 'udp', '192.0.2.1')
  t.ok(reply, 'answered')
  const p = dnsPacket.decode(Buffer.from(reply as Uint8Array)) as dnsPacket.DecodedPacket & { rcode?: string }
  t.equal(p.id, 0xbeef)
  t.equal(p.rcode, 'SERVFAIL')
  t.equal(counters.internalErrors, 1)
  t.equal(counters.responsesByRcode.get(2), 1, 'the SERVFAIL is counted as a response')
  t.equal(counters.received.udp, 1)
  t.equal(reported.length, 1)
  t.match((reported[0] as Error).message, 'snapshot exploded')
})
