#!/usr/bin/env node
// Builds a MaxMind DB (GeoIP2 City layout) from a network list:
//   npm run build && node geo-data/build.mjs geo-data/example-city.txt geo-data/example-city.mmdb
// Prints every problem as file:line: message and exits 1 without writing anything.
// Uses the compiled geo/ module, so it runs the same code as the server and the tests.
import process from 'node:process'
import { buildGeoDatabase, formatGeoListProblem } from '../dist/geo/index.js'

const [listFile, outFile] = process.argv.slice(2)
if (listFile === undefined || outFile === undefined) {
  process.stderr.write('usage: node geo-data/build.mjs LIST.txt OUT.mmdb\n')
  process.exit(2)
}
const { networks, problems } = await buildGeoDatabase(listFile, outFile)
for (const problem of problems) process.stderr.write(`${formatGeoListProblem(problem)}\n`)
if (problems.length > 0) process.exit(1)
process.stdout.write(`${outFile}: ${networks} networks\n`)
