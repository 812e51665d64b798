// RingFs: the functions of node:fs/promises over one ring (ring.fs, and
// ringline/fs on the default ring). Ops on names (stat, lstat, unlink,
// rmdir, mkdir, rename, symlink, link) are engine ops; calls with no
// io_uring opcode (access, readdir, readlink, realpath, chmod, chown,
// utimes, mkdtemp, statfs, copyFile, and readFile/writeFile by path) run in
// the blocking lane; rm, opendir and cp are built from those. Same
// arguments, results and errors (code, errno, syscall, path, dest,
// message) as node:fs/promises.

import * as nodeFs from 'node:fs'
import * as path from 'node:path'
import * as timers from 'node:timers/promises'
import type { RingCore } from '../core'
import { Kinds } from '../core'
import { invalidArgType, nodeSystemError, systemError } from '../errors'
import type { FileHandle } from '../file'
import { CALLS, PATH_OPS, READ_FILE_STEP } from '../native'
import type { Ring } from '../ring'
import { BigIntStats, StatFs, type Stats } from '../stats'
import { parseFlags, parseMode, pathText, validateInteger, validatePath } from '../validators'
import { assertEncoding, checkAborted, getOptions, getValidMode, nameIn, parseRequiredMode, toTimespec, validateIds, type WholeFileOptions } from './options'
import { cp, type CopyOptions } from './cp'
import { readFileHandle } from './read-file'
import { writeFileData, writeFileHandle, type WriteFileIterable } from './write-file'
import { Dir } from './dir'

/**
 * The error of a one-call readFile or writeFile, as node:fs gives it for
 * the call that failed: the first (open, with the path), or a later one
 * (`names[step]`, without the path, as node's FileHandle calls report it).
 */
function stepError(e: unknown, names: string[]): unknown {
  const errno = (e as { errno?: number }).errno ?? 0
  if (errno > -READ_FILE_STEP) return e
  const step = Math.floor(-errno / READ_FILE_STEP)
  return systemError(-(-errno - step * READ_FILE_STEP), names[step])
}

const { K_VOID, K_STAT, K_CALL } = Kinds
// Taken at load, like everything ringline takes from Node.
const { dirname, join, relative } = path
const { Dirent } = nodeFs
const { F_OK } = nodeFs.constants
const sleep = timers.setTimeout
const { emitWarning } = process

/** Errors node's rimraf tries again on (maxRetries times, retries * retryDelay ms apart). */
const RETRY_CODES = new Set(['EBUSY', 'EMFILE', 'ENFILE', 'ENOTEMPTY', 'EPERM'])
let recursiveRmdirWarned: boolean | undefined

/** rm's and rmdir's options, checked and defaulted as node's validateRmOptions / validateRmdirOptions do. */
function rmOptions(options: unknown, rmdir: boolean): Required<RmOptions> {
  const o: Required<RmOptions> = { recursive: false, force: false, retryDelay: 100, maxRetries: 0 }
  if (options === undefined) return o
  if (typeof options !== 'object' || options === null || Array.isArray(options)) throw invalidArgType('options', 'of type object', options)
  Object.assign(o, options)
  if (!rmdir && typeof o.force !== 'boolean') throw invalidArgType('options.force', 'of type boolean', o.force)
  if (typeof o.recursive !== 'boolean') throw invalidArgType('options.recursive', 'of type boolean', o.recursive)
  validateInteger(o.retryDelay, 'options.retryDelay', 0, 2 ** 31 - 1)
  validateInteger(o.maxRetries, 'options.maxRetries', 0, 2 ** 32 - 1)
  return o
}

/** Linux's DT_* (what readdir gives) as libuv's UV_DIRENT_* (what fs.Dirent takes). */
const DIRENT_TYPE: Record<number, number> = { 0: 0, 8: 1, 4: 2, 10: 3, 1: 4, 12: 5, 2: 6, 6: 7 }
const UV_DIRENT_UNKNOWN = 0

export interface ReaddirOptions {
  encoding?: BufferEncoding | 'buffer' | null
  withFileTypes?: boolean
  recursive?: boolean
}

export interface RmOptions {
  force?: boolean
  recursive?: boolean
  maxRetries?: number
  retryDelay?: number
}

