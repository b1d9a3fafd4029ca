/* global document, window, sessionStorage, location, history, fetch, URLSearchParams, setTimeout, clearTimeout */
/**
 * The steerdns status page: plain DOM, no framework, no build step. Reads
 * the API with a bearer token taken from the URL fragment (/ui#token=…, which
 * browsers never send to the server) or the form, kept in sessionStorage for
 * this tab only, and re-reads every few seconds while the tab is visible.
 * Data from the server only ever reaches the page as text (textContent),
 * never as markup.
 */

const TOKEN_KEY = 'steerdns.token'
const REFRESH_MS = 5000
/** Above this many map entries the world view is skipped: the export would be megabytes every time the map changes. */
const WORLD_MAX_ENTRIES = 20000
/** Prefixes listed under each target in the world view. */
const SAMPLE_PREFIXES = 8
const SVG_NS = 'http://www.w3.org/2000/svg'

const state = {
  /** @type {string | undefined} */
  token: undefined,
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  timer: undefined,
  /** 'unknown' until asked once; 'missing' when the server has no such route (then it is not asked again). */
  decisions: 'unknown',
  decisionsError: '',
  /** Map version and entry count of the export last counted. */
  exportKey: '',
  /** @type {Map<string, { v4: number, v6: number, prefixes: string[] }> | undefined} */
  firstChoice: undefined,
  worldKey: '',
  running: false,
}

const $ = (id) => {
  const node = document.getElementById(id)
  if (!node) throw new Error(`status page: #${id} is missing`)
  return node
}

/**
 * Builds an element: `attrs` are attributes (class, data-*, aria-*), the
 * rest children (strings become text nodes).
 */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag)
  for (const [name, value] of Object.entries(attrs)) if (value !== undefined && value !== null && value !== false) node.setAttribute(name, String(value))
  for (const child of children) if (child !== undefined && child !== null) node.append(child)
  return node
}

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag)
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value))
  for (const child of children) node.append(child)
  return node
}

class ApiError extends Error {
  constructor(status, message) {
    super(message)
    this.status = status
  }
}

/** GET a JSON route with the token; ApiError with the server's own message on a non-2xx. */
async function api(path) {
  let res
  try {
    res = await fetch(path, { headers: { authorization: `Bearer ${state.token}`, accept: 'application/json' }, cache: 'no-store' })
  } catch (err) {
    throw new ApiError(0, `cannot reach the server (${err instanceof Error ? err.message : String(err)})`)
  }
  if (!res.ok) {
    let message = `${res.status} ${res.statusText}`
    try {
      const body = await res.json()
      if (body && typeof body.message === 'string') message = body.message
    } catch {
      // Not JSON (a proxy's page): the status line says enough.
    }
    throw new ApiError(res.status, message)
  }
  return res.json()
}

// ---- formatting

const number = (n) => (typeof n === 'number' && Number.isFinite(n) ? n.toLocaleString('en') : '—')

function duration(sec) {
  if (typeof sec !== 'number' || !Number.isFinite(sec)) return 'unknown'
  const s = Math.max(0, Math.round(sec))
  if (s < 120) return `${s} s`
  const min = Math.round(s / 60)
  if (min < 120) return `${min} min`
  const h = Math.floor(min / 60)
  if (h < 48) return `${h} h ${min % 60} min`
  return `${Math.floor(h / 24)} d ${h % 24} h`
}

function time(iso) {
  if (typeof iso !== 'string' || iso === '') return '—'
  const date = new Date(iso)
  if (Number.isNaN(date.getTime())) return iso
  return el('time', { datetime: iso, title: iso }, date.toLocaleString('en-GB', { dateStyle: 'medium', timeStyle: 'medium' }))
}

/** A state as a word in a badge: the word carries the meaning, the color only repeats it. */
function badge(word, kind) {
  return el('span', { class: `badge badge-${kind}` }, word)
}

function healthKind(health) {
  return health === 'up' ? 'good' : health === 'down' ? 'bad' : health === 'degraded' ? 'warn' : 'neutral'
}

function adminKind(admin) {
  return admin === 'up' ? 'good' : admin === 'down' ? 'bad' : 'warn'
}

