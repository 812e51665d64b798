// Refuses to publish a package that would not install: npm's
// `prepublishOnly` (so a hand-run `npm publish` in the repository stops
// here) and the publish job's check of each staged package.
//
// node scripts/release/guard.js [DIR]   (default: the current directory)
//
// The root package must list every platform package of napi.targets in
// `optionalDependencies` at its own version (the repository's package.json
// never does: scripts/release/stage.js writes them into the staged copy the
// publish job publishes), ship dist/, README.md and LICENSE, run no script
// at install time, and name the repository it is published from (npm
// refuses provenance otherwise). A platform package must hold its .node.
'use strict'
const fs = require('node:fs')
const path = require('node:path')

const INSTALL_SCRIPTS = ['preinstall', 'install', 'postinstall']

/** Problems that would make `dir` a broken release; [] when there are none. */
function problems(dir) {
  const { manifest, platforms } = require('./platforms')
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'))
  const bad = []
  for (const s of INSTALL_SCRIPTS) {
    if (pkg.scripts?.[s] !== undefined) bad.push(`scripts.${s} runs at every install ("${pkg.scripts[s]}"); ringline installs prebuilt binaries and runs nothing`)
  }
  if (pkg.version !== manifest.version) bad.push(`version ${pkg.version} is not the repository's ${manifest.version}`)
  const url = pkg.repository?.url
  if (typeof url !== 'string') bad.push('no repository.url (npm refuses provenance without it)')
  else if (process.env.GITHUB_REPOSITORY) {
    const here = `${process.env.GITHUB_SERVER_URL ?? 'https://github.com'}/${process.env.GITHUB_REPOSITORY}`
    const named = url.replace(/^git\+/, '').replace(/\.git$/, '')
    if (named.toLowerCase() !== here.toLowerCase()) bad.push(`repository.url names ${named}, but this runs in ${here}: npm would refuse the provenance`)
  }
  const exists = (f) => fs.existsSync(path.join(dir, f))
  if (pkg.name === manifest.name) {
    const want = Object.fromEntries(platforms().map((p) => [p.packageName, manifest.version]))
    const have = pkg.optionalDependencies ?? {}
    const missing = Object.keys(want).filter((n) => have[n] !== want[n])
    if (missing.length > 0) {
      bad.push(
        `optionalDependencies lack ${missing.map((n) => `${n}@${want[n]}`).join(', ')}: every install would fail to find its native module. ` +
          'ringline is published by the CI publish job from a staged copy (scripts/release/stage.js writes them), never from the repository',
      )
    }
    for (const f of ['dist/index.js', 'dist/index.mjs', 'dist/index.d.ts', 'dist/index.d.mts', 'README.md', 'LICENSE']) {
      if (!exists(f)) bad.push(`${f} is missing`)
    }
  } else {
    const p = platforms().find((q) => q.packageName === pkg.name)
    if (p === undefined) bad.push(`${pkg.name} is not a platform package of napi.targets`)
    else if (!exists(p.file)) bad.push(`${p.file} is missing`)
    if (!exists('LICENSE') && p !== undefined) bad.push('LICENSE is missing')
  }
  return bad
}

module.exports = { problems, INSTALL_SCRIPTS }

if (require.main === module) {
  const dir = path.resolve(process.argv[2] ?? '.')
  const bad = problems(dir)
  if (bad.length > 0) {
    console.error(`release guard: refusing to publish ${dir}:\n${bad.map((b) => `  - ${b}`).join('\n')}`)
    process.exit(1)
  }
  console.log(`release guard: ${dir} is publishable`)
}
