// Test files, made once and reused across runs (a `.ok` marker next to each
// says it was written completely):
//
// - the O_DIRECT file (default 2 GiB): `fallocate -l`, then random data
//   written once with O_DIRECT in 1 MiB chunks. It must hold real data:
//   fallocated-unwritten extents read back as zeros without the disk being
//   touched, which would measure nothing. O_DIRECT writes also keep it out of
//   the page cache.
// - the page-cache file (default 512 MiB, well under RAM): random data,
//   buffered writes; read through once before every page-cache section.

import { spawnSync } from 'node:child_process'
import { randomFillSync } from 'node:crypto'
import * as fs from 'node:fs'
import type { Alloc } from './peers'

const CHUNK = 1 << 20
const O_DIRECT = (fs.constants as Record<string, number>).O_DIRECT ?? 0

function ready(file: string, size: number): boolean {
  try {
    if (fs.statSync(file).size !== size) return false
    const m = JSON.parse(fs.readFileSync(`${file}.ok`, 'utf8')) as { size?: number }
    return m.size === size
  } catch {
    return false
  }
}

/** Makes `file` (`size` bytes of random data) unless a complete one is there. Returns seconds spent, 0 if reused. */
export function ensureFile(file: string, size: number, direct: boolean, alloc: Alloc, log: (s: string) => void): number {
  if (ready(file, size)) return 0
  const t0 = performance.now()
  log(`creating ${file} (${size / CHUNK} MiB of random data${direct ? ', fallocate + O_DIRECT writes' : ''}; once, reused by later runs)`)
  fs.rmSync(`${file}.ok`, { force: true })
  fs.rmSync(file, { force: true })
  if (direct) {
    const r = spawnSync('fallocate', ['-l', String(size), file], { encoding: 'utf8' })
    if (r.status !== 0) log(`  fallocate unavailable or failed (${(r.stderr || r.error?.message || '').trim()}); writing without it`)
  }
  let fd: number
  let buf: Buffer
  try {
    fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | (direct ? O_DIRECT : 0), 0o644)
    buf = direct ? alloc(CHUNK) : Buffer.allocUnsafe(CHUNK)
  } catch (e) {
    if (!direct) throw e
    log(`  O_DIRECT write not possible here (${(e as Error).message}); writing through the page cache`)
    fd = fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT, 0o644)
    buf = Buffer.allocUnsafe(CHUNK)
  }
  try {
    for (let off = 0; off < size; off += CHUNK) {
      const n = Math.min(CHUNK, size - off)
      randomFillSync(buf, 0, n)
      let done = 0
      while (done < n) done += fs.writeSync(fd, buf, done, n - done, off + done)
    }
    fs.fdatasyncSync(fd)
  } finally {
    fs.closeSync(fd)
  }
  fs.writeFileSync(`${file}.ok`, JSON.stringify({ size, created: new Date().toISOString() }))
  const s = (performance.now() - t0) / 1000
  log(`  done in ${s.toFixed(1)} s`)
  return s
}

/** Reads the whole file once (1 MiB at a time) so that it sits in the page cache. */
export function warmPageCache(file: string): number {
  const t0 = performance.now()
  const fd = fs.openSync(file, 'r')
  const buf = Buffer.allocUnsafe(CHUNK)
  try {
    let pos = 0
    for (;;) {
      const n = fs.readSync(fd, buf, 0, CHUNK, pos)
      if (n === 0) break
      pos += n
    }
  } finally {
    fs.closeSync(fd)
  }
  return (performance.now() - t0) / 1000
}

/** Share of the file in the page cache, from `fincore` (util-linux) where installed. */
export function residency(file: string): number | null {
  const r = spawnSync('fincore', ['--bytes', '--noheadings', '--output', 'RES,SIZE', file], { encoding: 'utf8' })
  if (r.status !== 0) return null
  const [res, size] = r.stdout.trim().split(/\s+/).map(Number)
  return size > 0 ? res / size : null
}
