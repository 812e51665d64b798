// Stages the packages a release publishes, the same way here and in the
// publish job, so the release check tests exactly what ships:
//
//   <out>/ringline/           the root package: what `npm pack` of the
//                             repository ships (package.json's `files`),
//                             with `optionalDependencies` naming every
//                             platform package at this version
//   <out>/ringline-<name>/    one per platform: npm/<name>/package.json
//                             completed from the root manifest, README,
//                             LICENSE, and ringline.<name>.node
//
// node scripts/release/stage.js --out DIR [--artifacts DIR] [--all]
//   --artifacts  where the .node files are (searched recursively, as
//                actions/download-artifact lays them out); default: the
//                repository root (a source build)
//   --all        every platform of napi.targets must have its .node (the
//                publish job); without it, platforms with none are skipped
//
// Packing runs npm's `prepare` script, which builds nothing for `npm pack`
// (scripts/prepare.js): staging needs no Rust toolchain.
'use strict'
const fs = require('node:fs')
const path = require('node:path')
const { execFileSync } = require('node:child_process')
const { root, manifest, platforms } = require('./platforms')

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'

/** The copied-over fields every published manifest shares. */
function shared() {
  const { version, description, license, author, repository, homepage, bugs, engines, publishConfig } = manifest
  return { version, description, license, author, repository, homepage, bugs, engines, publishConfig }
}

function findFile(dir, file) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name)
    if (entry.isFile() && entry.name === file) return p
    if (entry.isDirectory() && entry.name !== 'node_modules' && entry.name !== 'target') {
      const found = findFile(p, file)
      if (found !== undefined) return found
    }
  }
  return undefined
}

function platformReadme(p) {
  return `# \`${p.packageName}\`

The native module of [\`ringline\`](https://www.npmjs.com/package/ringline)
(io_uring file and TCP I/O for Node.js) for ${p.system}: \`${p.file}\`,
built for \`${p.triple}\`.

Do not install this package yourself: install \`ringline\`. It lists every
platform package in its \`optionalDependencies\`; npm installs only the one
whose \`os\`, \`cpu\`${p.name.startsWith('linux') ? ' and `libc`' : ''} match the machine, and ringline's loader
loads it. ringline refuses a platform package of another version than its
own.

Engine on this platform: ${p.engines}.

Published by ringline's release job with ringline itself, same version.

License: MIT
`
}

function stagePlatform(p, out, artifacts) {
  const node = findFile(artifacts, p.file)
  if (node === undefined) return undefined
  const own = JSON.parse(fs.readFileSync(path.join(p.dir, 'package.json'), 'utf8'))
  const bad = []
  if (own.name !== p.packageName) bad.push(`name is ${own.name}, not ${p.packageName}`)
  if (own.main !== p.file) bad.push(`main is ${own.main}, not ${p.file}`)
  if (own.version !== manifest.version) bad.push(`version is ${own.version}, not ${manifest.version} (package.json's)`)
  if (bad.length > 0) throw new Error(`npm/${p.name}/package.json: ${bad.join('; ')}`)
  const dir = path.join(out, p.packageName)
  fs.mkdirSync(dir, { recursive: true })
  const { name, main, os, cpu, libc } = own
  const staged = { name, ...shared(), main, files: [p.file], os, cpu, ...(libc ? { libc } : {}) }
  fs.writeFileSync(path.join(dir, 'package.json'), `${JSON.stringify(staged, null, 2)}\n`)
  fs.writeFileSync(path.join(dir, 'README.md'), platformReadme(p))
  fs.copyFileSync(path.join(root, 'LICENSE'), path.join(dir, 'LICENSE'))
  fs.copyFileSync(node, path.join(dir, p.file))
  return { ...p, staged: dir, from: node }
}

function stageRoot(out, env) {
  const tmp = fs.mkdtempSync(path.join(out, '.pack-'))
  const json = execFileSync(npm, ['pack', '--json', '--pack-destination', tmp], { cwd: root, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
  const [{ filename }] = JSON.parse(json.slice(json.indexOf('[')))
  const dir = path.join(out, manifest.name)
  fs.mkdirSync(dir, { recursive: true })
  execFileSync('tar', ['-xzf', path.join(tmp, filename), '-C', dir, '--strip-components=1'], { env })
  fs.rmSync(tmp, { recursive: true, force: true })
  const file = path.join(dir, 'package.json')
  const staged = JSON.parse(fs.readFileSync(file, 'utf8'))
  staged.optionalDependencies = Object.fromEntries(platforms().map((p) => [p.packageName, manifest.version]))
  fs.writeFileSync(file, `${JSON.stringify(staged, null, 2)}\n`)
  return dir
}

/** Stages into `out` (emptied first). Returns { root, platforms, skipped }. */
function stage({ out, artifacts = root, all = false, env = process.env }) {
  fs.rmSync(out, { recursive: true, force: true })
  fs.mkdirSync(out, { recursive: true })
  const staged = []
  const skipped = []
  for (const p of platforms()) {
    const s = stagePlatform(p, out, artifacts)
    if (s === undefined) skipped.push(p)
    else staged.push(s)
  }
  if (all && skipped.length > 0) {
    throw new Error(`no .node for ${skipped.map((p) => `${p.name} (${p.file})`).join(', ')} under ${artifacts}`)
  }
  return { root: stageRoot(out, env), platforms: staged, skipped }
}

module.exports = { stage }

if (require.main === module) {
  const args = process.argv.slice(2)
  const value = (flag) => {
    const i = args.indexOf(flag)
    return i < 0 ? undefined : args[i + 1]
  }
  const out = value('--out')
  if (out === undefined) {
    console.error('usage: node scripts/release/stage.js --out DIR [--artifacts DIR] [--all]')
    process.exit(2)
  }
  const artifacts = value('--artifacts')
  const r = stage({ out: path.resolve(out), artifacts: artifacts && path.resolve(artifacts), all: args.includes('--all') })
  console.log(`staged ${r.root}`)
  for (const p of r.platforms) console.log(`staged ${p.staged} (${path.relative(process.cwd(), p.from)})`)
  for (const p of r.skipped) console.log(`skipped ${p.packageName}: no ${p.file}`)
}
