// The platforms ringline publishes, from package.json's `napi.targets`,
// with what a user of each needs to know. One table for the staged
// packages' READMEs and manifests, the release check and the publish job.
'use strict'
const path = require('node:path')

const root = path.join(__dirname, '..', '..')
const manifest = require(path.join(root, 'package.json'))
// The loader's own mapping (dist/ is built before anything here runs), so
// the names the loader looks for are the names that get published.
const { targetPlatformName } = require(path.join(root, 'dist', 'lib', 'loader.js'))

const engines = {
  linux:
    'io_uring where the kernel sets it up and has every opcode ringline uses (Linux 6.1 or newer), otherwise mio (epoll, and a thread pool for files; Linux 4.16 or newer), chosen at run time with the reason in `ring.fallbackReason`',
  darwin: 'mio (kqueue, and a thread pool for files); io_uring is Linux-only',
}

const systems = {
  'linux-x64-gnu': 'Linux x64 with glibc 2.17 or newer',
  'linux-arm64-gnu': 'Linux arm64 with glibc 2.17 or newer',
  'linux-x64-musl': 'Linux x64 with musl (Alpine)',
  'linux-arm64-musl': 'Linux arm64 with musl (Alpine)',
  'darwin-x64': 'macOS 11 or newer on Intel',
  'darwin-arm64': 'macOS 11 or newer on Apple silicon',
}

/** [{ triple, name ('linux-x64-gnu'), packageName, file, dir (npm/<name>), system, engines }] */
function platforms() {
  return manifest.napi.targets.map((triple) => {
    const name = targetPlatformName(triple)
    const system = systems[name]
    if (system === undefined) throw new Error(`scripts/release/platforms.js: no description of ${name} (${triple})`)
    return {
      triple,
      name,
      packageName: `${manifest.napi.binaryName}-${name}`,
      file: `${manifest.napi.binaryName}.${name}.node`,
      dir: path.join(root, 'npm', name),
      system,
      engines: engines[name.split('-')[0]],
    }
  })
}

module.exports = { root, manifest, platforms }
