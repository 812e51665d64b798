// cp, as node:fs/promises makes it (node's lib/internal/fs/cp/cp.js, itself
// from fs-extra), over one ring's functions instead of node:fs: the same
// walk, checks, options and errors (node's SystemErrors ERR_FS_CP_*).

import * as path from 'node:path'
import { invalidArgType, nodeSystemError, withCode } from '../errors'
import type { RingFs } from './paths'
import { getValidMode } from './options'
import type { BigIntStats, Stats } from '../stats'
import { pathText, validatePath } from '../validators'

// Taken at load, like everything ringline takes from Node.
const { dirname, isAbsolute, join, parse, resolve, sep } = path

const EEXIST = 17
const EISDIR = 21
const EINVAL = 22
const ENOTDIR = 20

export interface CopyOptions {
  dereference?: boolean
  errorOnExist?: boolean
  filter?: (source: string, destination: string) => boolean | Promise<boolean>
  force?: boolean
  mode?: number
  preserveTimestamps?: boolean
  recursive?: boolean
  verbatimSymlinks?: boolean
}

type Options = Required<Omit<CopyOptions, 'filter'>> & { filter?: CopyOptions['filter'] }

const defaults: Options = {
  dereference: false,
  errorOnExist: false,
  force: true,
  mode: 0,
  preserveTimestamps: false,
  recursive: false,
  verbatimSymlinks: false,
}

/** node's validateCpOptions. */
function validateOptions(options: unknown): Options {
  if (options === undefined) return { ...defaults }
  if (options === null || typeof options !== 'object' || Array.isArray(options)) throw invalidArgType('options', 'of type object', options)
  const o = { ...defaults, ...(options as CopyOptions) } as Options
  for (const k of ['dereference', 'errorOnExist', 'force', 'preserveTimestamps', 'recursive', 'verbatimSymlinks'] as const) {
    if (typeof o[k] !== 'boolean') throw invalidArgType(`options.${k}`, 'of type boolean', o[k])
  }
  o.mode = getValidMode(o.mode, 0)
  if (o.dereference && o.verbatimSymlinks) {
    throw withCode(new TypeError('Option "dereference" cannot be used in combination with option "verbatimSymlinks"'), 'ERR_INCOMPATIBLE_OPTION_PAIR')
  }
  if (o.filter !== undefined && typeof o.filter !== 'function') throw invalidArgType('options.filter', 'of type function', o.filter)
  return o
}

type AnyStats = Stats | BigIntStats

function areIdentical(src: AnyStats, dest: AnyStats): boolean {
  return Boolean(dest.ino && dest.dev && dest.ino === src.ino && dest.dev === src.dev)
}

const toParts = (p: string): string[] => resolve(p).split(sep).filter(Boolean)

/** Whether `dest` is inside `src`, by the path strings. */
function isSrcSubdir(src: string, dest: string): boolean {
  const d = toParts(dest)
  return toParts(src).every((cur, i) => d[i] === cur)
}

const einval = (message: string, p: string): Error => nodeSystemError('ERR_FS_CP_EINVAL', { message, path: p, syscall: 'cp', errno: EINVAL, code: 'EINVAL' })

