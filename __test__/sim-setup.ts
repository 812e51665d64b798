// The suite's setup layer, so that the same specs run on every engine, sim
// included (not a spec file itself).
//
// A test's fixtures (its directory, the files it reads, what it reads back
// to check a write) must be where the ring under test looks: on io_uring
// and mio that is the real disk, reached with node:fs; on sim it is the
// ring's own in-memory disk, which nothing real can see or touch, so there
// they go through ringline itself (`ring.fs`). Each sim Ring has a disk of
// its own: a test that makes its own Ring passes it to `disk(ring)`
// (test-disk.ts, re-exported here).
//
// What only a real kernel can show is skipped on sim through
// `realKernelOnly(why)`; __test__/SIM-SKIPS.md lists those tests.

import test, { type SkipFn } from 'ava'
import { makeTmpDir, removeTmpDir } from './helpers'
import { SIM } from './test-disk'

export { SIM, disk, realDisk, type TestDisk } from './test-disk'

/**
 * `test` on the real engines, `test.skip` on sim: for a test that only a
 * real kernel can show. `why` says what real thing it needs (it is the
 * reason in __test__/SIM-SKIPS.md). `serial`: as `test.serial`.
 */
export function realKernelOnly(why: string, options: { serial?: boolean } = {}): SkipFn {
  if (why.trim() === '') throw new Error('realKernelOnly: say why the test needs a real kernel')
  if (options.serial === true) return SIM ? test.serial.skip : test.serial
  return SIM ? test.skip : test
}

/**
 * The directory a spec file keeps its files in: a fresh temporary
 * directory on the real disk, removed after the file's tests; on sim, "/"
 * of the ring's in-memory disk (every sim disk has it, and it goes with
 * its ring).
 */
export function testDir(prefix: string): string {
  if (SIM) return '/'
  const dir = makeTmpDir(prefix)
  test.after.always(() => removeTmpDir(dir))
  return dir
}
