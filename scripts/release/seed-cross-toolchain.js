// `napi build --use-napi-cross` (the glibc build legs) fetches the glibc
// 2.17 toolchain as @napi-rs/cross-toolchain-<host>-target-<arch> at the
// version of @napi-rs/cross-toolchain itself (1.0.5 with @napi-rs/cli 3.x)
// and unpacks it into ~/.napi-rs/cross-toolchain/<version>/<triple>,
// skipping the download when that directory holds a package.json. The
// registry has no 1.0.5 of the toolchain packages (x86_64: 1.0.0 newest,
// aarch64: 1.0.3, on 2026-11-30), so that download fails. This puts the
// newest published toolchain not newer than that version into the
// directory first; where that version itself is published it does nothing.
//
// node scripts/release/seed-cross-toolchain.js <triple>
'use strict'
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { execFileSync } = require('node:child_process')

const triple = process.argv[2]
const arch = { 'x86_64-unknown-linux-gnu': 'x86_64', 'aarch64-unknown-linux-gnu': 'aarch64' }[triple]
if (arch === undefined) {
  console.error('usage: node scripts/release/seed-cross-toolchain.js x86_64-unknown-linux-gnu|aarch64-unknown-linux-gnu')
  process.exit(2)
}
const { version } = require('@napi-rs/cross-toolchain/package.json')
const dest = path.join(os.homedir(), '.napi-rs', 'cross-toolchain', version, triple)
const pkg = `@napi-rs/cross-toolchain-${process.arch === 'arm64' ? 'arm64' : 'x64'}-target-${arch}`
if (fs.existsSync(path.join(dest, 'package.json'))) {
  console.log(`${dest} is there already`)
  process.exit(0)
}
const published = JSON.parse(execFileSync('npm', ['view', pkg, 'versions', '--json'], { encoding: 'utf8' }))
if (published.includes(version)) {
  console.log(`${pkg}@${version} is published: napi build downloads it itself`)
  process.exit(0)
}
const cmp = (x, y) => {
  const [a, b] = [x, y].map((v) => v.split('.').map(Number))
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i] - b[i]
  return 0
}
const pick = published.filter((v) => /^\d+\.\d+\.\d+$/.test(v) && cmp(v, version) <= 0).sort(cmp).pop()
if (pick === undefined) throw new Error(`${pkg}: no version up to ${version} is published (${published.join(', ')})`)
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cross-toolchain-'))
const [tgz] = JSON.parse(execFileSync('npm', ['pack', `${pkg}@${pick}`, '--json', '--pack-destination', tmp], { encoding: 'utf8' }))
execFileSync('tar', ['-xzf', path.join(tmp, tgz.filename), '-C', tmp])
fs.mkdirSync(dest, { recursive: true })
execFileSync('tar', ['-xJf', path.join(tmp, 'package', `${triple}.tar.xz`), '-C', dest])
fs.rmSync(tmp, { recursive: true, force: true })
if (!fs.existsSync(path.join(dest, 'package.json'))) throw new Error(`${pkg}@${pick} did not unpack a toolchain into ${dest}`)
console.log(`${pkg}@${version} is not published; seeded ${dest} with ${pick}`)