function cell(...children) {
  return el('td', {}, ...children)
}

function emptyRow(columns, text) {
  return el('tr', { class: 'empty' }, el('td', { colspan: columns }, text))
}

// ---- sections

function renderTargets(targets) {
  const body = document.querySelector('#targets tbody')
  const rows = targets.map((t) => {
    const admin = t.admin ?? { state: 'up' }
    const adminDetail = [admin.reason ? `“${admin.reason}”` : '', admin.by ? `by ${admin.by}` : '', admin.expiresAt ? `until ${new Date(admin.expiresAt).toLocaleString('en-GB')}` : '']
      .filter(Boolean)
      .join(', ')
    const counted = state.firstChoice?.get(t.id)
    const load = typeof t.load === 'number' ? t.load : undefined
    const loadCell =
      load === undefined
        ? cell(el('span', { class: 'muted' }, 'not reported'))
        : cell(el('meter', { min: 0, max: 1, low: 0.7, high: 0.9, optimum: 0.3, value: Math.min(1, load), 'aria-hidden': 'true' }), ` ${Math.round(load * 100)} %`)
    return el(
      'tr',
      { 'data-target': t.id, 'data-admin': admin.state, 'data-health': t.health },
      el('th', { scope: 'row' }, t.id),
      cell(t.site || '—'),
      cell(badge(t.health, healthKind(t.health))),
      cell(badge(admin.state, adminKind(admin.state)), adminDetail ? el('span', { class: 'detail' }, ` ${adminDetail}`) : undefined),
      cell(t.serving ? badge('serving', 'good') : badge('not serving', 'bad')),
      el('td', { class: 'num' }, number(t.weight), t.weight !== t.capacity ? el('span', { class: 'detail' }, ` (capacity ${number(t.capacity)})`) : undefined),
      loadCell,
      el('td', { class: 'num' }, counted ? number(counted.v4 + counted.v6) : state.firstChoice ? '0' : '—'),
    )
  })
  body.replaceChildren(...(rows.length > 0 ? rows : [emptyRow(8, 'No targets configured.')]))
}

function renderMap(map) {
  const list = $('map-summary')
  const coverage = map.coverage ?? { ipv4Entries: 0, ipv6Entries: 0, staleEntries: 0 }
  const stalePct = map.entries > 0 ? ` (${Math.round((coverage.staleEntries / map.entries) * 100)} %)` : ''
  const facts = [
    ['Version', number(map.version)],
    ['Source', map.source],
    ['Entries', `${number(map.entries)}: ${number(coverage.ipv4Entries)} IPv4, ${number(coverage.ipv6Entries)} IPv6`],
    ['Stale entries', coverage.staleEntries > 0 ? badge(`${number(coverage.staleEntries)} stale${stalePct}`, 'warn') : badge('none stale', 'good')],
    ['Generated', map.generatedAt ? time(map.generatedAt) : 'unknown'],
    ['Age', duration(map.ageSec)],
  ]
  list.replaceChildren(...facts.flatMap(([term, value]) => [el('dt', {}, term), el('dd', {}, value)]))
}

/** Counts each map entry under its first-choice target (the map's ranking; pins and serving state are not applied). */
async function countFirstChoices(map) {
  if (map.entries > WORLD_MAX_ENTRIES) {
    state.firstChoice = undefined
    state.exportKey = `too-large:${map.entries}`
    return
  }
  const key = `${map.version}:${map.entries}:${map.generatedAt ?? ''}`
  if (key === state.exportKey) return
  const exported = await api('/v1/map/export')
  const counts = new Map()
  for (const entry of Array.isArray(exported.entries) ? exported.entries : []) {
    const first = entry.targets?.[0]?.id
    if (typeof first !== 'string') continue
    let count = counts.get(first)
    if (!count) counts.set(first, (count = { v4: 0, v6: 0, prefixes: [] }))
    if (String(entry.prefix).includes(':')) count.v6++
    else count.v4++
    if (count.prefixes.length < SAMPLE_PREFIXES) count.prefixes.push(String(entry.prefix))
  }
  state.firstChoice = counts
  state.exportKey = key
}

