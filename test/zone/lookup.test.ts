/**
 * Lookup rules (RFC 1034 4.3.2, RFC 4592, RFC 2308, RFC 8482) as a table of
 * questions and the exact sections a resolver would receive.
 */
import t from 'tap'
import { ask, zonesFromText } from '../helpers/zone-kit.js'

const zones = zonesFromText({
  'example.test': `
$TTL 300
@        3600 SOA ns1 hostmaster 7 7200 900 1209600 60
@        3600 NS  ns1
@        3600 NS  ns.elsewhere.invalid.
ns1           A   192.0.2.53
www           A   192.0.2.10
www           AAAA 2001:db8::10
@             MX  10 mail
mail          A   192.0.2.25
_sip._tcp     SRV 0 5 5060 www
alias         CNAME www
chain         CNAME alias
loop-a        CNAME loop-b
loop-b        CNAME loop-a
dangling      CNAME nowhere
to-other      CNAME www.other.test.
*.wild        A   192.0.2.70
*.wild        MX  10 mail
host.wild     TXT "real"
*.cwild       CNAME www
b.c.ent       A   192.0.2.80
deleg         NS  ns.deleg
deleg         NS  ns1
deleg         DS  12345 8 2 49FD46E6C4B45C55D4AC49FD46E6C4B45C55D4AC49FD46E6C4B45C55D4AC49FD
ns.deleg      A   192.0.2.90
sub           NS  ns.sub
ns.sub        A   192.0.2.91
sub           DS  54321 8 2 49FD46E6C4B45C55D4AC49FD46E6C4B45C55D4AC49FD46E6C4B45C55D4AC49FD
`,
  'sub.example.test': `
$TTL 1800
@   SOA ns.sub.example.test. hostmaster.example.test. 1 7200 900 1209600 120
@   NS  ns
ns  A   192.0.2.91
www A   192.0.2.92
`,
  'other.test': `
$TTL 600
@   SOA ns.other.test. hostmaster.other.test. 1 7200 900 1209600 30
@   NS  ns
ns  A   192.0.2.100
www A   192.0.2.101
`,
})

const SOA = 'example.test 60 SOA ns1.example.test hostmaster.example.test 7 60'

interface Case {
  q: [string, string]
  rcode: string
  aa: boolean
  answer?: string[]
  authority?: string[]
  additional?: string[]
}

