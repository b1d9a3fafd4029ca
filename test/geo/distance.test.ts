// Great-circle distance against published city-pair distances.
import t from 'tap'
import { EARTH_MEAN_RADIUS_KM, greatCircleKm } from '../../src/geo/index.js'

const SEATTLE = [47.6062, -122.3321] as const
const LONDON = [51.5074, -0.1278] as const
const SYDNEY = [-33.8688, 151.2093] as const
const NEW_YORK = [40.7128, -74.006] as const
const TOKYO = [35.6762, 139.6503] as const
const SAO_PAULO = [-23.5505, -46.6333] as const

t.test('known city pairs within 1%', async (t) => {
  const cases: [string, readonly [number, number], readonly [number, number], number][] = [
    ['Seattle-London', SEATTLE, LONDON, 7700],
    ['New York-London', NEW_YORK, LONDON, 5570],
    ['London-Sydney', LONDON, SYDNEY, 16990],
    ['Tokyo-Sydney', TOKYO, SYDNEY, 7820],
    ['New York-São Paulo', NEW_YORK, SAO_PAULO, 7680],
  ]
  for (const [name, a, b, km] of cases) {
    const got = greatCircleKm(a[0], a[1], b[0], b[1])
    t.ok(Math.abs(got - km) / km < 0.01, `${name}: ${got.toFixed(0)} km, expected about ${km}`)
    t.equal(greatCircleKm(b[0], b[1], a[0], a[1]), got, `${name} is symmetric`)
  }
})

t.test('edge cases: same point, poles, antipodes, the date line', async (t) => {
  t.equal(greatCircleKm(...LONDON, ...LONDON), 0)
  const halfCircumference = Math.PI * EARTH_MEAN_RADIUS_KM
  t.ok(Math.abs(greatCircleKm(90, 0, -90, 0) - halfCircumference) < 1e-6, 'pole to pole')
  t.ok(Math.abs(greatCircleKm(0, 0, 0, 180) - halfCircumference) < 1e-6, 'antipodes on the equator')
  t.ok(Math.abs(greatCircleKm(0, 179.5, 0, -179.5) - greatCircleKm(0, 0, 0, 1)) < 1e-9, 'across the date line is short')
  t.ok(Number.isNaN(greatCircleKm(Number.NaN, 0, 0, 0)))
})
