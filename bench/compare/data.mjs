// Equivalent data for the three servers, all generated from the example in the
// steerdns tree under test (steerdns.yaml, zones/edge.example.net.zone,
// maps/example-map.json, geo-data/example-city.txt):
//
// - steerdns: a copy of steerdns.yaml with RRL off, the API off, its own
//   state directory and absolute paths to the copies below.
// - gdnsd 3: the same zone plus `api DYNA geoip!api`; plugin_geoip in city
//   auto mode over the same MaxMind DB (built by geo-data/build.mjs) with the
//   targets' coordinates as `auto_dc_coords`, and the latency map's entries as
//   `nets` (prefix -> targets ranked by score), so the map wins and geo
//   distance decides elsewhere, as in steerdns.
// - Knot: the zone as it is (static answers only: Knot has no steering here).
//
// Query files are dnsperf binary input (-B): every query carries EDNS0 (1232
// bytes), and steered queries with ECS carry their own client subnet, so one
// file spreads over many networks (dnsperf -E would send one fixed subnet).
import { spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import YAML from 'yaml'
import { addressBytes, encodeQuery, frame, QTYPE } from './dns-wire.mjs'

export const ZONE = 'edge.example.net'
export const STEERED = `api.${ZONE}`

/** mulberry32: seeded, so every run sends the same queries. */
export function prng(seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = a
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

function writeAtomic(file, text) {
  writeFileSync(`${file}.tmp`, text)
  renameSync(`${file}.tmp`, file)
}

/** Targets of a service pool ("tag:na" or an id), in config order. */
function expandPool(pool, targets) {
  const ids = new Set()
  for (const member of pool) {
    if (!member.startsWith('tag:')) {
      ids.add(member)
      continue
    }
    for (const t of targets) if ((t.tags ?? []).includes(member.slice(4))) ids.add(t.id)
  }
  return targets.filter((t) => ids.has(t.id))
}

/** Reads the example from `tree` and writes the copies every server needs under `dir`. */
export function prepareData(tree, dir) {
  mkdirSync(dir, { recursive: true })
  const config = YAML.parse(readFileSync(join(tree, 'steerdns.yaml'), 'utf8'))
  const zoneText = readFileSync(join(tree, 'zones', `${ZONE}.zone`), 'utf8')
  const map = JSON.parse(readFileSync(join(tree, config.map.file), 'utf8'))
  const cityList = readFileSync(join(tree, 'geo-data', 'example-city.txt'), 'utf8')
  const service = config.services.find((s) => s.name === STEERED)
  if (!service) throw new Error(`${STEERED} is not a service in steerdns.yaml`)
  const pool = expandPool(service.pool, config.targets)

  const cityDb = join(dir, 'city.mmdb')
  const built = spawnSync(process.execPath, [join(tree, 'geo-data', 'build.mjs'), join(tree, 'geo-data', 'example-city.txt'), cityDb], { encoding: 'utf8' })
  if (built.status !== 0) throw new Error(`geo-data/build.mjs failed: ${built.stderr}`)

  const zoneFile = join(dir, `${ZONE}.zone`)
  const mapFile = join(dir, 'map.json')
  writeFileSync(zoneFile, zoneText)
  writeFileSync(mapFile, JSON.stringify(map, null, 1))
  const reverseZone = config.zones.find((z) => z.origin !== ZONE)

  const data = { dir, config, zoneText, map, pool, service, cityDb, zoneFile, mapFile }

  data.writeSteerdnsConfig = (port, stateDir) => {
    const c = JSON.parse(JSON.stringify(config))
    c.listen = [`127.0.0.1:${port}`]
    c.zones = [{ origin: ZONE, file: zoneFile }, ...(reverseZone ? [{ ...reverseZone, file: join(tree, reverseZone.file) }] : [])]
    c.guard.rrl = { ...c.guard.rrl, enabled: false }
    c.log = { ...c.log, level: 'warn', queries: false }
    c.map = { ...c.map, file: mapFile }
    c.geo = { ...c.geo, city: cityDb }
    c.api = { ...c.api, listen: '' }
    c.state = { dir: stateDir }
    const file = join(dir, 'steerdns.yaml')
    writeFileSync(file, YAML.stringify(c))
    return file
  }

  data.writeGdnsdConfig = (port) => {
    const gd = join(dir, 'gdnsd')
    mkdirSync(join(gd, 'zones'), { recursive: true })
    mkdirSync(join(gd, 'run'), { recursive: true })
    mkdirSync(join(gd, 'state'), { recursive: true })
    // The default: steerdns's default pool is weighted by capacity; gdnsd's is the first datacenter up.
    const byCapacity = [...pool].sort((a, b) => (b.capacity ?? 0) - (a.capacity ?? 0))
    const poolIds = new Set(pool.map((t) => t.id))
    const nets = map.entries
      .map((e) => [e.prefix, [...e.targets].filter((t) => poolIds.has(t.id)).sort((a, b) => a.score - b.score).map((t) => t.id)])
      .filter(([, ids]) => ids.length > 0)
    const dcmap = pool.map((t) => {
      const v4 = t.ipv4?.length ? `addrs_v4 => [ ${t.ipv4.join(', ')} ]` : ''
      const v6 = t.ipv6?.length ? `addrs_v6 => [ ${t.ipv6.join(', ')} ]` : ''
      return `          ${t.id} => { ${[v4, v6].filter(Boolean).join(', ')} }`
    })
    const text = `# generated by bench/compare: steerdns's example as a gdnsd 3 plugin_geoip map
options => {
  listen => [ 127.0.0.1:${port} ]
  udp_threads => 1
  tcp_threads => 1
  run_dir => ${join(gd, 'run')}
  state_dir => ${join(gd, 'state')}
}
plugins => {
  geoip => {
    maps => {
      steer => {
        geoip2_db => ${cityDb}
        datacenters => [ ${byCapacity.map((t) => t.id).join(', ')} ]
        auto_dc_coords => {
${pool.map((t) => `          ${t.id} => [ ${t.location.lat}, ${t.location.lon} ]`).join('\n')}
        }
        nets => {
${nets.map(([prefix, ids]) => `          ${prefix} => [ ${ids.join(', ')} ]`).join('\n')}
        }
      }
    }
    resources => {
      api => {
        map => steer
        dcmap => {
${dcmap.join('\n')}
        }
      }
    }
  }
}
`
    writeFileSync(join(gd, 'config'), text)
    writeFileSync(join(gd, 'zones', ZONE), `${zoneText}\napi ${service.ttl.max}/${service.ttl.min} DYNA geoip!api\n`)
    return gd
  }

  data.writeKnotConfig = (port) => {
    const kn = join(dir, 'knot')
    mkdirSync(kn, { recursive: true })
    writeFileSync(join(kn, `${ZONE}.zone`), zoneText)
    const text = `# generated by bench/compare
server:
    rundir: "${kn}"
    listen: 127.0.0.1@${port}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
database:
    storage: "${kn}"
log:
  - target: stderr
    any: warning
template:
  - id: default
    storage: "${kn}"
    file: "%s.zone"
zone:
  - domain: ${ZONE}
`
    writeFileSync(join(kn, 'knot.conf'), text)
    return join(kn, 'knot.conf')
  }

  /** Rewrites the zone with `serial` and a TXT marker, and the map with `version` (swap: 198.51.100.0/26 prefers ord-1); no serial: the originals. */
  data.rewriteForReload = (serial, version, swap) => {
    if (serial === undefined) {
      writeAtomic(zoneFile, zoneText)
      writeAtomic(mapFile, JSON.stringify(map, null, 1))
      return
    }
    const zone = zoneText.replace(/\b\d{10}(\s*;\s*serial)/, `${serial}$1`) + `\nreload IN TXT "reload ${serial}"\n`
    writeAtomic(zoneFile, zone)
    const m = JSON.parse(JSON.stringify(map))
    m.version = version
    if (swap) for (const e of m.entries) if (e.prefix === '198.51.100.0/26') e.targets = e.targets.map((t) => ({ ...t, score: t.id === 'ord-1' ? 5 : t.score }))
    writeAtomic(mapFile, JSON.stringify(m, null, 1))
  }
  data.originalSerial = Number(/\b(\d{10})\s*;\s*serial/.exec(zoneText)?.[1])
  data.cityNetworks = cityList
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter(Boolean)
    .map((l) => l.split(/\s+/)[0])
  return data
}

function formatBytes(bytes) {
  if (bytes.length === 4) return [...bytes].join('.')
  const groups = []
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16))
  return groups.join(':')
}

