// The suite's setup layer, so that the same specs run on every engine, sim
// included (not a spec file itself).
//
// A test's fixtures (its directory, the files it reads, what it reads back
// to check a write) must be where the ring under test looks: on io_uring
// and mio that is the real disk, reached with node:fs; on sim it is the
// ring's own in-memory disk, which nothing real can see or touch, so there
// they go through ringline itself (`ring.fs`). Each sim Ring has a disk of
// its own: a test that makes its own Ring passes it to `disk(ring)`.
//
// What only a real kernel can show is skipped on sim through
// `realKernelOnly(why)`; __test__/SIM-SKIPS.md lists those tests.

import test, { type SkipFn } from 'ava'
import { randomBytes } from 'node:crypto'
import * as fs from 'node:fs'
import { defaultRing, type Ring } from '../index'
import { BACKEND, makeTmpDir, removeTmpDir } from './helpers'

/** Whether this run of the suite is on the sim engine. */
export const SIM = BACKEND === 'sim'

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

type PathArg = string | Buffer

/** What the tests do to set up and check files, on the disk a ring sees. */
export interface TestDisk {
  writeFile(p: PathArg, data: string | Uint8Array): Promise<void>
  appendFile(p: PathArg, data: string | Uint8Array): Promise<void>
  /** Writes `size` random bytes to a new file and returns them. */
  randomFile(p: PathArg, size: number): Promise<Buffer>
  readFile(p: PathArg): Promise<Buffer>
  readText(p: PathArg): Promise<string>
  stat(p: PathArg): Promise<fs.Stats>
  lstat(p: PathArg): Promise<fs.Stats>
  exists(p: PathArg): Promise<boolean>
  mkdir(p: PathArg, options?: { recursive?: boolean; mode?: number }): Promise<void>
  /** A new directory named `prefix` and six random characters. */
  mkdtemp(prefix: string): Promise<string>
  readdir(p: PathArg): Promise<string[]>
  symlink(target: string, p: PathArg): Promise<void>
  readlink(p: PathArg): Promise<string>
  utimes(p: PathArg, atime: number, mtime: number): Promise<void>
  chmod(p: PathArg, mode: number): Promise<void>
  truncate(p: PathArg, len: number): Promise<void>
  unlink(p: PathArg): Promise<void>
  rm(p: PathArg, options?: { recursive?: boolean; force?: boolean }): Promise<void>
}

/** The real disk through node:fs, whatever the engine (node's side of a side-by-side test). */
export const realDisk: TestDisk = {
  writeFile: async (p, data) => fs.writeFileSync(p, data),
  appendFile: async (p, data) => fs.appendFileSync(p, data),
  randomFile: async (p, size) => {
    const data = randomBytes(size)
    fs.writeFileSync(p, data)
    return data
  },
  readFile: async (p) => fs.readFileSync(p),
  readText: async (p) => fs.readFileSync(p, 'utf8'),
  stat: async (p) => fs.statSync(p),
  lstat: async (p) => fs.lstatSync(p),
  exists: async (p) => fs.existsSync(p),
  mkdir: async (p, options) => {
    fs.mkdirSync(p, options)
  },
  mkdtemp: async (prefix) => fs.mkdtempSync(prefix),
  readdir: async (p) => fs.readdirSync(p),
  symlink: async (target, p) => fs.symlinkSync(target, p),
  readlink: async (p) => fs.readlinkSync(p),
  utimes: async (p, atime, mtime) => fs.utimesSync(p, atime, mtime),
  chmod: async (p, mode) => fs.chmodSync(p, mode),
  truncate: async (p, len) => fs.truncateSync(p, len),
  unlink: async (p) => fs.unlinkSync(p),
  rm: async (p, options) => fs.rmSync(p, options),
}

function onRing(ring: Ring): TestDisk {
  const rfs = ring.fs
  return {
    writeFile: (p, data) => rfs.writeFile(p, data),
    appendFile: (p, data) => rfs.appendFile(p, data),
    randomFile: async (p, size) => {
      const data = randomBytes(size)
      await rfs.writeFile(p, data)
      return data
    },
    readFile: (p) => rfs.readFile(p),
    readText: (p) => rfs.readFile(p, 'utf8'),
    stat: (p) => rfs.stat(p) as Promise<fs.Stats>,
    lstat: (p) => rfs.lstat(p) as Promise<fs.Stats>,
    exists: (p) => rfs.access(p).then(
      () => true,
      () => false,
    ),
    mkdir: async (p, options) => {
      await rfs.mkdir(p, options)
    },
    mkdtemp: async (prefix) => String(await rfs.mkdtemp(prefix)),
    readdir: async (p) => (await rfs.readdir(p)) as string[],
    symlink: (target, p) => rfs.symlink(target, p),
    readlink: async (p) => String(await rfs.readlink(p)),
    utimes: (p, atime, mtime) => rfs.utimes(p, atime, mtime),
    chmod: (p, mode) => rfs.chmod(p, mode),
    truncate: (p, len) => rfs.truncate(p, len),
    unlink: (p) => rfs.unlink(p),
    rm: (p, options) => rfs.rm(p, options),
  }
}

/**
 * The disk `ring` sees (the default ring's when none is given): node:fs on
 * the real engines, `ring.fs` on sim.
 */
export function disk(ring?: Ring): TestDisk {
  if (!SIM) return realDisk
  return onRing(ring ?? defaultRing())
}