/** Coordinates when the API gives them (`location: { lat, lon }`); GET /v1/targets has none today. */
function locationOf(t) {
  const lat = t.location?.lat ?? t.latitude
  const lon = t.location?.lon ?? t.longitude
  return typeof lat === 'number' && typeof lon === 'number' ? { lat, lon } : undefined
}

function renderWorld(targets, map) {
  const key = JSON.stringify([state.exportKey, targets.map((t) => [t.id, t.serving, t.health, t.admin?.state, locationOf(t)])])
  if (key === state.worldKey) return
  state.worldKey = key
  const note = $('world-note')
  const world = $('world')
  if (!state.firstChoice) {
    note.textContent = `The map has ${number(map.entries)} entries, more than the ${number(WORLD_MAX_ENTRIES)} this page counts; use "steerdns state" or GET /v1/map/export.`
    world.replaceChildren()
    return
  }
  const total = [...state.firstChoice.values()].reduce((sum, c) => sum + c.v4 + c.v6, 0)
  const located = targets.filter((t) => locationOf(t))
  note.textContent =
    `${number(total)} map ${total === 1 ? 'entry' : 'entries'} by first-choice target. ` +
    'A target that is not serving loses its share to the next target in each ranking. ' +
    (located.length > 0 ? '' : 'Targets carry no coordinates in GET /v1/targets, so they are shown as a grid.')
  const tiles = el(
    'ul',
    { class: 'tiles' },
    ...targets.map((t) => {
      const count = state.firstChoice.get(t.id) ?? { v4: 0, v6: 0, prefixes: [] }
      const n = count.v4 + count.v6
      return el(
        'li',
        { class: `tile${t.serving ? '' : ' tile-out'}`, 'data-target': t.id },
        el('h3', {}, t.id, ' ', el('span', { class: 'detail' }, t.site || '')),
        el('p', { class: 'count' }, `${number(n)} ${n === 1 ? 'prefix' : 'prefixes'}`, el('span', { class: 'detail' }, ` (${number(count.v4)} IPv4, ${number(count.v6)} IPv6)`)),
        el('meter', { min: 0, max: Math.max(1, total), value: n, 'aria-label': `${t.id}: share of map entries` }),
        t.serving ? undefined : el('p', {}, badge('not serving', 'bad')),
        count.prefixes.length > 0
          ? el('details', {}, el('summary', {}, n > count.prefixes.length ? `First ${count.prefixes.length} prefixes` : 'Prefixes'), el('ul', { class: 'prefixes' }, ...count.prefixes.map((p) => el('li', {}, el('code', {}, p)))))
          : undefined,
      )
    }),
  )
  world.replaceChildren(...(located.length > 0 ? [worldMap(located, total)] : []), tiles)
}

/**
 * Continents as coarse hand-drawn outlines ([lon, lat] points): enough to
 * tell where a site is at a glance, small enough to ship inline with no
 * map data files or tiles.
 */
