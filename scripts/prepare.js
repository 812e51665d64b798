// npm's `prepare` script. It builds the native module and dist/ for a
// `npm install` (or `npm ci`) in a clone, the README's quick start, and
// does nothing for `npm pack` and `npm publish`, which also run `prepare`:
// packing and publishing never build native code (the publish job ships
// the binaries its build legs made, and a machine without a Rust toolchain
// can still pack).
'use strict'
const { spawnSync } = require('node:child_process')

const command = process.env.npm_command
if (!['install', 'ci', 'install-test', 'install-ci-test'].includes(command)) {
  console.log(`prepare: nothing to build for npm ${command ?? '(unknown command)'}`)
  process.exit(0)
}
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
const r = spawnSync(npm, ['run', 'build'], { stdio: 'inherit', shell: process.platform === 'win32' })
process.exit(r.status ?? 1)
