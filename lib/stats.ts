// Stats of an open file, shaped like node:fs Stats.

import { constants, Stats as NodeStats } from 'node:fs'

const { S_IFMT, S_IFREG, S_IFDIR, S_IFLNK, S_IFIFO, S_IFSOCK, S_IFBLK, S_IFCHR } = constants

/** The result of `FileHandle.stat()`: the fields and predicates of `fs.Stats`. */
export class Stats {
  readonly dev: number
  readonly ino: number
  readonly mode: number
  readonly nlink: number
  readonly uid: number
  readonly gid: number
  readonly rdev: number
  readonly size: number
  readonly blksize: number
  readonly blocks: number
  readonly atimeMs: number
  readonly mtimeMs: number
  readonly ctimeMs: number
  readonly birthtimeMs: number
  readonly atime: Date
  readonly mtime: Date
  readonly ctime: Date
  readonly birthtime: Date

  /** @internal `f` is the native record: see stat_fields in crates/node. */
  constructor(f: Float64Array) {
    this.dev = f[0]
    this.ino = f[1]
    this.mode = f[2]
    this.nlink = f[3]
    this.uid = f[4]
    this.gid = f[5]
    this.rdev = f[6]
    this.size = f[7]
    this.blksize = f[8]
    this.blocks = f[9]
    this.atimeMs = f[10] * 1e3 + f[11] / 1e6
    this.mtimeMs = f[12] * 1e3 + f[13] / 1e6
    this.ctimeMs = f[14] * 1e3 + f[15] / 1e6
    this.birthtimeMs = f[16] * 1e3 + f[17] / 1e6
    // Rounded to the millisecond, as node:fs does (a Date alone truncates).
    this.atime = new Date(Math.round(this.atimeMs))
    this.mtime = new Date(Math.round(this.mtimeMs))
    this.ctime = new Date(Math.round(this.ctimeMs))
    this.birthtime = new Date(Math.round(this.birthtimeMs))
  }

  isFile(): boolean { return (this.mode & S_IFMT) === S_IFREG }
  isDirectory(): boolean { return (this.mode & S_IFMT) === S_IFDIR }
  isSymbolicLink(): boolean { return (this.mode & S_IFMT) === S_IFLNK }
  isFIFO(): boolean { return (this.mode & S_IFMT) === S_IFIFO }
  isSocket(): boolean { return (this.mode & S_IFMT) === S_IFSOCK }
  isBlockDevice(): boolean { return (this.mode & S_IFMT) === S_IFBLK }
  isCharacterDevice(): boolean { return (this.mode & S_IFMT) === S_IFCHR }
}

// Instances pass `instanceof fs.Stats` (and inherit whatever node:fs adds to
// its prototype), as code that checks what node:fs returned expects. Taken
// at load, so a patched fs changes nothing here.
Object.setPrototypeOf(Stats.prototype, NodeStats.prototype)
