// ringline/fs against node:fs/promises, side by side: each scenario runs
// on both, each in a directory of its own with the same contents, and what
// each call gives (its result, or its error's name, code, errno, syscall,
// path, dest and message, with the directory written as <dir>) must match,
// as must the directory tree afterwards. On sim, node's side stays on the
// real disk (it is the reference) and ringline's runs on the sim ring's
// disk, in a directory of the same name and contents.
import test from 'ava'
import { execFileSync, spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as fsp from 'node:fs/promises'
import * as path from 'node:path'
import * as rfs from '../fs'
import { Ring } from '../index'
import { makeTmpDir, removeTmpDir } from './helpers'
import { SIM, disk, realDisk, realKernelOnly, type TestDisk } from './sim-setup'

// Real, for node's side; ringline's side makes the same names on its disk.
const root = makeTmpDir('fs-paths')
test.after.always(() => removeTmpDir(root))

/** `path.join(root, name)`, made on the disk the default ring sees. */
async function ringDir(name: string): Promise<string> {
  const dir = path.join(root, name)
  await disk().mkdir(dir, { recursive: true })
  return dir
}

/** What both modules have in common, loosely typed (bad arguments on purpose). */
type Api = Record<string, (...args: unknown[]) => Promise<unknown>>
let counter = 0

async function tree(d: TestDisk, dir: string): Promise<string[]> {
  const out: string[] = []
  const walk = async (at: string, rel: string): Promise<void> => {
    for (const name of (await d.readdir(at)).sort((a, b) => a.localeCompare(b))) {
      const p = path.join(at, name)
      const r = `${rel}${name}`
      const st = await d.lstat(p)
      if (st.isSymbolicLink()) out.push(`${r} -> ${(await d.readlink(p)).replace(dir, '<dir>')}`)
      else if (st.isDirectory()) {
        out.push(`${r}/ ${(st.mode & 0o777).toString(8)}`)
        await walk(p, `${r}/`)
      } else out.push(`${r} ${(await d.readFile(p)).toString('base64')} ${(st.mode & 0o777).toString(8)} nlink=${st.nlink}`)
    }
  }
  await walk(dir, '')
  // mkdtemp's names are random on each side.
  return out.map((l) => l.replace(/tmp-[A-Za-z0-9]{6}/g, 'tmp-XXXXXX'))
}

function shape(v: unknown, dir: string): unknown {
  const clean = (s: string): string => s.split(dir).join('<dir>')
  if (v instanceof Error) {
    const e = v as Error & Record<string, unknown>
    return { name: e.name, code: e.code, errno: e.errno, syscall: e.syscall, path: typeof e.path === 'string' ? clean(e.path) : e.path, dest: typeof e.dest === 'string' ? clean(e.dest) : e.dest, message: clean(e.message) }
  }
  if (v instanceof fs.Stats) {
    const s = v as fs.Stats
    return { stats: true, isFile: s.isFile(), isDirectory: s.isDirectory(), isSymbolicLink: s.isSymbolicLink(), size: s.size, mode: s.mode, nlink: s.nlink }
  }
  if (v !== null && typeof v === 'object' && typeof (v as { isFile?: unknown }).isFile === 'function') {
    const s = v as { isFile(): boolean; size: unknown; mode: unknown; mtimeNs?: unknown }
    return { stats: 'other', isFile: s.isFile(), size: s.size, mode: s.mode, mtimeNs: typeof s.mtimeNs }
  }
  if (typeof v === 'string') return clean(v)
  if (Buffer.isBuffer(v)) return `<Buffer ${v.toString('base64')}>`
  return v
}

/** Runs `steps` against both modules in fresh copies of `setup`; compares every step's outcome and the final trees. */
async function sideBySide(t: import('ava').ExecutionContext, setup: Setup, steps: (api: Api, dir: string, d: TestDisk) => Promise<unknown>[] | Promise<Promise<unknown>[]>): Promise<void> {
  const got: Record<string, { outcomes: unknown[]; tree: string[] }> = {}
  const n = String(counter++).padStart(4, '0')
  for (const [name, api, d] of [['node', fsp, realDisk], ['ringline', rfs, disk()]] as const) {
    // Names of the same length on both sides: a symlink's size is its target's length.
    const dir = path.join(root, `${n}-${name === 'node' ? 'node' : 'ring'}`)
    await d.mkdir(dir, { recursive: SIM })
    await setup(d, dir)
    const outcomes: unknown[] = []
    for (const p of await steps(api as unknown as Api, dir, d)) {
      try {
        outcomes.push({ ok: shape(await p, dir) })
      } catch (e) {
        outcomes.push({ err: shape(e, dir) })
      }
    }
    got[name] = { outcomes, tree: await tree(d, dir) }
  }
  t.deepEqual(got.ringline, got.node)
}

// Steps run one after another (each awaited before the next starts).
function seq(f: (api: Api, dir: string, d: TestDisk) => (() => Promise<unknown>)[]): (api: Api, dir: string, d: TestDisk) => Promise<Promise<unknown>[]> {
  return async (api, dir, d) => {
    const out: Promise<unknown>[] = []
    for (const step of f(api, dir, d)) {
      const p = step()
      p.catch(() => undefined)
      await p.catch(() => undefined)
      out.push(p)
    }
    return out
  }
}

/** Makes a scenario's starting contents in `dir` on disk `d`. */
type Setup = (d: TestDisk, dir: string) => Promise<void>

const files: Setup = async (d, dir) => {
  await d.writeFile(path.join(dir, 'a'), 'alpha')
  await d.mkdir(path.join(dir, 'sub'))
  await d.writeFile(path.join(dir, 'sub', 'b'), 'beta')
}

test('stat and lstat: files, directories, symlinks, missing names, bigint', async (t) => {
  await sideBySide(t, files, seq((api, dir) => [
    () => api.stat(path.join(dir, 'a')),
    () => api.stat(path.join(dir, 'sub')),
    () => api.stat(path.join(dir, 'nope')),
    () => api.stat(path.join(dir, 'a', 'x')),
    () => api.symlink(path.join(dir, 'a'), path.join(dir, 'ln')),
    () => api.lstat(path.join(dir, 'ln')),
    () => api.stat(path.join(dir, 'ln')),
    () => api.stat(path.join(dir, 'a'), { bigint: true }),
    () => api.lstat(path.join(dir, 'missing')),
    () => api.stat(Buffer.from(path.join(dir, 'a'))),
    () => api.stat(new URL(`file://${path.join(dir, 'a')}`)),
    () => api.stat(42),
    () => api.stat(`${dir}/a\u0000`),
  ]))
})

test('unlink, rmdir, rename, link: results and errors, path and dest', async (t) => {
  await sideBySide(t, files, seq((api, dir) => [
    () => api.rename(path.join(dir, 'a'), path.join(dir, 'a2')),
    () => api.rename(path.join(dir, 'nope'), path.join(dir, 'x')),
    () => api.rename(path.join(dir, 'sub'), path.join(dir, 'a2')),
    () => api.link(path.join(dir, 'a2'), path.join(dir, 'hard')),
    () => api.link(path.join(dir, 'a2'), path.join(dir, 'hard')),
    () => api.link(path.join(dir, 'nope'), path.join(dir, 'h2')),
    () => api.symlink('relative-target', path.join(dir, 'rel')),
    () => api.symlink('x', path.join(dir, 'rel')),
    () => api.unlink(path.join(dir, 'hard')),
    () => api.unlink(path.join(dir, 'sub')),
    () => api.unlink(path.join(dir, 'nope')),
    () => api.rmdir(path.join(dir, 'sub')),
    () => api.rmdir(path.join(dir, 'a2')),
    () => api.unlink(path.join(dir, 'sub', 'b')),
    () => api.rmdir(path.join(dir, 'sub')),
    () => api.rename(42, 'x'),
    () => api.rename('x', {}),
    () => api.link('x', null),
  ]))
})

test('mkdir: mode, recursive (what it returns), and its errors', async (t) => {
  await sideBySide(t, files, seq((api, dir) => [
    () => api.mkdir(path.join(dir, 'm'), 0o700),
    () => api.mkdir(path.join(dir, 'm')),
    () => api.mkdir(path.join(dir, 'x', 'y')),
    () => api.mkdir(path.join(dir, 'r1', 'r2', 'r3'), { recursive: true }),
    () => api.mkdir(path.join(dir, 'r1', 'r2', 'r3'), { recursive: true }),
    () => api.mkdir(path.join(dir, 'r1', 'r2', 'r4'), { recursive: true, mode: '750' }),
    () => api.mkdir(path.join(dir, 'a'), { recursive: true }),
    () => api.mkdir(path.join(dir, 'a', 'b', 'c'), { recursive: true }),
    () => api.mkdir(path.join(dir, 'sub'), { recursive: true }),
    () => api.mkdir(path.join(dir, 'q'), { recursive: 'yes' }),
    () => api.mkdir(path.join(dir, 'q'), 'rwx'),
  ]))
})

test('readFile, writeFile, appendFile, truncate by path: flags, encodings, flush, errors', async (t) => {
  await sideBySide(t, files, seq((api, dir) => [
    () => api.readFile(path.join(dir, 'a')),
    () => api.readFile(path.join(dir, 'a'), 'utf8'),
    () => api.readFile(path.join(dir, 'a'), { encoding: 'base64' }),
    () => api.readFile(path.join(dir, 'nope')),
    () => api.readFile(path.join(dir, 'sub')),
    () => api.writeFile(path.join(dir, 'w'), 'written'),
    () => api.writeFile(path.join(dir, 'w'), Buffer.from('over')),
    // (A device: a real kernel's. Not on sim, nor /proc below.)
    ...(SIM ? [] : [() => api.writeFile('/dev/null', 'not a regular file: nothing to truncate')]),
    () => api.writeFile(path.join(dir, 'w2'), 'x', { flag: 'wx', mode: 0o600 }),
    () => api.writeFile(path.join(dir, 'w2'), 'y', { flag: 'wx' }),
    () => api.writeFile(path.join(dir, 'w3'), ['a', 'b', Buffer.from('c')], { flush: true }),
    () => api.appendFile(path.join(dir, 'w'), ' more'),
    () => api.appendFile(path.join(dir, 'new'), 'fresh', 'latin1'),
    () => api.writeFile(path.join(dir, 'nodir', 'f'), 'x'),
    () => api.writeFile(path.join(dir, 'w4'), 42),
    () => api.readFile(path.join(dir, 'w'), { flag: 'a+' }),
    () => api.truncate(path.join(dir, 'w'), 3),
    () => api.readFile(path.join(dir, 'w'), 'utf8'),
    () => api.truncate(path.join(dir, 'w')),
    () => api.truncate(path.join(dir, 'nope')),
    () => api.readFile(path.join(dir, 'a'), { signal: AbortSignal.abort() }),
    () => api.writeFile(path.join(dir, 'big'), Buffer.alloc(1_500_000, 7)).then(() => api.readFile(path.join(dir, 'big'))).then((b) => [(b as Buffer).length, (b as Buffer).every((x) => x === 7)]),
    () => api.writeFile(path.join(dir, 'sixtyfour'), Buffer.alloc(65536, 1)).then(() => api.readFile(path.join(dir, 'sixtyfour'), 'base64')).then((s) => (s as string).length),
    () => api.writeFile(path.join(dir, 'empty'), '').then(() => api.readFile(path.join(dir, 'empty'), 'utf8')),
    ...(SIM ? [] : [() => api.readFile('/proc/self/status', 'utf8').then((s) => (s as string).startsWith('Name:'))]),
  ]))
})

realKernelOnly('a FIFO, written by a child process')('readFile: a pipe whose writer pauses is read to its end', async (t) => {
  const dir = path.join(root, 'readfile-pipe')
  fs.mkdirSync(dir, { recursive: true })
  const fifo = path.join(dir, 'fifo')
  execFileSync('mkfifo', [fifo])
  // The writer sends a little, pauses (a short read, not the end), sends
  // 100 KB more, and closes.
  const writer = spawn(process.execPath, ['-e', `const fs = require('fs'); const fd = fs.openSync(${JSON.stringify(fifo)}, 'w'); fs.writeSync(fd, 'first '); setTimeout(() => { fs.writeSync(fd, Buffer.alloc(100000, 120)); fs.closeSync(fd) }, 50)`], { stdio: 'inherit' })
  const got = await rfs.readFile(fifo)
  await new Promise((resolve) => writer.on('exit', resolve))
  t.is(got.length, 100_006)
  t.is(got.subarray(0, 6).toString(), 'first ')
  t.true(got.subarray(6).every((b) => b === 120))
})

test('readFile: more files at once than fixed slots; sizes around each read', async (t) => {
  const dir = await ringDir('readfile-rounds')
  const sizes = [0, 1, 4096, 32768, 32769, 65536, 65537, 200_000]
  const names: string[] = []
  for (let i = 0; i < 400; i++) {
    const p = path.join(dir, `f${i}`)
    await disk().writeFile(p, Buffer.alloc(sizes[i % sizes.length], i % 251))
    names.push(p)
  }
  const all = await Promise.all(names.map((p) => rfs.readFile(p)))
  all.forEach((b, i) => t.true(b.equals(Buffer.alloc(sizes[i % sizes.length], i % 251)), `file ${i}`))
})

test('ring.fs: the same functions on a ring of your own, on both engines', async (t) => {
  for (const backend of ['io_uring', 'mio'] as const) {
    let ring: Ring
    try {
      ring = new Ring({ backend })
    } catch {
      t.is(backend, 'io_uring', 'only io_uring may be missing')
      continue
    }
    const dir = path.join(root, `ring-${backend}`)
    await ring.fs.mkdir(path.join(dir, 'x', 'y'), { recursive: true })
    await ring.fs.writeFile(path.join(dir, 'x', 'y', 'f'), 'on a ring')
    t.is(await ring.fs.readFile(path.join(dir, 'x', 'y', 'f'), 'utf8'), 'on a ring')
    t.true((await ring.fs.stat(path.join(dir, 'x'))).isDirectory())
    await ring.fs.rename(path.join(dir, 'x', 'y', 'f'), path.join(dir, 'g'))
    await ring.fs.unlink(path.join(dir, 'g'))
    await ring.fs.rmdir(path.join(dir, 'x', 'y'))
    t.deepEqual(fs.readdirSync(dir), ['x'])
    t.is(ring.stats().inFlight, 0)
    await ring.close()
  }
})

test('rmdir with recursive (deprecated, as rm) and rm retry options: trees, symlinks, files, missing paths, bad options', async (t) => {
  await sideBySide(t, treeSetup, seq((api, dir) => [
    () => api.rmdir(path.join(dir, 'dirlink'), { recursive: true }),
    () => api.rmdir(path.join(dir, 'a'), { recursive: true }),
    () => api.rmdir(path.join(dir, 'nope'), { recursive: true }),
    () => api.rmdir(path.join(dir, 'sub'), { recursive: true, maxRetries: 2, retryDelay: 1 }),
    () => api.rmdir(path.join(dir, 'sub'), { recursive: 1 as unknown as boolean }),
    () => api.rmdir(path.join(dir, 'sub'), { retryDelay: -1 }),
    () => api.rm(path.join(dir, 'a'), { maxRetries: 'x' as unknown as number }),
    () => api.rm(path.join(dir, 'a'), { maxRetries: 1.5 }),
    () => api.rm(path.join(dir, 'a'), { maxRetries: 3, retryDelay: 1 }),
  ]))
})

/** Sorts what readdir gave (the filesystem's order differs between two directories). */
async function sorted(p: Promise<unknown>): Promise<unknown> {
  const v = await p
  if (!Array.isArray(v)) return v
  return v
    .map((x) => (x instanceof fs.Dirent ? { name: String(x.name), file: x.isFile(), dir: x.isDirectory(), link: x.isSymbolicLink(), parent: typeof x.parentPath, dirent: true } : Buffer.isBuffer(x) ? `<Buffer ${x.toString()}>` : x))
    .sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)))
}