const cases: Record<string, Case> = {
  'exact match, AA, no authority (minimal responses)': {
    q: ['www.example.test', 'A'],
    rcode: 'NOERROR',
    aa: true,
    answer: ['www.example.test 300 A 192.0.2.10'],
  },
  'NODATA: NOERROR, SOA with TTL min(SOA TTL, MINIMUM) (RFC 2308 s3)': {
    q: ['www.example.test', 'TXT'],
    rcode: 'NOERROR',
    aa: true,
    authority: [SOA],
  },
  'NXDOMAIN with the negative SOA': { q: ['nope.example.test', 'A'], rcode: 'NXDOMAIN', aa: true, authority: [SOA] },
  'empty non-terminal is NODATA, not NXDOMAIN (RFC 4592 s2.2.2)': {
    q: ['c.ent.example.test', 'A'],
    rcode: 'NOERROR',
    aa: true,
    authority: [SOA],
  },
  'MX gets the exchange address in additional': {
    q: ['example.test', 'MX'],
    rcode: 'NOERROR',
    aa: true,
    answer: ['example.test 300 MX 10 mail.example.test'],
    additional: ['mail.example.test 300 A 192.0.2.25'],
  },
  'SRV gets the target addresses in additional': {
    q: ['_sip._tcp.example.test', 'SRV'],
    rcode: 'NOERROR',
    aa: true,
    answer: ['_sip._tcp.example.test 300 SRV 0 5 5060 www.example.test'],
    additional: ['www.example.test 300 A 192.0.2.10', 'www.example.test 300 AAAA 2001:db8::10'],
  },
  'apex NS: in-zone host addresses in additional, none for the outside host': {
    q: ['example.test', 'NS'],
    rcode: 'NOERROR',
    aa: true,
    answer: ['example.test 3600 NS ns1.example.test', 'example.test 3600 NS ns.elsewhere.invalid'],
    additional: ['ns1.example.test 300 A 192.0.2.53'],
  },
  'CNAME chain followed to the address (RFC 1034 4.3.2 step 3a)': {
    q: ['chain.example.test', 'A'],
    rcode: 'NOERROR',
    aa: true,
    answer: [
      'chain.example.test 300 CNAME alias.example.test',
      'alias.example.test 300 CNAME www.example.test',
      'www.example.test 300 A 192.0.2.10',
    ],
  },
  'CNAME chain ending in NODATA carries the SOA': {
    q: ['alias.example.test', 'MX'],
    rcode: 'NOERROR',
    aa: true,
    answer: ['alias.example.test 300 CNAME www.example.test'],
    authority: [SOA],
  },
  'CNAME to a missing name: NXDOMAIN from the last name (RFC 6604)': {
    q: ['dangling.example.test', 'A'],
    rcode: 'NXDOMAIN',
    aa: true,
    answer: ['dangling.example.test 300 CNAME nowhere.example.test'],
    authority: [SOA],
  },
  'CNAME loop stops without repeating and without SERVFAIL': {
    q: ['loop-a.example.test', 'A'],
    rcode: 'NOERROR',
    aa: true,
    answer: ['loop-a.example.test 300 CNAME loop-b.example.test', 'loop-b.example.test 300 CNAME loop-a.example.test'],
  },
  'CNAME into another served zone is followed there': {
    q: ['to-other.example.test', 'A'],
    rcode: 'NOERROR',
    aa: true,
    answer: ['to-other.example.test 300 CNAME www.other.test', 'www.other.test 600 A 192.0.2.101'],
  },
  'CNAME query returns the CNAME only': {
    q: ['alias.example.test', 'CNAME'],
    rcode: 'NOERROR',
    aa: true,
    answer: ['alias.example.test 300 CNAME www.example.test'],
  },
  'wildcard synthesizes with the query name as owner (RFC 4592 s3.4.1)': {
    q: ['foo.wild.example.test', 'A'],
    rcode: 'NOERROR',
    aa: true,
    answer: ['foo.wild.example.test 300 A 192.0.2.70'],
  },
  'wildcard matches several labels': {
    q: ['a.b.wild.example.test', 'A'],
    rcode: 'NOERROR',
    aa: true,
    answer: ['a.b.wild.example.test 300 A 192.0.2.70'],
  },
  'wildcard MX gets additional addresses too': {
    q: ['foo.wild.example.test', 'MX'],
    rcode: 'NOERROR',
    aa: true,
    answer: ['foo.wild.example.test 300 MX 10 mail.example.test'],
    additional: ['mail.example.test 300 A 192.0.2.25'],
  },
  'wildcard without the type is NODATA': { q: ['foo.wild.example.test', 'AAAA'], rcode: 'NOERROR', aa: true, authority: [SOA] },
  'existing name under a wildcard parent does not match the wildcard': {
    q: ['host.wild.example.test', 'A'],
    rcode: 'NOERROR',
    aa: true,
    authority: [SOA],
  },
  'below an existing name the wildcard above is not a source (closest encloser rule)': {
    q: ['deep.host.wild.example.test', 'A'],
    rcode: 'NXDOMAIN',
    aa: true,
    authority: [SOA],
  },
  'the parent of a wildcard is an empty non-terminal': { q: ['wild.example.test', 'A'], rcode: 'NOERROR', aa: true, authority: [SOA] },
  'wildcard CNAME is synthesized and chased': {
    q: ['x.cwild.example.test', 'A'],
    rcode: 'NOERROR',
    aa: true,
    answer: ['x.cwild.example.test 300 CNAME www.example.test', 'www.example.test 300 A 192.0.2.10'],
  },
  'referral: AA clear, NS in authority, in-domain glue in additional': {
    q: ['x.deleg.example.test', 'A'],
    rcode: 'NOERROR',
    aa: false,
    authority: ['deleg.example.test 300 NS ns.deleg.example.test', 'deleg.example.test 300 NS ns1.example.test'],
    additional: ['ns.deleg.example.test 300 A 192.0.2.90', 'ns1.example.test 300 A 192.0.2.53'],
  },
  'NS query at the cut is a referral too': {
    q: ['deleg.example.test', 'NS'],
    rcode: 'NOERROR',
    aa: false,
    authority: ['deleg.example.test 300 NS ns.deleg.example.test', 'deleg.example.test 300 NS ns1.example.test'],
    additional: ['ns.deleg.example.test 300 A 192.0.2.90', 'ns1.example.test 300 A 192.0.2.53'],
  },
  'DS at the cut is answered by the parent (RFC 4035 s3.1.4.1)': {
    q: ['deleg.example.test', 'DS'],
    rcode: 'NOERROR',
    aa: true,
    answer: ['deleg.example.test 300 DS {"keyTag":12345,"algorithm":8,"digestType":2,"digest":{"type":"Buffer","data":[73,253,70,230,196,180,92,85,212,172,73,253,70,230,196,180,92,85,212,172,73,253,70,230,196,180,92,85,212,172,73,253]}}'],
  },
  'child zone served too: the most specific zone answers': {
    q: ['www.sub.example.test', 'A'],
    rcode: 'NOERROR',
    aa: true,
    answer: ['www.sub.example.test 1800 A 192.0.2.92'],
  },
  'child zone NXDOMAIN carries the child SOA': {
    q: ['nope.sub.example.test', 'A'],
    rcode: 'NXDOMAIN',
    aa: true,
    authority: ['sub.example.test 120 SOA ns.sub.example.test hostmaster.example.test 1 120'],
  },
  'DS for a served child apex comes from the parent zone': {
    q: ['sub.example.test', 'DS'],
    rcode: 'NOERROR',
    aa: true,
    answer: ['sub.example.test 300 DS {"keyTag":54321,"algorithm":8,"digestType":2,"digest":{"type":"Buffer","data":[73,253,70,230,196,180,92,85,212,172,73,253,70,230,196,180,92,85,212,172,73,253,70,230,196,180,92,85,212,172,73,253]}}'],
  },
  'ANY: one RRset, the lowest type (RFC 8482 s4.1)': {
    q: ['www.example.test', 'ANY'],
    rcode: 'NOERROR',
    aa: true,
    answer: ['www.example.test 300 A 192.0.2.10'],
  },
  'ANY at an alias: the CNAME, unchased': {
    q: ['alias.example.test', 'ANY'],
    rcode: 'NOERROR',
    aa: true,
    answer: ['alias.example.test 300 CNAME www.example.test'],
  },
  'name outside every zone: REFUSED, AA clear': { q: ['www.example.invalid', 'A'], rcode: 'REFUSED', aa: false },
  'unknown type at an existing name: NODATA (RFC 3597)': { q: ['www.example.test', 'TYPE65280'], rcode: 'NOERROR', aa: true, authority: [SOA] },
  'zone transfers are not offered': { q: ['example.test', 'AXFR'], rcode: 'REFUSED', aa: false },
}

