// Prints the required and total passes of an http-cache-tests results file,
// and each required test that did not pass; exits 1 below a minimum.
//
//   node summary.mjs SUITE-DIR RESULTS.json [MIN-REQUIRED]
import fs from 'fs'
import path from 'path'

const [dir, resultsFile, min = '0'] = process.argv.slice(2)
const { default: suites } = await import(path.resolve(dir, 'tests/index.mjs'))
const surrogate = path.resolve(dir, 'tests/surrogate-control.mjs')
if (fs.existsSync(surrogate)) suites.push((await import(surrogate)).default)
const results = JSON.parse(fs.readFileSync(resultsFile))

let required = 0; let passed = 0; let all = 0; let allPassed = 0
const failed = []
for (const suite of suites) {
  for (const test of suite.tests) {
    if (test.browser_only) continue
    all++
    const result = results[test.id]
    if (result === true) allPassed++
    if ((test.kind && test.kind !== 'required') || test.required === false) continue
    required++
    if (result === true) passed++
    else failed.push(`  ${test.id}: ${JSON.stringify(result)}`)
  }
}
console.log(`required tests passed: ${passed}/${required} (all tests: ${allPassed}/${all})`)
if (failed.length) console.log('required tests not passed:\n' + failed.join('\n'))
if (passed < Number(min)) {
  console.error(`fewer than ${min} required tests passed`)
  process.exit(1)
}