const treeSetup: Setup = async (d, dir) => {
  await files(d, dir)
  await d.mkdir(path.join(dir, 'sub', 'deep', 'er'), { recursive: true })
  await d.writeFile(path.join(dir, 'sub', 'deep', 'er', 'z'), 'zed')
  await d.symlink('a', path.join(dir, 'ln'))
  await d.symlink('sub', path.join(dir, 'dirlink'))
}

test('readdir: names, encodings, withFileTypes (fs.Dirent), recursive, errors', async (t) => {
  await sideBySide(t, treeSetup, seq((api, dir) => [
    () => sorted(api.readdir(dir)),
    () => sorted(api.readdir(dir, 'buffer')),
    () => sorted(api.readdir(dir, { encoding: 'hex' })),
    () => sorted(api.readdir(dir, { withFileTypes: true })),
    () => sorted(api.readdir(dir, { recursive: true })),
    () => sorted(api.readdir(dir, { recursive: true, withFileTypes: true })),
    () => api.readdir(path.join(dir, 'nope')),
    () => api.readdir(path.join(dir, 'a')),
    () => api.readdir(dir, { encoding: 'bogus' }),
  ]))
  const ents = (await rfs.readdir(root, { withFileTypes: true })) as fs.Dirent[]
  t.true(ents.every((d) => d instanceof fs.Dirent), 'entries are fs.Dirent')
})

