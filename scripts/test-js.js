// Runs the ava suite once per engine and completion mode, so no feature can
// pass on one engine and be missing on the other (npm test's JS part).
//
//   RINGLINE_TEST_BACKENDS     engines, comma-separated (default: io_uring,mio,sim
//                              on Linux, mio elsewhere)
//   RINGLINE_TEST_COMPLETIONS  completion modes (default: thread,loop; loop on sim)
//   RINGLINE_SIM_SEED          the sim pass's seed (default: drawn, and printed)
//
// sim runs once, with completion 'loop' (a sim ring's default: the one
// where a seeded run is the same run), on one seed, which the pass prints:
// RINGLINE_SIM_SEED=<it> npm run test:js replays a failure. On sim, the
// tests that only a real kernel can show are skipped: __test__/SIM-SKIPS.md.
//
// Each run sets RINGLINE_BACKEND to an explicit engine, so a machine where
// io_uring is blocked fails the io_uring run instead of silently testing mio
// twice. Extra arguments go to ava (e.g. a spec file).
'use strict'
const { spawnSync } = require('node:child_process')
const path = require('node:path')

const list = (v, def) => (v ?? def).split(',').map((s) => s.trim()).filter(Boolean)
const backends = list(process.env.RINGLINE_TEST_BACKENDS, process.platform === 'linux' ? 'io_uring,mio,sim' : 'mio')
const completionsOf = (backend) => list(process.env.RINGLINE_TEST_COMPLETIONS, backend === 'sim' ? 'loop' : 'thread,loop')
const simSeed = process.env.RINGLINE_SIM_SEED ?? String(Math.floor(Math.random() * 2 ** 32))
const ava = path.join(__dirname, '..', 'node_modules', 'ava', 'entrypoints', 'cli.mjs')

const extra = process.argv.slice(2)
if (process.platform === 'linux') {
  // The seccomp launcher of __test__/refusal.spec.ts. Without a Rust
  // toolchain (a test-only container running a prebuilt binary) that spec
  // cannot run: it is left out, and this says so.
  const b = spawnSync('cargo', ['build', '--release', '-p', 'ringline-seccomp-launch'], { stdio: 'inherit' })
  if (b.error !== undefined && b.error.code === 'ENOENT' && extra.length === 0) {
    console.warn('test-js: cargo is not installed: cannot build the seccomp launcher; __test__/refusal.spec.ts is NOT run')
    extra.push('__test__/**/*.spec.ts', '!__test__/refusal.spec.ts')
  } else if (b.status !== 0) {
    process.exit(b.status ?? 1)
  }
}

for (const backend of backends) {
  for (const completion of completionsOf(backend)) {
    const env = { ...process.env, RINGLINE_BACKEND: backend, RINGLINE_COMPLETION: completion }
    const seed = backend === 'sim' ? ` RINGLINE_SIM_SEED=${simSeed}` : ''
    if (backend === 'sim') env.RINGLINE_SIM_SEED = simSeed
    console.log(`\n=== ava: RINGLINE_BACKEND=${backend} RINGLINE_COMPLETION=${completion}${seed} ===`)
    const r = spawnSync(process.execPath, [ava, ...extra], { stdio: 'inherit', env })
    if (r.status !== 0) {
      console.error(`ava failed with RINGLINE_BACKEND=${backend} RINGLINE_COMPLETION=${completion}${seed}`)
      process.exit(r.status ?? 1)
    }
  }
}
