// fio, where installed: the limits of BASELINE.md measured in the same run.
// Results come from --output-format=json: iops, and completion-latency
// percentiles (total latency with --lat_percentiles=1 for reads; write
// clat + fdatasync latency for the WAL).

import { execFile } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import type { Measurement, TimedOptions } from './harness'

/** The fio executable on PATH, or null. */
export function findFio(): string | null {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir === '') continue
    const p = path.join(dir, 'fio')
    try {
      fs.accessSync(p, fs.constants.X_OK)
      return p
    } catch {
      // not here
    }
  }
  return null
}

export function fioVersion(fio: string): Promise<string> {
  return new Promise((resolve) => {
    execFile(fio, ['--version'], { timeout: 10_000 }, (err, out) => resolve(err ? 'unknown' : out.trim()))
  })
}

interface FioLat {
  percentile?: Record<string, number>
  mean?: number
  N?: number
}

interface FioDir {
  iops: number
  total_ios: number
  runtime: number
  clat_ns?: FioLat
  lat_ns?: FioLat
}

interface FioJob {
  error: number
  read: FioDir
  write: FioDir
  sync?: { total_ios: number; lat_ns?: FioLat }
}

function run(fio: string, args: string[], timeoutMs: number): Promise<FioJob> {
  return new Promise((resolve, reject) => {
    execFile(fio, args, { timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      const start = stdout.indexOf('{')
      if (err && start < 0) {
        reject(new Error(`fio failed: ${(stderr || err.message).trim().split('\n').slice(-3).join(' / ')}`))
        return
      }
      try {
        const doc = JSON.parse(stdout.slice(start)) as { jobs: FioJob[] }
        const job = doc.jobs[0]
        if (job.error !== 0) reject(new Error(`fio job error ${job.error}: ${stderr.trim()}`))
        else resolve(job)
      } catch (e) {
        reject(new Error(`fio output not understood: ${(e as Error).message}; stderr: ${stderr.trim()}`))
      }
    })
  })
}

const pct = (l: FioLat | undefined, key: string): number => (l?.percentile?.[key] ?? NaN) / 1000

function timing(opts: TimedOptions): string[] {
  return ['--time_based', `--ramp_time=${Math.round(opts.warmupMs)}ms`, `--runtime=${Math.round(opts.durationMs)}ms`]
}

export interface FioRead {
  file: string
  fileSize: number
  direct: boolean
  depth: number
}

/**
 * 4 KiB random reads with the io_uring engine, `depth` in flight (or with
 * psync: one read(2) at a time, the limit of 1 in flight). O_DIRECT:
 * fio's defaults (one submission per I/O as slots free up). Page cache:
 * --direct=0 --invalidate=0 (keep the cache hot) with batched submission,
 * --iodepth_batch_submit=N --iodepth_batch_complete_min=1.
 */
export async function fioRandRead(fio: string, w: FioRead, opts: TimedOptions, engine: 'io_uring' | 'psync' = 'io_uring'): Promise<Measurement> {
  const depth = engine === 'psync' ? [] : [`--iodepth=${w.depth}`, ...(w.direct ? [] : [`--iodepth_batch_submit=${w.depth}`, '--iodepth_batch_complete_min=1'])]
  const args = [
    '--name=rr',
    `--filename=${w.file}`,
    `--size=${w.fileSize}`,
    '--rw=randread',
    '--bs=4k',
    `--direct=${w.direct ? 1 : 0}`,
    '--invalidate=0',
    `--ioengine=${engine}`,
    ...depth,
    '--norandommap',
    '--randrepeat=0',
    '--lat_percentiles=1',
    ...timing(opts),
    '--output-format=json',
  ]
  const j = await run(fio, args, opts.warmupMs + opts.durationMs + 60_000)
  const r = j.read
  // lat = submission + completion, the closest to what the JS loops time;
  // clat alone is ~0 for page-cache reads that complete inside the submit.
  const hasLat = r.lat_ns?.percentile !== undefined
  const l = hasLat ? r.lat_ns : r.clat_ns
  return {
    opsPerSec: r.iops,
    ops: r.total_ios,
    seconds: r.runtime / 1000,
    p50Us: pct(l, '50.000000'),
    p99Us: pct(l, '99.000000'),
    p999Us: pct(l, '99.900000'),
    meanUs: (l?.mean ?? NaN) / 1000,
    samples: l?.N ?? 0,
    latency: hasLat ? 'fio lat percentiles (--lat_percentiles=1: issue to completion)' : 'fio clat percentiles',
    info: { command: ['fio', ...args].join(' '), clatP50Us: pct(r.clat_ns, '50.000000'), clatP99Us: pct(r.clat_ns, '99.000000') },
  }
}

/**
 * 4 KiB appends, fdatasync after each, one at a time, to a fresh file.
 * Latency: fio reports the write and the fdatasync separately; p50/p99 here
 * are write clat + fdatasync latency at the same percentile (an estimate).
 */
export async function fioWal(fio: string, file: string, engine: 'psync' | 'io_uring', opts: TimedOptions): Promise<Measurement> {
  fs.rmSync(file, { force: true })
  const args = [
    '--name=wal',
    `--filename=${file}`,
    '--rw=write',
    '--bs=4k',
    '--fdatasync=1',
    `--ioengine=${engine}`,
    ...(engine === 'io_uring' ? ['--iodepth=1'] : []),
    '--file_append=1',
    '--fallocate=none',
    '--size=1G',
    ...timing(opts),
    '--output-format=json',
  ]
  try {
    const j = await run(fio, args, opts.warmupMs + opts.durationMs + 60_000)
    const w = j.write
    const s = j.sync?.lat_ns
    return {
      opsPerSec: w.iops,
      ops: w.total_ios,
      seconds: w.runtime / 1000,
      p50Us: pct(w.clat_ns, '50.000000') + pct(s, '50.000000'),
      p99Us: pct(w.clat_ns, '99.000000') + pct(s, '99.000000'),
      p999Us: pct(w.clat_ns, '99.900000') + pct(s, '99.900000'),
      meanUs: ((w.clat_ns?.mean ?? NaN) + (s?.mean ?? NaN)) / 1000,
      samples: w.clat_ns?.N ?? 0,
      latency: 'fio write clat + fdatasync lat, per percentile (estimate)',
      info: { command: ['fio', ...args].join(' '), fdatasyncP50Us: pct(s, '50.000000'), fdatasyncP99Us: pct(s, '99.000000') },
    }
  } finally {
    fs.rmSync(file, { force: true })
  }
}