test('access, readlink, realpath, chmod, FileHandle.chmod: results and errors', async (t) => {
  await sideBySide(t, treeSetup, seq((api, dir) => [
    () => api.access(path.join(dir, 'a')),
    () => api.access(path.join(dir, 'a'), fs.constants.R_OK | fs.constants.W_OK),
    () => api.access(path.join(dir, 'nope')),
    () => api.access(path.join(dir, 'a'), 9),
    () => api.access(path.join(dir, 'a'), 'r'),
    () => api.access(path.join(dir, 'a'), 1.5),
    () => api.access(path.join(dir, 'a'), 2 ** 31),
    () => api.access(path.join(dir, 'a'), null),
    () => api.readlink(path.join(dir, 'ln')),
    () => api.readlink(path.join(dir, 'ln'), 'buffer'),
    () => api.readlink(path.join(dir, 'a')),
    () => api.realpath(path.join(dir, 'dirlink', 'deep')),
    () => api.realpath(path.join(dir, 'nope')),
    () => api.chmod(path.join(dir, 'a'), 0o600),
    () => api.chmod(path.join(dir, 'sub'), '711'),
    () => api.chmod(path.join(dir, 'nope'), 0o600),
    () => api.chmod(path.join(dir, 'a')),
    async () => {
      const fh = await (api.open as (p: string, f: string) => Promise<{ chmod(m: number): Promise<void>; close(): Promise<void> }>)(path.join(dir, 'sub', 'b'), 'r')
      try {
        await fh.chmod(0o604)
      } finally {
        await fh.close()
      }
    },
  ]))
})