const LAND = [
  // North America
  [[-168, 65], [-160, 71], [-140, 70], [-120, 70], [-95, 72], [-80, 73], [-65, 60], [-55, 52], [-67, 45], [-70, 42], [-76, 35], [-81, 31], [-80, 25], [-82, 27], [-84, 30], [-90, 29], [-97, 27], [-97, 22], [-92, 18], [-88, 21], [-87, 16], [-83, 10], [-78, 8], [-80, 7], [-86, 12], [-92, 14], [-105, 20], [-110, 24], [-112, 30], [-115, 30], [-118, 34], [-124, 40], [-124, 48], [-130, 55], [-140, 60], [-152, 59], [-165, 60]],
  // Greenland
  [[-73, 78], [-60, 82], [-30, 83], [-20, 75], [-40, 65], [-45, 60], [-52, 65], [-57, 73]],
  // South America
  [[-78, 8], [-72, 12], [-62, 10], [-52, 5], [-35, -5], [-39, -13], [-41, -22], [-48, -26], [-58, -35], [-62, -40], [-66, -46], [-68, -53], [-73, -52], [-75, -42], [-72, -30], [-70, -18], [-76, -14], [-81, -5], [-80, 1], [-77, 7]],
  // Eurasia
  [[-10, 36], [-9, 43], [-2, 44], [-5, 48], [2, 51], [8, 54], [10, 58], [5, 62], [15, 69], [28, 71], [40, 67], [60, 69], [80, 73], [105, 78], [140, 72], [170, 70], [180, 66], [178, 62], [163, 60], [156, 51], [142, 54], [135, 44], [129, 35], [122, 40], [121, 31], [117, 24], [108, 21], [106, 10], [100, 13], [104, 1], [98, 8], [97, 17], [92, 22], [80, 15], [77, 8], [72, 20], [67, 25], [57, 25], [56, 22], [52, 17], [43, 13], [35, 28], [34, 31], [27, 37], [26, 41], [23, 36], [19, 40], [13, 45], [16, 38], [12, 44], [8, 44], [3, 43], [-5, 36]],
  // Great Britain, Japan
  [[-5, 50], [1, 51], [1, 53], [-3, 56], [-2, 58], [-6, 58], [-5, 55], [-3, 54]],
  [[130, 31], [135, 34], [140, 35], [142, 40], [142, 45], [140, 42], [139, 38], [135, 35], [130, 34]],
  // Africa
  [[-17, 15], [-17, 21], [-10, 30], [-6, 35], [10, 37], [20, 32], [32, 31], [35, 28], [43, 12], [51, 12], [44, -2], [40, -10], [40, -16], [35, -24], [32, -29], [26, -34], [20, -35], [18, -29], [12, -17], [13, -8], [9, -1], [9, 4], [4, 6], [-8, 4], [-13, 8]],
  // Australia
  [[114, -22], [122, -18], [130, -12], [137, -12], [141, -11], [146, -19], [153, -26], [151, -33], [146, -39], [140, -38], [135, -34], [131, -31], [115, -34]],
]

/** Equirectangular plot: x = longitude, y = latitude; a circle's area grows with the target's share. */
function worldMap(targets, total) {
  const W = 720
  const H = 360
  const x = (lon) => ((lon + 180) / 360) * W
  const y = (lat) => ((90 - lat) / 180) * H
  const grid = []
  for (let lon = -150; lon <= 150; lon += 30) grid.push(svg('line', { x1: x(lon), y1: 0, x2: x(lon), y2: H, class: lon === 0 ? 'axis' : 'grid' }))
  for (let lat = -60; lat <= 60; lat += 30) grid.push(svg('line', { x1: 0, y1: y(lat), x2: W, y2: y(lat), class: lat === 0 ? 'axis' : 'grid' }))
  const land = LAND.map((outline) => svg('polygon', { class: 'land', points: outline.map(([lon, lat]) => `${x(lon).toFixed(1)},${y(lat).toFixed(1)}`).join(' ') }))
  const marks = targets.map((t) => {
    const at = locationOf(t)
    const count = state.firstChoice?.get(t.id)
    const n = count ? count.v4 + count.v6 : 0
    const r = 4 + 20 * Math.sqrt(total > 0 ? n / total : 0)
    const title = svg('title')
    title.textContent = `${t.id} (${t.site || 'no site'}): ${n} prefixes${t.serving ? '' : ', not serving'}`
    const label = svg('text', { x: x(at.lon) + r + 3, y: y(at.lat) + 4 })
    label.textContent = `${t.id} ${n}`
    return svg('g', { class: t.serving ? 'site' : 'site site-out' }, title, svg('circle', { cx: x(at.lon), cy: y(at.lat), r }), label)
  })
  const title = svg('title')
  title.textContent = 'Targets on a world map, sized by the map entries steered to each'
  return svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', class: 'worldmap' }, title, svg('rect', { x: 0, y: 0, width: W, height: H, class: 'sea' }), ...land, ...grid, ...marks)
}