/** readdir's raw answer: names as bytes, with their DT_* types. */
interface RawEntry {
  name: Buffer
  type: number
}

/**
 * Just the names, as UTF-8 strings: the whole listing decoded at once and
 * cut at the NULs (each record starts with its type byte, which is never
 * mistaken for the NUL that ends the record before it). Four times faster
 * than decoding name by name at 10,000 entries.
 */
function parseUtf8Names(bytes: Buffer | undefined): string[] {
  const out: string[] = []
  if (bytes === undefined) return out
  const s = bytes.toString('utf8')
  let i = 0
  while (i < s.length) {
    const end = s.indexOf('\0', i + 1)
    out.push(s.slice(i + 1, end))
    i = end + 1
  }
  return out
}

function parseEntries(bytes: Buffer | undefined): RawEntry[] {
  const out: RawEntry[] = []
  if (bytes === undefined) return out
  let i = 0
  while (i < bytes.length) {
    const end = bytes.indexOf(0, i + 1)
    out.push({ type: bytes[i], name: bytes.subarray(i + 1, end) })
    i = end + 1
  }
  return out
}

type PathLike = string | Buffer | URL

export interface StatOptions {
  bigint?: boolean
}

export interface MakeDirectoryOptions {
  recursive?: boolean
  mode?: string | number
}

export interface RmDirOptions {
  recursive?: boolean
  maxRetries?: number
  retryDelay?: number
}

const makeBigIntStats = (f: Float64Array): BigIntStats => new BigIntStats(f)

/**
 * `dir`/`name`: text while both are, else bytes, so a name that is not
 * UTF-8 (Linux allows any bytes but '/' and NUL) reaches the kernel as it is.
 */
function joinName(dir: string | Buffer, name: Buffer): string | Buffer {
  const text = name.toString('utf8')
  if (typeof dir === 'string' && Buffer.byteLength(text) === name.length && Buffer.from(text).equals(name)) return join(dir, text)
  const d = typeof dir === 'string' ? Buffer.from(dir) : dir
  return Buffer.concat([d, d[d.length - 1] === 0x2f ? Buffer.alloc(0) : Buffer.from('/'), name])
}

/** The functions of one ring; `ring.fs` and the `ringline/fs` module (on the default ring) are these. */
export class RingFs {
  readonly #ring: Ring
  readonly #core: RingCore

  /** @internal Made by Ring. */
  constructor(ring: Ring, core: RingCore) {
    this.#ring = ring
    this.#core = core
  }