/** A random address inside `prefix`, cut to the source prefix a resolver sends (/24 for IPv4, /56 for IPv6). */
function clientSubnet(prefix, rand) {
  const [address, lenText] = prefix.split('/')
  const len = Number(lenText)
  const bytes = Buffer.from(addressBytes(address))
  for (let bit = len; bit < bytes.length * 8; bit++) if (rand() < 0.5) bytes[bit >> 3] |= 0x80 >> (bit & 7)
  const sourceLen = bytes.length === 4 ? 24 : 56
  for (let bit = sourceLen; bit < bytes.length * 8; bit++) bytes[bit >> 3] &= ~(0x80 >> (bit & 7))
  return `${formatBytes(bytes)}/${sourceLen}`
}

/** Picks from [weight, value] pairs. */
function weighted(pairs, rand) {
  const total = pairs.reduce((s, [w]) => s + w, 0)
  let r = rand() * total
  for (const [w, v] of pairs) if ((r -= w) < 0) return v
  return pairs[pairs.length - 1][1]
}

/**
 * Query sets, each COUNT queries in a seeded random order:
 * - static: www A/AAAA, mail A, ns1 A, apex TXT/NS/MX/SOA (75 %), NXDOMAIN under the zone (25 %);
 * - steered: api A (85 %) and AAAA (15 %) without ECS (the client key is the resolver, 127.0.0.1);
 * - ecs: the same with ECS /24 (IPv4) or /56 (IPv6) subnets: 40 % inside latency-map prefixes,
 *   40 % inside geo networks, 20 % random IPv4 (mostly unknown: the default pool);
 * - mix: 50 % ecs, 15 % steered, 25 % static positive, 10 % NXDOMAIN.
 * Returns { files: { set: path }, subnets: Map of the distinct ECS subnets used -> 'map' | 'geo' | 'unknown' }.
 */