function renderOverrides(overrides) {
  const body = document.querySelector('#overrides tbody')
  const rows = overrides.map((o) =>
    el(
      'tr',
      { 'data-override': o.id },
      el('th', { scope: 'row' }, el('code', {}, o.id)),
      cell(o.kind),
      cell(o.kind === 'pin' ? el('code', {}, o.prefix ?? '?') : `target ${o.target ?? '?'}`),
      cell(o.kind === 'pin' ? `answer ${(o.targets ?? []).join(', then ')}` : `${o.biasMs > 0 ? '+' : ''}${o.biasMs} ms on its score`),
      cell(o.reason),
      cell(o.expiresAt ? time(o.expiresAt) : 'never'),
      cell(o.createdBy, el('br'), el('span', { class: 'detail' }, time(o.createdAt))),
    ),
  )
  body.replaceChildren(...(rows.length > 0 ? rows : [emptyRow(7, 'No overrides in force: the map and health decide.')]))
}

function renderAudit(entries) {
  const body = document.querySelector('#audit tbody')
  // The API lists newest last; people read newest first.
  const rows = [...entries].reverse().map((a) => el('tr', {}, cell(time(a.at)), cell(a.by, a.address ? el('span', { class: 'detail' }, ` from ${a.address}`) : undefined), cell(a.action), cell(el('code', {}, a.subject)), cell(a.reason ?? '—')))
  body.replaceChildren(...(rows.length > 0 ? rows : [emptyRow(5, 'No changes recorded.')]))
}

/** Recent decisions, when the server keeps them (GET /v1/decisions); otherwise a note, asked once per page load. */
async function loadDecisions() {
  if (state.decisions === 'missing') return undefined
  try {
    const decisions = await api('/v1/decisions?limit=20')
    state.decisions = 'available'
    return Array.isArray(decisions) ? decisions : (decisions.decisions ?? [])
  } catch (err) {
    // Optional: whatever goes wrong here must not hide the rest of the page.
    if (err instanceof ApiError && (err.status === 404 || err.status === 405)) state.decisions = 'missing'
    else state.decisionsError = err instanceof Error ? err.message : String(err)
    return undefined
  }
}

function renderDecisions(decisions) {
  const note = $('decisions-note')
  const table = $('decisions')
  if (decisions === undefined) {
    note.textContent =
      state.decisions === 'missing'
        ? 'This server does not publish its recent decisions (GET /v1/decisions is not there). Explain one decision below, or use "steerdns explain".'
        : `Recent decisions could not be read: ${state.decisionsError}.`
    table.hidden = true
    return
  }
  note.textContent = decisions.length === 0 ? 'No decisions recorded yet.' : `The last ${decisions.length} steered answers, newest first.`
  table.hidden = decisions.length === 0
  const rows = decisions.map((d) => {
    const trace = d.trace ?? {}
    const answer = Array.isArray(d.answerTargets) ? d.answerTargets.join(', ') : Array.isArray(d.answer) ? d.answer.join(', ') : '—'
    return el(
      'tr',
      {},
      cell(time(d.at)),
      cell(d.name ?? '—'),
      cell(el('code', {}, d.key ?? d.client ?? trace.key ?? '—')),
      cell(answer),
      cell(d.rule ?? trace.rule ?? '—'),
      el('td', { class: 'num' }, typeof d.scopePrefixLen === 'number' ? `/${d.scopePrefixLen}` : '—'),
      el('td', { class: 'num' }, typeof d.ttlSec === 'number' ? `${d.ttlSec} s` : '—'),
    )
  })
  document.querySelector('#decisions tbody').replaceChildren(...rows)
}

function formatExplanation(e) {
  const t = e.trace ?? {}
  const targets = e.answerTargets ?? []
  const lines = [
    `answer: ${e.answer.length > 0 ? e.answer.map((a, i) => `${a} (${targets[i] ?? '?'})`).join(', ') : `none (${t.rule ?? '?'})`}`,
    `client: ${t.key ?? '?'} (${t.keySource === 'ecs' ? 'ECS' : 'resolver address'})`,
    `rule:   ${t.rule ?? '?'}${t.matched ? `, matched ${t.matched}${t.mapStale ? ' (stale)' : ''}` : ''}${t.mapVersion !== undefined ? `, map version ${t.mapVersion}` : ''}`,
    `ttl:    ${e.ttlSec} s${t.ttlReason ? ` (${t.ttlReason})` : ''}`,
    `scope:  /${e.scopePrefixLen}${t.scopeReason ? ` (${t.scopeReason})` : ''}`,
  ]
  for (const c of Array.isArray(t.candidates) ? t.candidates : []) {
    const measure = c.scoreMs !== undefined ? `${c.scoreMs} ms, ${c.samples ?? 0} samples` : c.distanceKm !== undefined ? `${c.distanceKm} km` : ''
    lines.push(`  ${String(c.id).padEnd(10)} ${measure.padEnd(24)} ${c.serving ? 'serving' : 'not serving'}`)
  }
  return lines.join('\n')
}