/** node:fs/promises cp(src, dest, options) on `fs`. */
export async function cp(fs: RingFs, src: unknown, dest: unknown, options?: CopyOptions): Promise<void> {
  const opts = validateOptions(options)
  const s = pathText(validatePath(src, 'src'))
  const d = pathText(validatePath(dest, 'dest'))

  const getStats = (a: string, b: string): Promise<[BigIntStats, BigIntStats | null]> => {
    const statFn = (f: string): Promise<BigIntStats> => (opts.dereference ? fs.stat(f, { bigint: true }) : fs.lstat(f, { bigint: true }))
    return Promise.all([
      statFn(a),
      statFn(b).then(undefined, (err: { code?: string }) => {
        if (err.code === 'ENOENT') return null
        throw err
      }),
    ])
  }

  const checkPaths = async (a: string, b: string): Promise<{ destStat?: BigIntStats | null; srcStat?: BigIntStats; skipped: boolean }> => {
    if (opts.filter && !(await opts.filter(a, b))) return { skipped: true }
    const [srcStat, destStat] = await getStats(a, b)
    if (destStat) {
      if (areIdentical(srcStat, destStat)) throw einval('src and dest cannot be the same', b)
      if (srcStat.isDirectory() && !destStat.isDirectory()) {
        throw nodeSystemError('ERR_FS_CP_DIR_TO_NON_DIR', { message: `cannot overwrite non-directory ${b} with directory ${a}`, path: b, syscall: 'cp', errno: EISDIR, code: 'EISDIR' })
      }
      if (!srcStat.isDirectory() && destStat.isDirectory()) {
        throw nodeSystemError('ERR_FS_CP_NON_DIR_TO_DIR', { message: `cannot overwrite directory ${b} with non-directory ${a}`, path: b, syscall: 'cp', errno: ENOTDIR, code: 'ENOTDIR' })
      }
    }
    if (srcStat.isDirectory() && isSrcSubdir(a, b)) throw einval(`cannot copy ${a} to a subdirectory of self ${b}`, b)
    return { srcStat, destStat, skipped: false }
  }

  const checkParentPaths = async (a: string, srcStat: AnyStats, b: string): Promise<void> => {
    const srcParent = resolve(dirname(a))
    const destParent = resolve(dirname(b))
    if (destParent === srcParent || destParent === parse(destParent).root) return
    let destStat: BigIntStats
    try {
      destStat = await fs.stat(destParent, { bigint: true })
    } catch (err) {
      if ((err as { code?: string }).code === 'ENOENT') return
      throw err
    }
    if (areIdentical(srcStat, destStat)) throw einval(`cannot copy ${a} to a subdirectory of self ${b}`, b)
    return checkParentPaths(a, srcStat, destParent)
  }

  const setDestMode = (b: string, mode: number): Promise<void> => fs.chmod(b, mode)

  const copyFile = async (srcStat: Stats, a: string, b: string): Promise<void> => {
    await fs.copyFile(a, b, opts.mode)
    if (opts.preserveTimestamps) {
      // Writable first, or utimes fails where it must open the file.
      if ((srcStat.mode & 0o200) === 0) await setDestMode(b, srcStat.mode | 0o200)
      // The first stat's atime moved when the copy read it.
      const updated = await fs.stat(a)
      await fs.utimes(b, updated.atime, updated.mtime)
    }
    return setDestMode(b, srcStat.mode)
  }

  const onFile = async (srcStat: Stats, destStat: AnyStats | null | undefined, a: string, b: string): Promise<void> => {
    if (!destStat) return copyFile(srcStat, a, b)
    if (opts.force) {
      await fs.unlink(b)
      return copyFile(srcStat, a, b)
    }
    if (opts.errorOnExist) {
      throw nodeSystemError('ERR_FS_CP_EEXIST', { message: `${b} already exists`, path: b, syscall: 'cp', errno: EEXIST, code: 'EEXIST' })
    }
  }

  const copyDir = async (a: string, b: string): Promise<void> => {
    const dir = await fs.opendir(a)
    for await (const { name } of dir) {
      const srcItem = join(a, String(name))
      const destItem = join(b, String(name))
      const { destStat, skipped } = await checkPaths(srcItem, destItem)
      if (!skipped) await getStatsForCopy(destStat, srcItem, destItem)
    }
  }

  const onDir = async (srcStat: Stats, destStat: AnyStats | null | undefined, a: string, b: string): Promise<void> => {
    if (destStat) return copyDir(a, b)
    await fs.mkdir(b)
    await copyDir(a, b)
    return setDestMode(b, srcStat.mode)
  }

  const onLink = async (destStat: AnyStats | null | undefined, a: string, b: string): Promise<void> => {
    let resolvedSrc = String(await fs.readlink(a))
    if (!opts.verbatimSymlinks && !isAbsolute(resolvedSrc)) resolvedSrc = resolve(dirname(a), resolvedSrc)
    if (!destStat) return fs.symlink(resolvedSrc, b)
    let resolvedDest: string
    try {
      resolvedDest = String(await fs.readlink(b))
    } catch (err) {
      // dest is a file or directory: symlink fails on it as it should.
      if ((err as { code?: string }).code === 'EINVAL' || (err as { code?: string }).code === 'UNKNOWN') return fs.symlink(resolvedSrc, b)
      throw err
    }
    if (!isAbsolute(resolvedDest)) resolvedDest = resolve(dirname(b), resolvedDest)
    if (isSrcSubdir(resolvedSrc, resolvedDest)) throw einval(`cannot copy ${resolvedSrc} to a subdirectory of self ${resolvedDest}`, b)
    // Unlinking dest would remove src's contents when src is inside it.
    const srcStat = await fs.stat(a)
    if (srcStat.isDirectory() && isSrcSubdir(resolvedDest, resolvedSrc)) {
      throw nodeSystemError('ERR_FS_CP_SYMLINK_TO_SUBDIRECTORY', { message: `cannot overwrite ${resolvedDest} with ${resolvedSrc}`, path: b, syscall: 'cp', errno: EINVAL, code: 'EINVAL' })
    }
    await fs.unlink(b)
    return fs.symlink(resolvedSrc, b)
  }

  const getStatsForCopy = async (destStat: AnyStats | null | undefined, a: string, b: string): Promise<void> => {
    const srcStat = opts.dereference ? await fs.stat(a) : await fs.lstat(a)
    if (srcStat.isDirectory() && opts.recursive) return onDir(srcStat, destStat, a, b)
    if (srcStat.isDirectory()) {
      throw nodeSystemError('ERR_FS_EISDIR', { message: `${a} is a directory (not copied)`, path: a, syscall: 'cp', errno: EISDIR, code: 'EISDIR' })
    }
    if (srcStat.isFile() || srcStat.isCharacterDevice() || srcStat.isBlockDevice()) return onFile(srcStat, destStat, a, b)
    if (srcStat.isSymbolicLink()) return onLink(destStat, a, b)
    const kind = srcStat.isSocket() ? (['ERR_FS_CP_SOCKET', 'cannot copy a socket file'] as const) : srcStat.isFIFO() ? (['ERR_FS_CP_FIFO_PIPE', 'cannot copy a FIFO pipe'] as const) : (['ERR_FS_CP_UNKNOWN', 'cannot copy an unknown file type'] as const)
    throw nodeSystemError(kind[0], { message: `${kind[1]}: ${b}`, path: b, syscall: 'cp', errno: EINVAL, code: 'EINVAL' })
  }

  const { srcStat, destStat, skipped } = await checkPaths(s, d)
  if (skipped) return
  await checkParentPaths(s, srcStat!, d)
  const destParent = dirname(d)
  const parentExists = await fs.stat(destParent).then(
    () => true,
    (err: { code?: string }) => {
      if (err.code === 'ENOENT') return false
      throw err
    },
  )
  if (!parentExists) await fs.mkdir(destParent, { recursive: true })
  return getStatsForCopy(destStat, s, d)
}