export function writeQuerySets(data, count = 20_000, seed = 7) {
  const rand = prng(seed)
  const mapPrefixes = data.map.entries.map((e) => e.prefix)
  const randomV4 = () => `${1 + Math.floor(rand() * 223)}.${Math.floor(rand() * 256)}.${Math.floor(rand() * 256)}.0/24`
  const subnets = new Map()
  const ecsSubnet = () => {
    const [kind, s] = weighted(
      [
        [40, () => ['map', clientSubnet(mapPrefixes[Math.floor(rand() * mapPrefixes.length)], rand)]],
        [40, () => ['geo', clientSubnet(data.cityNetworks[Math.floor(rand() * data.cityNetworks.length)], rand)]],
        [20, () => ['unknown', randomV4()]],
      ],
      rand,
    )()
    if (!subnets.has(s)) subnets.set(s, kind)
    return s
  }
  const staticPositive = [
    [20, [`www.${ZONE}`, QTYPE.A]],
    [10, [`www.${ZONE}`, QTYPE.AAAA]],
    [10, [`mail.${ZONE}`, QTYPE.A]],
    [5, [`ns1.${ZONE}`, QTYPE.A]],
    [10, [ZONE, QTYPE.TXT]],
    [10, [ZONE, QTYPE.NS]],
    [5, [ZONE, QTYPE.MX]],
    [5, [ZONE, QTYPE.SOA]],
  ]
  const nx = () => [`n${Math.floor(rand() * 1e9).toString(36)}.${ZONE}`, QTYPE.A]
  const steeredType = () => (rand() < 0.85 ? QTYPE.A : QTYPE.AAAA)
  const kinds = {
    positive: () => weighted(staticPositive, rand),
    nxdomain: nx,
    steered: () => [STEERED, steeredType()],
    ecs: () => [STEERED, steeredType(), ecsSubnet()],
  }
  const recipes = {
    static: [[75, 'positive'], [25, 'nxdomain']],
    steered: [[100, 'steered']],
    ecs: [[100, 'ecs']],
    mix: [[50, 'ecs'], [15, 'steered'], [25, 'positive'], [10, 'nxdomain']],
  }
  const files = {}
  for (const [set, recipe] of Object.entries(recipes)) {
    const chunks = []
    for (let i = 0; i < count; i++) {
      const [name, qtype, ecs] = kinds[weighted(recipe, rand)]()
      chunks.push(frame(encodeQuery(0, name, qtype, ecs)))
    }
    files[set] = join(data.dir, `queries-${set}.bin`)
    writeFileSync(files[set], Buffer.concat(chunks))
  }
  return { files, subnets }
}
