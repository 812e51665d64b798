// Publishes a staged release (scripts/release/stage.js --all): every
// platform package first, then ringline, so no published ringline ever
// names a platform package that is not there yet. Each package is checked
// by the guard first. A version already on the registry is skipped, so a
// publish job that failed half-way can be run again.
//
// node scripts/release/publish.js DIR
//
// Runs in the publish job only: it needs NODE_AUTH_TOKEN and, for
// provenance (publishConfig.provenance), GitHub's OIDC token.
'use strict'
const fs = require('node:fs')
const path = require('node:path')
const { execFileSync, spawnSync } = require('node:child_process')
const { problems } = require('./guard')
const { manifest } = require('./platforms')

const dir = path.resolve(process.argv[2] ?? '')
if (!process.argv[2] || !fs.existsSync(path.join(dir, manifest.name))) {
  console.error('usage: node scripts/release/publish.js DIR (a directory staged by scripts/release/stage.js --all)')
  process.exit(2)
}
const packages = fs
  .readdirSync(dir)
  .filter((n) => !n.startsWith('.') && n !== manifest.name)
  .sort()
  .concat(manifest.name)
  .map((n) => path.join(dir, n))

const bad = packages.flatMap((p) => problems(p).map((b) => `${path.basename(p)}: ${b}`))
if (bad.length > 0) {
  console.error(`publish: refusing:\n${bad.map((b) => `  - ${b}`).join('\n')}`)
  process.exit(1)
}

for (const p of packages) {
  const { name, version } = JSON.parse(fs.readFileSync(path.join(p, 'package.json'), 'utf8'))
  const seen = spawnSync('npm', ['view', `${name}@${version}`, 'version'], { encoding: 'utf8' })
  if (seen.status === 0 && seen.stdout.trim() === version) {
    console.log(`publish: ${name}@${version} is already on the registry; skipped`)
    continue
  }
  console.log(`publish: ${name}@${version}`)
  // --ignore-scripts: the staged root package keeps the repository's
  // scripts, which name files it does not ship.
  execFileSync('npm', ['publish', '--ignore-scripts', '--access', 'public', '--provenance'], { cwd: p, stdio: 'inherit' })
}