// ---- the loop

function setStatus(text, kind = 'ok') {
  const status = $('status')
  // Only real changes: a live region re-announced every few seconds is noise to a screen reader.
  if (status.textContent !== text) status.textContent = text
  status.dataset.kind = kind
}

function showLogin(reason) {
  window.clearTimeout(state.timer)
  $('content').hidden = true
  $('login').hidden = false
  $('login-reason').textContent = reason
  setStatus(reason ? 'Waiting for a token the API accepts.' : 'Waiting for an API token.', reason ? 'error' : 'ok')
  $('token').focus()
}

function schedule() {
  window.clearTimeout(state.timer)
  if (document.visibilityState !== 'hidden' && state.token) state.timer = setTimeout(refresh, REFRESH_MS)
}

async function refresh() {
  clearTimeout(state.timer)
  if (!state.token) return showLogin('')
  if (state.running) return
  state.running = true
  try {
    const [targets, map, overrides, audit, decisions] = await Promise.all([api('/v1/targets'), api('/v1/map'), api('/v1/overrides'), api('/v1/audit?limit=20'), loadDecisions()])
    await countFirstChoices(map)
    $('login').hidden = true
    $('content').hidden = false
    renderTargets(targets)
    renderMap(map)
    renderWorld(targets, map)
    renderOverrides(overrides)
    renderDecisions(decisions)
    renderAudit(audit)
    $('content').dataset.state = 'ready'
    setStatus(`Live: ${targets.length} targets, map version ${map.version}; refreshed every ${REFRESH_MS / 1000} s (last ${new Date().toLocaleTimeString('en-GB')}).`)
  } catch (err) {
    if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
      showLogin(`The API refused the token (${err.status}): ${err.message}`)
      return
    }
    setStatus(`Refresh failed: ${err instanceof Error ? err.message : String(err)}. Retrying in ${REFRESH_MS / 1000} s.`, 'error')
  } finally {
    state.running = false
  }
  schedule()
}

function start() {
  // The fragment never reaches the server; take the token out of the address bar so it is not bookmarked or shared.
  const fragment = new URLSearchParams(location.hash.slice(1))
  const fromUrl = fragment.get('token')
  if (fromUrl) {
    sessionStorage.setItem(TOKEN_KEY, fromUrl)
    history.replaceState(null, '', location.pathname + location.search)
  }
  state.token = sessionStorage.getItem(TOKEN_KEY) ?? undefined

  $('login').addEventListener('submit', (event) => {
    event.preventDefault()
    const input = $('token')
    const token = input.value.trim()
    if (!token) return
    input.value = ''
    sessionStorage.setItem(TOKEN_KEY, token)
    state.token = token
    void refresh()
  })
  $('forget').addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY)
    state.token = undefined
    showLogin('')
  })
  $('refresh').addEventListener('click', () => void refresh())
  $('explain').addEventListener('submit', async (event) => {
    event.preventDefault()
    const out = $('explain-result')
    const query = new URLSearchParams({ name: $('explain-name').value.trim(), client: $('explain-client').value.trim() })
    out.textContent = 'Asking…'
    try {
      out.textContent = formatExplanation(await api(`/v1/explain?${query}`))
    } catch (err) {
      out.textContent = `Refused: ${err instanceof Error ? err.message : String(err)}`
    }
  })
  // A hidden tab stops polling (and spending the token's rate limit); it catches up when shown.
  document.addEventListener('visibilitychange', () => (document.visibilityState === 'hidden' ? clearTimeout(state.timer) : void refresh()))
  void refresh()
}

start()
