// Reads the results of http-cache-tests runs (the JSON its command-line client prints)
// and classifies every test as cache-tests.fyi does, with the suite's own code
// (lib/display.mjs determineTestResult: a test whose dependency did not pass counts as
// "dependency failed", not as passed or failed). Used by bench/cache-conformance.sh.
//
//   node report.mjs SUITE_DIR summary  NAME=RESULTS.json...
//   node report.mjs SUITE_DIR failures NAME=RESULTS.json...
//
// SUITE_DIR is the installed package (node_modules/http-cache-tests). summary prints a
// Markdown table of counts per cache, and the same counts for the results the package
// ships (those cache-tests.fyi showed for the version it was released with); failures
// prints, per cache, every required test that failed, could not be set up, or did not
// run because a test it depends on did not pass, then every optional test that was not
// optimal, each with its id, its description and the suite's reason.
import fs from 'fs'
import path from 'path'
import { pathToFileURL } from 'url'

const [suiteDir, mode, ...runs] = process.argv.slice(2)
if (!suiteDir || !['summary', 'failures'].includes(mode) || runs.length === 0) {
  console.error('usage: node report.mjs SUITE_DIR summary|failures NAME=RESULTS.json...')
  process.exit(2)
}

const load = rel => import(pathToFileURL(path.join(suiteDir, rel)).href)
const display = await load('lib/display.mjs')
const suites = (await load('tests/index.mjs')).default
// The command-line client and cache-tests.fyi both add the Surrogate-Control tests.
suites.push((await load('tests/surrogate-control.mjs')).default)
const published = (await load('results/index.mjs')).default

// The tests a cache (not a browser) is given, in the suite's order.
const tests = []
for (const suite of suites) {
  for (const test of suite.tests) {
    if (test.browser_only === true) continue
    tests.push({ ...test, suite: suite.name })
  }
}

// The suite's result symbols (the third element of its result types) by class.
const CLASS = {
  '✅': 'pass',
  '⛔️': 'fail',
  '⚠️': 'optional_fail',
  Y: 'yes',
  N: 'no',
  '🔹': 'setup_fail',
  '⁉️': 'harness_fail',
  '⚪️': 'dependency_fail',
  '↻': 'retry',
  '-': 'untested'
}

function classify (results) {
  const out = []
  for (const test of tests) {
    const symbol = display.determineTestResult(suites, test.id, results)[2]
    const cls = CLASS[symbol]
    if (cls === undefined) throw new Error(`unknown result symbol ${symbol} for ${test.id}`)
    const kind = test.kind === undefined ? 'required' : test.kind
    const raw = results[test.id]
    const reason = Array.isArray(raw) ? raw.slice(1).join(' ') : ''
    out.push({ test, kind, cls, symbol, reason })
  }
  return out
}

function count (rows) {
  const c = {}
  for (const r of rows) {
    const k = `${r.kind}:${r.cls}`
    c[k] = (c[k] || 0) + 1
  }
  const n = k => c[k] || 0
  return {
    passed: n('required:pass'),
    failed: n('required:fail'),
    depFailed: n('required:dependency_fail'),
    notSetUp: n('required:setup_fail') + n('required:harness_fail') + n('required:retry'),
    untested: n('required:untested'),
    optPassed: n('optimal:pass'),
    optFailed: n('optimal:optional_fail'),
    optOther: n('optimal:dependency_fail') + n('optimal:setup_fail') + n('optimal:harness_fail') + n('optimal:retry') + n('optimal:untested'),
    yes: n('check:yes'),
    no: n('check:no'),
    checkOther: n('check:dependency_fail') + n('check:setup_fail') + n('check:harness_fail') + n('check:retry') + n('check:untested')
  }
}

function readResults (file) {
  const text = fs.readFileSync(file, 'utf8')
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new Error(`${file}: not the client's JSON results: ${err.message}`)
  }
}

