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

/**
 * The result of `stat({ bigint: true })`: node:fs's BigIntStats, every
 * number a bigint, with nanosecond times (`atimeNs`, ...).
 */
export class BigIntStats {
  readonly dev: bigint
  readonly ino: bigint
  readonly mode: bigint
  readonly nlink: bigint
  readonly uid: bigint
  readonly gid: bigint
  readonly rdev: bigint
  readonly size: bigint
  readonly blksize: bigint
  readonly blocks: bigint
  readonly atimeMs: bigint
  readonly mtimeMs: bigint
  readonly ctimeMs: bigint
  readonly birthtimeMs: bigint
  readonly atimeNs: bigint
  readonly mtimeNs: bigint
  readonly ctimeNs: bigint
  readonly birthtimeNs: bigint
  readonly atime: Date
  readonly mtime: Date
  readonly ctime: Date
  readonly birthtime: Date

  /** @internal `f` is the native record: see stat_fields in crates/node. */
  constructor(f: Float64Array) {
    this.dev = BigInt(f[0])
    this.ino = BigInt(f[1])
    this.mode = BigInt(f[2])
    this.nlink = BigInt(f[3])
    this.uid = BigInt(f[4])
    this.gid = BigInt(f[5])
    this.rdev = BigInt(f[6])
    this.size = BigInt(f[7])
    this.blksize = BigInt(f[8])
    this.blocks = BigInt(f[9])
    const ns = (i: number): bigint => BigInt(f[i]) * 1_000_000_000n + BigInt(f[i + 1])
    this.atimeNs = ns(10)
    this.mtimeNs = ns(12)
    this.ctimeNs = ns(14)
    this.birthtimeNs = ns(16)
    this.atimeMs = this.atimeNs / 1_000_000n
    this.mtimeMs = this.mtimeNs / 1_000_000n
    this.ctimeMs = this.ctimeNs / 1_000_000n
    this.birthtimeMs = this.birthtimeNs / 1_000_000n
    this.atime = new Date(Number(this.atimeMs))
    this.mtime = new Date(Number(this.mtimeMs))
    this.ctime = new Date(Number(this.ctimeMs))
    this.birthtime = new Date(Number(this.birthtimeMs))
  }

  #is(type: number): boolean {
    return (this.mode & BigInt(S_IFMT)) === BigInt(type)
  }

  isFile(): boolean { return this.#is(S_IFREG) }
  isDirectory(): boolean { return this.#is(S_IFDIR) }
  isSymbolicLink(): boolean { return this.#is(S_IFLNK) }
  isFIFO(): boolean { return this.#is(S_IFIFO) }
  isSocket(): boolean { return this.#is(S_IFSOCK) }
  isBlockDevice(): boolean { return this.#is(S_IFBLK) }
  isCharacterDevice(): boolean { return this.#is(S_IFCHR) }
}

/** node's StatFs: what statfs(2) says of a filesystem. */
export class StatFs {
  readonly type: number | bigint
  readonly bsize: number | bigint
  readonly blocks: number | bigint
  readonly bfree: number | bigint
  readonly bavail: number | bigint
  readonly files: number | bigint
  readonly ffree: number | bigint

  /** @internal `b`: seven little-endian f64s (crates/core op/call.rs Statfs). */
  constructor(b: Buffer, big: boolean) {
    const v = (i: number): number | bigint => (big ? BigInt(b.readDoubleLE(8 * i)) : b.readDoubleLE(8 * i))
    this.type = v(0)
    this.bsize = v(1)
    this.blocks = v(2)
    this.bfree = v(3)
    this.bavail = v(4)
    this.files = v(5)
    this.ffree = v(6)
  }
}

// Instances pass `instanceof fs.Stats` (and inherit whatever node:fs adds to
// its prototype), as code that checks what node:fs returned expects. Taken
// at load, so a patched fs changes nothing here.
Object.setPrototypeOf(Stats.prototype, NodeStats.prototype)