  /** One op on names; `dest` is the second path's text for errors. */
  #op<T>(kind: number, syscall: string, code: number, a: string | Buffer, b: string | Buffer | null, mode: number, shape?: unknown): Promise<T> {
    const core = this.#core
    const dest = b === null ? undefined : pathText(b)
    return core.begin<T>(kind, syscall, shape, pathText(a), undefined, (t) => core.native.pathOp(t, code, a, b, mode), shape, dest)
  }

  stat(p: PathLike, options?: StatOptions & { bigint?: false }): Promise<Stats>
  stat(p: PathLike, options: StatOptions & { bigint: true }): Promise<BigIntStats>
  stat(p: PathLike, options?: StatOptions): Promise<Stats | BigIntStats>
  stat(p: PathLike, options: StatOptions = { bigint: false }): Promise<Stats | BigIntStats> {
    try {
      const a = validatePath(p)
      return this.#op(K_STAT, 'stat', PATH_OPS.stat, a, null, 0, options?.bigint ? makeBigIntStats : undefined)
    } catch (e) {
      return Promise.reject(e)
    }
  }

  lstat(p: PathLike, options?: StatOptions & { bigint?: false }): Promise<Stats>
  lstat(p: PathLike, options: StatOptions & { bigint: true }): Promise<BigIntStats>
  lstat(p: PathLike, options?: StatOptions): Promise<Stats | BigIntStats>
  lstat(p: PathLike, options: StatOptions = { bigint: false }): Promise<Stats | BigIntStats> {
    try {
      const a = validatePath(p)
      return this.#op(K_STAT, 'lstat', PATH_OPS.lstat, a, null, 0, options?.bigint ? makeBigIntStats : undefined)
    } catch (e) {
      return Promise.reject(e)
    }
  }

  unlink(p: PathLike): Promise<void> {
    try {
      return this.#op(K_VOID, 'unlink', PATH_OPS.unlink, validatePath(p), null, 0)
    } catch (e) {
      return Promise.reject(e)
    }
  }

  /**
   * rmdir(2). `recursive` (deprecated in node: DEP0147, warned once as
   * node warns) removes a directory (a symlink to one is followed, as
   * node's stat follows it) with everything in it, as rm does; anything
   * else gets rmdir's own error.
   */
  async rmdir(p: PathLike, options?: RmDirOptions): Promise<void> {
    const a = validatePath(p)
    const o = rmOptions(options, true)
    if (o.recursive) {
      if (recursiveRmdirWarned === undefined) recursiveRmdirWarned = process.noDeprecation
      if (!recursiveRmdirWarned) {
        emitWarning('In future versions of Node.js, fs.rmdir(path, { recursive: true }) will be removed. Use fs.rm(path, { recursive: true }) instead', 'DeprecationWarning', 'DEP0147')
        recursiveRmdirWarned = true
      }
      if ((await this.stat(a)).isDirectory()) return this.#rimraf(a, o)
    }
    return this.#op(K_VOID, 'rmdir', PATH_OPS.rmdir, a, null, 0)
  }

  /**
   * mkdir(2); `{ recursive: true }` makes the missing parents too and
   * resolves with the first directory it made (undefined if there was none
   * to make), as node:fs/promises does.
   */
  mkdir(p: PathLike, options?: MakeDirectoryOptions | string | number): Promise<string | undefined> {
    try {
      let mode = 0o777
      let recursive = false
      if (typeof options === 'number' || typeof options === 'string') {
        mode = parseMode(options, 0o777)
      } else if (options != null) {
        if (options.recursive !== undefined && typeof options.recursive !== 'boolean') throw invalidArgType('options.recursive', 'of type boolean', options.recursive)
        recursive = options.recursive ?? false
        mode = parseMode(options.mode, 0o777)
      }
      const a = validatePath(p)
      if (!recursive) return this.#op<undefined>(K_VOID, 'mkdir', PATH_OPS.mkdir, a, null, mode)
      return this.#mkdirp(a, mode)
    } catch (e) {
      return Promise.reject(e)
    }
  }

  /**
   * libuv's mkdirp: make `p`; if its parent is missing, make the parent
   * first. An existing directory is fine; an existing file is EEXIST at the
   * end of the path and ENOTDIR on the way, each naming the path asked for.
   * Buffer paths are walked as latin1 text, which keeps every byte.
   */
  async #mkdirp(a: string | Buffer, mode: number): Promise<string | undefined> {
    const asked = pathText(a)
    const text = typeof a === 'string' ? a : a.toString('latin1')
    const back = (s: string): string | Buffer => (typeof a === 'string' ? s : Buffer.from(s, 'latin1'))
    const isDir = async (s: string): Promise<boolean> => {
      try {
        return (await this.#op<Stats>(K_STAT, 'stat', PATH_OPS.stat, back(s), null, 0)).isDirectory()
      } catch {
        return false
      }
    }
    const fail = (e: unknown, code: 'EEXIST' | 'ENOTDIR'): never => {
      const err = e as Error & { code?: string; errno?: number; path?: string }
      err.code = code
      err.errno = code === 'EEXIST' ? -17 : -20
      err.message = `${code}: ${code === 'EEXIST' ? 'file already exists' : 'not a directory'}, mkdir '${asked}'`
      err.path = asked
      throw err
    }
    const make = async (s: string, last: boolean): Promise<string | undefined> => {
      try {
        await this.#op(K_VOID, 'mkdir', PATH_OPS.mkdir, back(s), null, mode)
        return s
      } catch (e) {
        const code = (e as { code?: string }).code
        if (code === 'EEXIST') {
          if (await isDir(s)) return undefined
          return fail(e, last ? 'EEXIST' : 'ENOTDIR')
        }
        const parent = dirname(s)
        if (code !== 'ENOENT' || parent === s) {
          if (code === 'ENOENT' || code === 'ENOTDIR') (e as { path?: string }).path = asked
          throw e
        }
        const first = await make(parent, false)
        try {
          await this.#op(K_VOID, 'mkdir', PATH_OPS.mkdir, back(s), null, mode)
        } catch (e2) {
          if ((e2 as { code?: string }).code === 'EEXIST' && (await isDir(s))) return first
          throw e2
        }
        return first ?? s
      }
    }
    const first = await make(text, true)
    return first === undefined ? undefined : typeof a === 'string' ? first : Buffer.from(first, 'latin1').toString('utf8')
  }

  rename(oldPath: PathLike, newPath: PathLike): Promise<void> {
    try {
      const a = validatePath(oldPath, 'oldPath')
      const b = validatePath(newPath, 'newPath')
      return this.#op(K_VOID, 'rename', PATH_OPS.rename, a, b, 0)
    } catch (e) {
      return Promise.reject(e)
    }
  }

  /** symlink(2): `p` becomes a link to `target`. `type` matters on Windows only, as in node. */
  symlink(target: PathLike, p: PathLike, type?: string | null): Promise<void> {
    try {
      if (type != null && typeof type !== 'string') throw invalidArgType('type', 'of type string', type)
      const a = validatePath(target, 'target')
      const b = validatePath(p)
      return this.#op(K_VOID, 'symlink', PATH_OPS.symlink, a, b, 0)
    } catch (e) {
      return Promise.reject(e)
    }
  }

  link(existingPath: PathLike, newPath: PathLike): Promise<void> {
    try {
      const a = validatePath(existingPath, 'existingPath')
      const b = validatePath(newPath, 'newPath')
      return this.#op(K_VOID, 'link', PATH_OPS.link, a, b, 0)
    } catch (e) {
      return Promise.reject(e)
    }
  }

  /**
   * A call of the blocking lane on a path, with `b` (a second path, or
   * bytes); `decode` turns its bytes into the result; `shown` the path and
   * dest its errors name (default: `a`, none).
   */
  #call<T>(
    syscall: string,
    code: number,
    a: string | Buffer,
    n: number[],
    decode: (bytes: Buffer | undefined, n: number) => T,
    b: string | Buffer | null = null,
    shown: { path?: string; dest?: string } = {},
  ): Promise<T> {
    const core = this.#core
    return core.begin<T>(K_CALL, syscall, decode, shown.path ?? pathText(a), undefined, (t) => core.native.call(t, code, a, b, n), undefined, shown.dest)
  }

  /** access(2) (faccessat), in the blocking lane: resolves if `mode` (F_OK, R_OK, W_OK, X_OK) is allowed. */
  access(p: PathLike, mode?: number): Promise<void> {
    try {
      const a = validatePath(p)
      const m = getValidMode(mode, F_OK)
      return this.#call('access', CALLS.access, a, [m], () => undefined)
    } catch (e) {
      return Promise.reject(e)
    }
  }

  /**
   * The names in a directory, as node:fs/promises readdir: strings in
   * `encoding` (Buffers for 'buffer'), fs.Dirent objects with
   * `withFileTypes`, and with `recursive` every name below it, relative to
   * it. Listed in the blocking lane (getdents), in the filesystem's order.
   */
  readdir(p: PathLike, options?: ReaddirOptions | BufferEncoding | 'buffer' | null): Promise<string[] | Buffer[] | nodeFs.Dirent[]> {
    try {
      const o: ReaddirOptions = typeof options === 'string' ? { encoding: options } : options ?? {}
      if (typeof o !== 'object') throw invalidArgType('options', 'one of type string or object', options)
      if (o.encoding !== 'buffer') assertEncoding(o.encoding)
      const a = validatePath(p)
      const encoding = o.encoding ?? 'utf8'
      const name = (b: Buffer): string | Buffer => (encoding === 'buffer' ? Buffer.from(b) : b.toString(encoding))
      if (o.recursive) return this.#readdirRecursive(a, name, Boolean(o.withFileTypes))
      if (!o.withFileTypes && (encoding === 'utf8' || encoding === 'utf-8')) return this.#call('scandir', CALLS.readdir, a, [], parseUtf8Names)
      if (!o.withFileTypes) return this.#list(a).then((es) => es.map((e) => name(e.name)) as string[] | Buffer[])
      return this.#list(a).then((es) => this.#dirents(pathText(a), es, name))
    } catch (e) {
      return Promise.reject(e)
    }
  }

  #list(a: string | Buffer, syscall = 'scandir'): Promise<RawEntry[]> {
    return this.#call(syscall, CALLS.readdir, a, [], parseEntries)
  }

  /**
   * A directory to read entry by entry, as node:fs/promises opendir gives:
   * `read()` (an fs.Dirent, or null at the end), `close()`, and `for await`
   * (which closes it at the end). The entries are listed when it opens (in
   * the blocking lane), so changes made while it is read do not show.
   */
  async opendir(p: PathLike, options?: { encoding?: BufferEncoding | 'buffer' | null; bufferSize?: number; recursive?: boolean }): Promise<Dir> {
    const o = options ?? {}
    if (o.bufferSize !== undefined) validateInteger(o.bufferSize, 'options.bufferSize', 1, 2 ** 32 - 1)
    const a = validatePath(p)
    const encoding = o.encoding ?? 'utf8'
    const name = (b: Buffer): string | Buffer => (encoding === 'buffer' ? Buffer.from(b) : b.toString(encoding))
    const first = await this.#list(a, 'opendir')
    const entries = o.recursive ? ((await this.#readdirRecursive(a, name, true, first)) as nodeFs.Dirent[]) : await this.#dirents(pathText(a), first, name)
    return new Dir(pathText(a), entries)
  }

  /** fs.Dirent objects for `entries` of `dir`; where the filesystem does not say the type, lstat does (as node does). */
  async #dirents(dir: string, entries: RawEntry[], name: (b: Buffer) => string | Buffer): Promise<nodeFs.Dirent[]> {
    const DirentClass = Dirent as unknown as new (name: string | Buffer, type: number, path: string) => nodeFs.Dirent
    return Promise.all(
      entries.map(async (e) => {
        let type = DIRENT_TYPE[e.type] ?? UV_DIRENT_UNKNOWN
        if (type === UV_DIRENT_UNKNOWN) {
          const st = await this.lstat(join(dir, e.name.toString('utf8')))
          type = st.isFile() ? 1 : st.isDirectory() ? 2 : st.isSymbolicLink() ? 3 : st.isFIFO() ? 4 : st.isSocket() ? 5 : st.isCharacterDevice() ? 6 : st.isBlockDevice() ? 7 : 0
        }
        return new DirentClass(name(e.name), type, dir)
      }),
    )
  }

  /** node:fs/promises' readdirRecursive: a stack of directories still to list, each name pushed as found. */
  async #readdirRecursive(a: string | Buffer, name: (b: Buffer) => string | Buffer, withFileTypes: boolean, first?: RawEntry[]): Promise<string[] | Buffer[] | nodeFs.Dirent[]> {
    const root = pathText(a)
    const stack: [string, RawEntry[]][] = [[root, first ?? (await this.#list(a))]]
    if (withFileTypes) {
      const result: nodeFs.Dirent[] = []
      while (stack.length > 0) {
        const [dir, entries] = stack.pop()!
        for (const d of await this.#dirents(dir, entries, name)) {
          result.push(d)
          if (d.isDirectory()) {
            const sub = join(dir, String(d.name))
            stack.push([sub, await this.#list(sub)])
          }
        }
      }
      return result
    }
    const result: (string | Buffer)[] = []
    while (stack.length > 0) {
      const [dir, entries] = stack.pop()!
      for (const e of entries) {
        const full = join(dir, e.name.toString('utf8'))
        const rel = relative(root, full)
        result.push(typeof name(e.name) === 'string' ? rel : Buffer.from(rel))
        let isDir = e.type === 4
        if (e.type === 0 || e.type === 10) isDir = await this.stat(full).then((s) => s.isDirectory(), () => false)
        if (isDir) stack.push([full, await this.#list(full)])
      }
    }
    return result as string[] | Buffer[]
  }

  /** readlink(2), in the blocking lane: the link's target (a Buffer with encoding 'buffer'). */
  readlink(p: PathLike, options?: { encoding?: BufferEncoding | 'buffer' | null } | BufferEncoding | 'buffer' | null): Promise<string | Buffer> {
    try {
      const o = getOptions(options, {}) as { encoding?: BufferEncoding | 'buffer' | null }
      const a = validatePath(p, 'oldPath')
      return this.#call('readlink', CALLS.readlink, a, [], nameIn(o.encoding))
    } catch (e) {
      return Promise.reject(e)
    }
  }

  /** realpath(3), in the blocking lane: the absolute path with every symlink resolved. */
  realpath(p: PathLike, options?: { encoding?: BufferEncoding | 'buffer' | null } | BufferEncoding | 'buffer' | null): Promise<string | Buffer> {
    try {
      const o = getOptions(options, {}) as { encoding?: BufferEncoding | 'buffer' | null }
      const a = validatePath(p)
      return this.#call('realpath', CALLS.realpath, a, [], nameIn(o.encoding))
    } catch (e) {
      return Promise.reject(e)
    }
  }

  /** chmod(2) (fchmodat), in the blocking lane. `mode`: a number or an octal string. */
  chmod(p: PathLike, mode: string | number): Promise<void> {
    try {
      const a = validatePath(p)
      const m = parseRequiredMode(mode)
      return this.#call('chmod', CALLS.chmod, a, [m], () => undefined)
    } catch (e) {
      return Promise.reject(e)
    }
  }

  /** chown(2) (fchownat), in the blocking lane; -1 leaves an id as it is. */
  chown(p: PathLike, uid: number, gid: number): Promise<void> {
    return this.#chown('chown', CALLS.chown, p, uid, gid)
  }

  /** lchown(2): chown of a symlink itself. */
  lchown(p: PathLike, uid: number, gid: number): Promise<void> {
    return this.#chown('lchown', CALLS.lchown, p, uid, gid)
  }

  #chown(syscall: string, code: number, p: PathLike, uid: number, gid: number): Promise<void> {
    try {
      const a = validatePath(p)
      const ids = validateIds(uid, gid)
      return this.#call(syscall, code, a, ids, () => undefined)
    } catch (e) {
      return Promise.reject(e)
    }
  }

  /** utimes: access and modification times (seconds, numeric strings or Dates), microsecond precision as libuv keeps it. */
  utimes(p: PathLike, atime: number | string | Date, mtime: number | string | Date): Promise<void> {
    return this.#utimes('utime', CALLS.utimes, p, atime, mtime)
  }

  /** lutimes: utimes of a symlink itself. */
  lutimes(p: PathLike, atime: number | string | Date, mtime: number | string | Date): Promise<void> {
    return this.#utimes('lutime', CALLS.lutimes, p, atime, mtime)
  }

  #utimes(syscall: string, code: number, p: PathLike, atime: unknown, mtime: unknown): Promise<void> {
    try {
      const a = validatePath(p)
      const times = [...toTimespec(atime), ...toTimespec(mtime)]
      return this.#call(syscall, code, a, times, () => undefined)
    } catch (e) {
      return Promise.reject(e)
    }
  }

  /** mkdtemp(3): a new directory named `prefix` and six random characters; resolves its path. */
  mkdtemp(prefix: PathLike, options?: { encoding?: BufferEncoding | 'buffer' | null } | BufferEncoding | 'buffer' | null): Promise<string | Buffer> {
    try {
      const o = getOptions(options, {}) as { encoding?: BufferEncoding | 'buffer' | null }
      const a = validatePath(prefix, 'prefix')
      return this.#call('mkdtemp', CALLS.mkdtemp, a, [], nameIn(o.encoding), null, { path: `${pathText(a)}XXXXXX` })
    } catch (e) {
      return Promise.reject(e)
    }
  }

  /** statfs(2): the filesystem's counts, as node's StatFs (bigints with `bigint`). */
  statfs(p: PathLike, options?: { bigint?: boolean }): Promise<StatFs> {
    try {
      const a = validatePath(p)
      const big = Boolean(options?.bigint)
      return this.#call('statfs', CALLS.statfs, a, [], (b) => new StatFs(b!, big))
    } catch (e) {
      return Promise.reject(e)
    }
  }

  /**
   * copyFile, as libuv makes it: `dest` gets `src`'s bytes and mode;
   * `mode` COPYFILE_EXCL refuses an existing dest, COPYFILE_FICLONE tries a
   * reflink first, COPYFILE_FICLONE_FORCE needs one. In the blocking lane,
   * with copy_file_range.
   */
  copyFile(src: PathLike, dest: PathLike, mode?: number): Promise<void> {
    try {
      const a = validatePath(src, 'src')
      const b = validatePath(dest, 'dest')
      const m = getValidMode(mode, 0)
      return this.#call('copyfile', CALLS.copyFile, a, [m], () => undefined, b, { dest: pathText(b) })
    } catch (e) {
      return Promise.reject(e)
    }
  }

  /**
   * node:fs/promises cp: copies a file, a symlink, or (with `recursive`) a
   * directory tree, with node's options (dereference, errorOnExist, filter,
   * force, mode, preserveTimestamps, verbatimSymlinks) and errors; node's
   * own algorithm over this ring's functions.
   */
  cp(src: PathLike, dest: PathLike, options?: CopyOptions): Promise<void> {
    return cp(this, src, dest, options)
  }

  /**
   * node:fs/promises rm: a file or symlink is unlinked; a directory needs
   * `recursive` (ERR_FS_EISDIR otherwise) and is removed with everything
   * in it, depth first; `force` ignores a path that does not exist.
   */
  async rm(p: PathLike, options?: RmOptions): Promise<void> {
    const a = validatePath(p)
    const o = rmOptions(options, false)
    let st: Stats
    try {
      st = await this.lstat(a)
    } catch (e) {
      if (o.force && (e as { code?: string }).code === 'ENOENT') return
      throw e
    }
    // A file too is tried again on a busy error, as node's rm does.
    if (!st.isDirectory()) return this.#retrying(o, () => this.unlink(a))
    if (!o.recursive) {
      const text = pathText(a)
      throw nodeSystemError('ERR_FS_EISDIR', { code: 'EISDIR', message: 'is a directory', path: text, syscall: 'rm', errno: 21 })
    }
    await this.#rimraf(a, o)
  }

  /**
   * node's rimraf: the tree removed depth first; a name gone meanwhile is
   * no error (see #retrying for the tries).
   */
  #rimraf(p: string | Buffer, o: Required<RmOptions>): Promise<void> {
    return this.#retrying(o, async () => {
      // A symlink (to a directory too) is removed itself, never followed.
      if ((await this.lstat(p)).isDirectory()) return this.#rmTree(p)
      return this.unlink(p)
    })
  }

  /**
   * node's rimraf's tries: `attempt` again on EBUSY, EMFILE, ENFILE,
   * ENOTEMPTY and EPERM, up to `maxRetries` times, the n-th time after
   * n * `retryDelay` ms (virtual time on a sim ring); ENOENT ends it well.
   */
  async #retrying(o: Required<RmOptions>, attempt: () => Promise<void>): Promise<void> {
    for (let retries = 0; ; ) {
      try {
        return await attempt()
      } catch (e) {
        const code = (e as { code?: string }).code ?? ''
        if (code === 'ENOENT') return
        if (!RETRY_CODES.has(code) || retries >= o.maxRetries) throw e
        retries++
        const sim = this.#ring.sim
        await (sim !== null ? sim.advance(retries * o.retryDelay) : sleep(retries * o.retryDelay))
      }
    }
  }

  async #rmTree(dir: string | Buffer): Promise<void> {
    const gone = (e: unknown): void => {
      if ((e as { code?: string }).code !== 'ENOENT') throw e
    }
    for (const e of await this.#list(dir)) {
      const full = joinName(dir, e.name)
      const isDir = e.type === 4 || (e.type === 0 && (await this.lstat(full).catch(gone))?.isDirectory())
      if (isDir) await this.#rmTree(full)
      else await this.unlink(full).catch(gone)
    }
    await this.rmdir(dir).catch(gone)
  }

  /** The whole file, as node:fs/promises readFile: a path (opened with `flag`, default 'r') or a FileHandle. */
  readFile(p: PathLike | FileHandle, options?: { encoding?: null; flag?: string | number; signal?: AbortSignal } | null): Promise<Buffer>
  readFile(p: PathLike | FileHandle, options: { encoding: BufferEncoding; flag?: string | number; signal?: AbortSignal } | BufferEncoding): Promise<string>
  readFile(p: PathLike | FileHandle, options?: WholeFileOptions | BufferEncoding | null): Promise<string | Buffer>
  async readFile(p: PathLike | FileHandle, options?: WholeFileOptions | BufferEncoding | null): Promise<string | Buffer> {
    const o = getOptions(options, { flag: 'r' })
    const encoding = (o.encoding ?? undefined) as BufferEncoding | undefined
    if (this.#isHandle(p)) return p.readFile(o as WholeFileOptions)
    checkAborted(o.signal)
    const a = validatePath(p)
    const flags = parseFlags(o.flag || 'r')
    let bytes: Buffer
    try {
      // One trip: open, fstat, the reads and close made by one call in the
      // blocking lane, as node:fs's readFile makes them (Bun's way too).
      bytes = await this.#call('open', CALLS.readFile, a, [flags], (b) => b ?? Buffer.alloc(0))
    } catch (e) {
      const errno = (e as { errno?: number }).errno ?? 0
      // Past 2 GiB: readFileHandle says so with node's error and the size.
      if (errno !== -27) throw stepError(e, ['open', 'fstat', 'read'])
      const fh = await this.#ring.open(a, flags, 0o666)
      return this.#thenClose(fh, readFileHandle(fh, o.signal, encoding))
    }
    return encoding ? bytes.toString(encoding) : bytes
  }

  /** node:fs/promises writeFile: replaces the file (flag 'w') with `data`; `flush: true` syncs it before closing. */
  async writeFile(p: PathLike | FileHandle, data: string | ArrayBufferView | WriteFileIterable, options?: WholeFileOptions | BufferEncoding | null): Promise<void> {
    const o = getOptions(options, { encoding: 'utf8', mode: 0o666, flag: 'w', flush: false })
    const flush = o.flush ?? false
    if (typeof flush !== 'boolean') throw invalidArgType('options.flush', 'of type boolean', flush)
    const bytes = writeFileData(data, o.encoding)
    if (this.#isHandle(p)) return writeFileHandle(p, bytes, o.signal, o.encoding)
    checkAborted(o.signal)
    if (ArrayBuffer.isView(bytes)) {
      // One trip: open, the writes, fsync (flush) and close made by one
      // call in the blocking lane, as node:fs's writeFile makes them.
      const a = validatePath(p)
      const flags = parseFlags(o.flag || 'w')
      const mode = parseMode(o.mode, 0o666)
      const view = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
      try {
        await this.#call('open', CALLS.writeFile, a, [flags, mode, flush ? 1 : 0], () => undefined, view)
      } catch (e) {
        throw stepError(e, ['open', 'write', 'fsync', 'close'])
      }
      return
    }
    const fh = await this.#ring.open(p, o.flag || 'w', o.mode)
    let op = writeFileHandle(fh, bytes, o.signal, o.encoding)
    if (flush) op = op.then(() => fh.sync())
    return this.#thenClose(fh, op)
  }

  /** node:fs/promises appendFile: writeFile with flag 'a'. */
  appendFile(p: PathLike | FileHandle, data: string | ArrayBufferView | WriteFileIterable, options?: WholeFileOptions | BufferEncoding | null): Promise<void> {
    try {
      const o = { ...getOptions(options, { encoding: 'utf8', mode: 0o666, flag: 'a' }) }
      o.flag = o.flag || 'a'
      return this.writeFile(p, data, o)
    } catch (e) {
      return Promise.reject(e)
    }
  }

  /** node:fs/promises truncate: opens the path 'r+', truncates to `len` (default 0), closes. */
  async truncate(p: PathLike, len: number = 0): Promise<void> {
    validateInteger(len, 'len')
    const fh = await this.#ring.open(p, 'r+')
    return this.#thenClose(fh, fh.truncate(len))
  }

  #isHandle(p: unknown): p is FileHandle {
    return p !== null && typeof p === 'object' && typeof (p as FileHandle).readFile === 'function' && typeof (p as FileHandle).fd === 'number'
  }

  /**
   * node's handleFdClose: the handle is closed whatever `op` does; the
   * result is op's, or op's error (a close error only if op succeeded).
   */
  async #thenClose<T>(fh: FileHandle, op: Promise<T>): Promise<T> {
    let value: T
    try {
      value = await op
    } catch (e) {
      await fh.close().catch(() => undefined)
      throw e
    }
    await fh.close()
    return value
  }
}
