// The disk a ring sees, for test fixtures (not a spec file itself; no ava
// here, so child processes of the tests use it too): node:fs on the real
// engines; on sim the ring's own in-memory disk, which nothing real can see
// or touch, reached through ringline itself (`ring.fs`). Each sim Ring has a
// disk of its own: a test that makes its own Ring passes it to `disk(ring)`.
// See sim-setup.ts for the specs' side (testDir, realKernelOnly).

import { randomBytes } from 'node:crypto'
import * as fs from 'node:fs'
import { defaultRing, type Ring } from '../index'
import { BACKEND } from './helpers'

/** Whether this run of the suite is on the sim engine. */
export const SIM = BACKEND === 'sim'

export type PathArg = string | Buffer

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