test('rm: files, links, directories (recursive), force, and ERR_FS_EISDIR', async (t) => {
  await sideBySide(t, treeSetup, seq((api, dir) => [
    () => api.rm(path.join(dir, 'a')),
    () => api.rm(path.join(dir, 'a')),
    () => api.rm(path.join(dir, 'a'), { force: true }),
    () => api.rm(path.join(dir, 'dirlink')),
    () => api.rm(path.join(dir, 'sub')),
    () => api.rm(path.join(dir, 'sub'), { recursive: true }),
    () => api.rm(path.join(dir, 'x'), { recursive: 'yes' }),
  ]))
})

test('chown, lchown, utimes, lutimes, FileHandle chown/utimes: results and errors', async (t) => {
  const uid = process.getuid?.() ?? 0
  const gid = process.getgid?.() ?? 0
  await sideBySide(t, treeSetup, seq((api, dir, d) => [
    () => api.chown(path.join(dir, 'a'), uid, gid),
    () => api.chown(path.join(dir, 'a'), -1, -1),
    () => api.chown(path.join(dir, 'nope'), uid, gid),
    () => api.chown(path.join(dir, 'a'), 'x', gid),
    () => api.chown(path.join(dir, 'a'), -2, gid),
    () => api.lchown(path.join(dir, 'ln'), uid, gid),
    () => api.utimes(path.join(dir, 'a'), 1_600_000_000.1234567, new Date(1_700_000_000_123)),
    () => api.stat(path.join(dir, 'a'), { bigint: true }).then((s) => [String((s as unknown as { atimeNs: bigint }).atimeNs), String((s as unknown as { mtimeNs: bigint }).mtimeNs)]),
    () => api.utimes(path.join(dir, 'a'), '1500000000', 1_500_000_000),
    () => api.utimes(path.join(dir, 'a'), {}, 1),
    () => api.utimes(path.join(dir, 'nope'), 1, 1),
    () => api.lutimes(path.join(dir, 'ln'), 1_400_000_000, 1_400_000_000),
    () => api.lstat(path.join(dir, 'ln'), { bigint: true }).then((s) => String((s as unknown as { mtimeNs: bigint }).mtimeNs)),
    async () => {
      const fh = await (api.open as (p: string, f: string) => Promise<{ chown(u: number, g: number): Promise<void>; utimes(a: number, m: number): Promise<void>; close(): Promise<void> }>)(path.join(dir, 'sub', 'b'), 'r+')
      try {
        await fh.chown(uid, gid)
        await fh.utimes(1_300_000_000.5, 1_300_000_001)
      } finally {
        await fh.close()
      }
      return (await d.stat(path.join(dir, 'sub', 'b'))).mtimeMs
    },
  ]))
})

