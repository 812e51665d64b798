// ringline/fs: node:fs/promises functions over ringline's rings, on this
// thread's default ring (`ring.fs` has the same functions on a ring of your
// own). See README.md, "ringline/fs", for what is there so far.

import { constants } from 'node:fs'
import * as nodeFsPromises from 'node:fs/promises'
import { defaultRing, open } from './lib/default'
import type { RingFs } from './lib/fs/paths'

/** `ring.fs[name]` of the default ring at each call (it is made again if it was closed), named as node's. */
function onDefaultRing<K extends keyof RingFs>(name: K): RingFs[K] {
  const f = function (...args: unknown[]): unknown {
    const fs = defaultRing().fs
    return (fs[name] as (...a: unknown[]) => unknown).apply(fs, args)
  }
  Object.defineProperty(f, 'name', { value: name })
  return f as unknown as RingFs[K]
}

export const stat = onDefaultRing('stat')
export const lstat = onDefaultRing('lstat')
export const unlink = onDefaultRing('unlink')
export const rmdir = onDefaultRing('rmdir')
export const mkdir = onDefaultRing('mkdir')
export const rename = onDefaultRing('rename')
export const symlink = onDefaultRing('symlink')
export const link = onDefaultRing('link')
export const readFile = onDefaultRing('readFile')
export const writeFile = onDefaultRing('writeFile')
export const appendFile = onDefaultRing('appendFile')
export const truncate = onDefaultRing('truncate')
export const access = onDefaultRing('access')
export const readdir = onDefaultRing('readdir')
export const readlink = onDefaultRing('readlink')
export const realpath = onDefaultRing('realpath')
export const chmod = onDefaultRing('chmod')
export const rm = onDefaultRing('rm')
export const chown = onDefaultRing('chown')
export const lchown = onDefaultRing('lchown')
export const utimes = onDefaultRing('utimes')
export const lutimes = onDefaultRing('lutimes')
export const mkdtemp = onDefaultRing('mkdtemp')
export const statfs = onDefaultRing('statfs')
export const copyFile = onDefaultRing('copyFile')
export const opendir = onDefaultRing('opendir')
export const cp = onDefaultRing('cp')
/**
 * node:fs/promises' own watch (inotify; not I/O-bound, so nothing to gain
 * from a ring), taken at load so a patched fs.promises does not loop back.
 */
export const watch = nodeFsPromises.watch
export { open, constants }
export type { FileHandle } from './lib/file'
export type { Stats, BigIntStats } from './lib/stats'
export type { Dir } from './lib/fs/dir'
export type { StatFs } from './lib/stats'