const measured = runs.map(arg => {
  const i = arg.indexOf('=')
  if (i <= 0) throw new Error(`expected NAME=FILE, got ${arg}`)
  return { name: arg.slice(0, i), rows: classify(readResults(arg.slice(i + 1))) }
})

if (mode === 'summary') {
  const required = tests.filter(t => t.kind === undefined || t.kind === 'required').length
  const optimal = tests.filter(t => t.kind === 'optimal').length
  const checks = tests.filter(t => t.kind === 'check').length
  console.log(`http-cache-tests runs ${tests.length} tests against a shared cache: ${required} required, ${optimal} optional (optimal), ${checks} behaviour checks.`)
  console.log('')
  console.log('| cache | required: passed | required: failed | required: not run, a dependency failed | required: setup failed, harness error or retry | optional: passed | optional: not optimal | optional: other | checks: yes / no / other |')
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|')
  const line = (name, c) => console.log(`| ${name} | ${c.passed} | ${c.failed} | ${c.depFailed} | ${c.notSetUp} | ${c.optPassed} | ${c.optFailed} | ${c.optOther} | ${c.yes} / ${c.no} / ${c.checkOther} |`)
  for (const m of measured) line(m.name, count(m.rows))
  const shipped = {}
  for (const p of published) {
    if (p.type !== 'rev-proxy' || !['nginx', 'Varnish'].includes(p.name)) continue
    const rows = classify(readResults(path.join(suiteDir, 'results', p.file)))
    shipped[p.name.toLowerCase()] = { label: `${p.name} ${p.version}`, rows }
    line(`${p.name} ${p.version} (results shipped with the suite)`, count(rows))
  }
  // Where a measured cache is one the suite ships results for, the required tests whose
  // result differs from those results, so that a difference in the counts is explained.
  for (const m of measured) {
    const s = shipped[m.name.toLowerCase()]
    if (s === undefined) continue
    const was = new Map(s.rows.map(r => [r.test.id, r]))
    const diff = m.rows.filter(r => r.kind === 'required' && was.has(r.test.id) && was.get(r.test.id).cls !== r.cls)
    console.log('')
    console.log(`${m.name}: ${diff.length} required tests differ from the results shipped for ${s.label}${diff.length ? ':' : '.'}`)
    if (diff.length) console.log('')
    for (const r of diff) {
      console.log(`- \`${r.test.id}\` ${was.get(r.test.id).symbol} → ${r.symbol}${r.reason ? ` (${r.reason})` : ''}`)
    }
  }
} else {
  const byClass = (rows, kinds, classes) => rows.filter(r => kinds.includes(r.kind) && classes.includes(r.cls))
  const item = r => {
    const name = r.test.name.replace(/\s+/g, ' ')
    let why = r.reason
    if (r.cls === 'dependency_fail') {
      why = `depends on ${r.test.depends_on.map(d => '`' + d + '`').join(', ')}`
    }
    return `- \`${r.test.id}\` ${r.symbol} (${r.test.suite}) ${name}${why ? ` — ${why}` : ''}`
  }
  for (const m of measured) {
    const failed = byClass(m.rows, ['required'], ['fail'])
    const notSetUp = byClass(m.rows, ['required'], ['setup_fail', 'harness_fail', 'retry'])
    const dep = byClass(m.rows, ['required'], ['dependency_fail'])
    const opt = byClass(m.rows, ['optimal'], ['optional_fail'])
    console.log(`### ${m.name}`)
    console.log('')
    console.log(`Required, failed (${failed.length}):`)
    console.log('')
    for (const r of failed) console.log(item(r))
    console.log('')
    console.log(`Required, setup failed, harness error or retry (${notSetUp.length}):`)
    console.log('')
    for (const r of notSetUp) console.log(item(r))
    console.log('')
    console.log(`Required, not run because a test it depends on did not pass (${dep.length}):`)
    console.log('')
    for (const r of dep) console.log(item(r))
    console.log('')
    console.log(`Optional, not optimal (${opt.length}):`)
    console.log('')
    for (const r of opt) console.log(item(r))
    console.log('')
  }
}