test('mkdtemp, statfs, copyFile: results and errors', async (t) => {
  await sideBySide(t, treeSetup, seq((api, dir, d) => [
    () => api.mkdtemp(path.join(dir, 'tmp-')).then(async (p) => /^.*tmp-[A-Za-z0-9]{6}$/.test(String(p)) && (await d.stat(String(p))).isDirectory()),
    () => api.mkdtemp(path.join(dir, 'nope', 'x-')).catch((e: Error & { code?: string }) => `${e.code} ${/mkdtemp '.*nope\/x-.{6}'$/.test(e.message)}`),
    () => api.mkdtemp(42),
    () => api.statfs(dir).then((s) => Object.keys(s as object).join(',') + (s as { constructor: { name: string } }).constructor.name),
    () => api.statfs(dir, { bigint: true }).then((s) => typeof (s as { bsize: unknown }).bsize),
    () => api.statfs(path.join(dir, 'nope')),
    () => api.copyFile(path.join(dir, 'a'), path.join(dir, 'copy')),
    () => api.copyFile(path.join(dir, 'a'), path.join(dir, 'copy'), fs.constants.COPYFILE_EXCL),
    () => api.copyFile(path.join(dir, 'sub', 'b'), path.join(dir, 'copy')),
    () => api.copyFile(path.join(dir, 'nope'), path.join(dir, 'c2')),
    () => api.copyFile(path.join(dir, 'a'), path.join(dir, 'a')),
    () => api.copyFile(path.join(dir, 'a'), path.join(dir, 'c3'), 8),
    () => api.copyFile(path.join(dir, 'a'), path.join(dir, 'c4'), fs.constants.COPYFILE_FICLONE),
  ]))
  const big = path.join(await ringDir('big'), 'src')
  await disk().writeFile(big, Buffer.alloc(3 << 20, 7))
  await rfs.copyFile(big, `${big}.copy`)
  t.true((await disk().readFile(`${big}.copy`)).equals(Buffer.alloc(3 << 20, 7)), 'a 3 MiB copy is whole')
})