for (const [title, c] of Object.entries(cases)) {
  t.test(title, async (t) => {
    const r = ask(zones, c.q[0], c.q[1])
    t.equal(r.rcode, c.rcode, 'rcode')
    t.equal(r.flags.includes('aa'), c.aa, 'AA flag')
    t.equal(r.flags.includes('tc'), false, 'not truncated')
    t.same(r.answer, c.answer ?? [], 'answer section')
    t.same(r.authority, c.authority ?? [], 'authority section')
    t.same(r.additional, c.additional ?? [], 'additional section')
  })
}

t.test('the question case is echoed and answers to it are compressed onto it', async (t) => {
  const r = ask(zones, 'WwW.ExAmPlE.TeSt', 'A')
  t.equal(r.packet.questions?.[0]?.name, 'WwW.ExAmPlE.TeSt')
  t.equal(r.packet.answers?.[0]?.name, 'WwW.ExAmPlE.TeSt', 'owner written as a pointer to the question')
})

t.test('CHAOS identity names', async (t) => {
  t.same(ask(zones, 'id.server', 'TXT', {}, 'CH').answer, ['id.server 0 TXT "test-node"'])
  t.same(ask(zones, 'version.bind', 'TXT', {}, 'CH').answer, ['version.bind 0 TXT "steerdns-test"'])
  t.equal(ask(zones, 'other.bind', 'TXT', {}, 'CH').rcode, 'REFUSED')
})
