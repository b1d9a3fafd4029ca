/**
 * The last published state a node applied, kept in its state directory so a
 * restart while the shared store is unreachable serves the same map,
 * overrides and target states from the first query: `map.json` (the map,
 * `--map` JSON, also what `steerdns explain` reads offline) and
 * `published.json` (everything else). Both are written atomically; the map
 * first, so published.json never names a map older than map.json holds.
 */
import { join } from 'node:path'
import { readFileIfExists, writeFileAtomic } from '../state/index.js'
import type { StateDir } from '../state/index.js'
import { formatMapJson } from '../steering/index.js'
import type { LatencyMap, SteeringSetup } from '../steering/index.js'
import { STATE_MAP_FILE } from './control-plane.js'
import type { PublishedState } from './published-state.js'
import { PUBLISHED_FORMAT } from './published-state.js'

export interface FollowerCache {
  /** The saved state with its map (when one was saved); undefined when nothing was saved. Throws StateError for damage. */
  load(): Promise<PublishedState | undefined>
  /** Saves `state` (its `map` field is ignored); `map` when it changed since the last save. */
  save(state: PublishedState, map: LatencyMap | undefined): Promise<void>
}

export function createFollowerCache(stateDir: StateDir, setup: SteeringSetup): FollowerCache {
  const document = stateDir.document<Omit<PublishedState, 'map'>>('published')
  const mapFile = join(stateDir.dir, STATE_MAP_FILE)
  const targetId = (index: number): string => setup.targets[index]?.id ?? `#${index}`
  let writes: Promise<unknown> = Promise.resolve()
  return {
    async load() {
      const saved = await document.read()
      if (!saved || saved.format !== PUBLISHED_FORMAT) return undefined
      const mapText = await readFileIfExists(mapFile)
      return mapText === undefined ? saved : { ...saved, map: JSON.parse(mapText.toString('utf8')) as unknown }
    },
    save(state, map) {
      const rest: Omit<PublishedState, 'map'> = {
        format: state.format,
        version: state.version,
        mapVersion: state.mapVersion,
        mapSource: state.mapSource,
        operator: state.operator,
        operatorRev: state.operatorRev,
        health: state.health,
      }
      const run = writes.then(async () => {
        if (map) await writeFileAtomic(mapFile, formatMapJson(map, targetId))
        await document.write(rest)
      })
      writes = run.catch(() => undefined)
      return run
    },
  }
}