test('opendir: read, for await, close, ERR_DIR_CLOSED, recursive; watch is node\'s own', async (t) => {
  await sideBySide(t, treeSetup, seq((api, dir) => [
    async () => {
      const d = (await api.opendir(dir)) as unknown as { path: string; read(): Promise<fs.Dirent | null>; close(): Promise<void> }
      const names: string[] = []
      for (let e = await d.read(); e !== null; e = await d.read()) names.push(`${String(e.name)}:${e.isDirectory()}`)
      await d.close()
      const again = await d.read().then(() => 'read', (e: Error & { code?: string }) => e.code)
      const twice = await d.close().then(() => 'closed', (e: Error & { code?: string }) => e.code)
      return [d.path === dir, names.sort(), again, twice]
    },
    () => api.opendir(path.join(dir, 'nope')),
    () => api.opendir(path.join(dir, 'a')),
  ]))
  // Recursive: node 20's own Dir fails this (ERR_DIR_CLOSED from for await),
  // so against what node's readdir({ recursive, withFileTypes }) lists.
  // (node's list from the real disk; on sim, ringline's from the same tree on its own.)
  const dir = path.join(root, 'opendir-recursive')
  fs.mkdirSync(dir)
  await treeSetup(realDisk, dir)
  if (SIM) await treeSetup(disk(), await ringDir('opendir-recursive'))
  const names: string[] = []
  for await (const e of (await rfs.opendir(dir, { recursive: true })) as unknown as AsyncIterable<fs.Dirent>) names.push(`${e.parentPath}/${String(e.name)}`)
  const want = ((await fsp.readdir(dir, { recursive: true, withFileTypes: true })) as fs.Dirent[]).map((e) => `${e.parentPath}/${String(e.name)}`)
  t.deepEqual(names.sort(), want.sort())
  t.is(rfs.watch, fsp.watch, "watch is node:fs/promises' own")
  await t.throwsAsync(rfs.opendir(root, { bufferSize: 0 }), { code: 'ERR_OUT_OF_RANGE' })
})

test('cp: files, trees (recursive), symlinks, filter, force/errorOnExist, preserveTimestamps, and its errors', async (t) => {
  await sideBySide(t, treeSetup, seq((api, dir, d) => [
    () => api.cp(path.join(dir, 'a'), path.join(dir, 'a-copy')),
    () => api.cp(path.join(dir, 'a'), path.join(dir, 'deep', 'er', 'a-copy')),
    () => api.cp(path.join(dir, 'sub'), path.join(dir, 'sub-copy')),
    () => api.cp(path.join(dir, 'sub'), path.join(dir, 'sub-copy'), { recursive: true }),
    () => api.cp(path.join(dir, 'sub'), path.join(dir, 'sub-copy'), { recursive: true, force: false, errorOnExist: true }),
    () => api.cp(path.join(dir, 'sub'), path.join(dir, 'sub-copy2'), { recursive: true, filter: (s: string) => !s.endsWith('b') }),
    () => api.cp(path.join(dir, 'ln'), path.join(dir, 'ln-copy')),
    () => api.cp(path.join(dir, 'ln'), path.join(dir, 'ln-deref'), { dereference: true }),
    () => api.cp(path.join(dir, 'a'), path.join(dir, 'a')),
    () => api.cp(path.join(dir, 'sub'), path.join(dir, 'sub', 'inside'), { recursive: true }),
    () => api.cp(path.join(dir, 'sub'), path.join(dir, 'a'), { recursive: true }),
    () => api.cp(path.join(dir, 'a'), path.join(dir, 'sub')),
    () => api.cp(path.join(dir, 'nope'), path.join(dir, 'x')),
    () => api.cp(path.join(dir, 'a'), path.join(dir, 'x'), { dereference: true, verbatimSymlinks: true }),
    () => api.cp(path.join(dir, 'a'), path.join(dir, 'x'), { force: 1 }),
    () => api.cp(path.join(dir, 'a'), path.join(dir, 'x'), { filter: 'no' }),
    async () => {
      await d.utimes(path.join(dir, 'a'), 1_500_000_000, 1_500_000_000)
      await api.cp(path.join(dir, 'a'), path.join(dir, 'a-ts'), { preserveTimestamps: true })
      return (await d.stat(path.join(dir, 'a-ts'))).mtimeMs
    },
  ]))
})
