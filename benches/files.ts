// File I/O benchmark of ringline against its peers, side by side in one run.
//
//   npm run bench -- [flags]        (node --expose-gc --import tsx benches/files.ts)
//
// Flags:
//   --duration=S     seconds measured per workload (default 6, after 1 s of warm-up)
//   --warmup=S       warm-up seconds per workload (default 1; 0.25 with --quick)
//   --quick          1 s per workload, 0.25 s warm-up: smoke runs
//   --only=A,B       run only workloads whose "<group> <engine>" contains A or B
//                    (case-insensitive), e.g. --only=qd32, --only=WAL,
//                    --only="page-cache qd1 read ringline"
//   --no-fio         skip fio (it is skipped anyway where not installed)
//   --memory         also run the memory check (RINGLINE_BENCH_MEMORY=1 works too)
//   --all            everything, the memory check included
//   --memory-ops=N   reads in the memory check (default 10000000)
//   --depths=1,32,128  in-flight depths of the read workloads
//   --data-dir=DIR   where test files live (default bench-results/data; must
//                    support O_DIRECT, so not tmpfs)
//   --direct-size=MiB  size of the O_DIRECT file (default 2048)
//   --cache-size=MiB   size of the page-cache file (default 512)
//
// Workloads (4 KiB = one block; positions: one fixed pseudo-random sequence
// of block-aligned offsets, the same for every engine):
//   O_DIRECT qdN read     random reads of the O_DIRECT file, N in flight.
//                         Every engine reads into 4096-aligned memory
//                         (ringline's allocAligned; node:fs cannot do
//                         O_DIRECT from plain Buffers).
//   page-cache qdN read   random reads of the page-cache file, read through
//                         once before the section.
//     ringline read           N loops, each awaiting its own fh.read: N in flight
//     ringline readMany       one fh.readMany of N reads, awaited, repeated
//                             (depth swings from N to 0 at every batch)
//     ringline readMany 2xhalf  two loops, each a readMany of N/2 awaited and
//                             repeated: between N/2 and N in flight
//     ... sqpoll              the same on a Ring({ sqpoll: true })
//     ... loop                the same on a Ring({ completion: 'loop' }): the JS
//                             event loop takes completions, no completion thread
//     ringline read Buffer    (page cache) plain Buffer.alloc memory instead
//                             of allocAligned (not registered with the kernel)
//     fs/promises             N loops awaiting FileHandle.read
//     fs callback             N chains of fs.read callbacks
//     ...+UV_USE_IO_URING     the same in a child process with UV_USE_IO_URING=1
//     fio io_uring            --ioengine=io_uring --iodepth=N; O_DIRECT:
//                             --direct=1; page cache: --direct=0
//                             --invalidate=0 --iodepth_batch_submit=N
//                             --iodepth_batch_complete_min=1
//   WAL append+fdatasync  4 KiB appends, each durable (fdatasync) before the
//                         next, to a fresh file per measurement:
//     ringline append         fh.append(buf, { sync: 'data' }) (linked write+fdatasync)
//     ringline write+datasync await fh.write(buf); await fh.datasync()
//     fs/promises, fs callback (also with UV_USE_IO_URING=1), fs writeSync
//     (writeSync + fdatasyncSync), fio psync and fio io_uring
//     (--rw=write --bs=4k --fdatasync=1 --file_append=1)
//   memory                10,000,000 page-cache reads, 32 in flight via
//                         fh.read; RSS after 1M reads and at the end.
//
// Latency: process.hrtime.bigint() around the op (one op in 4 for reads,
// every batch for readMany and every op for the WAL), in a preallocated
// Float64Array; fio's figures are its own clat percentiles. Results print as
// tables plus ratio lines, and go to bench-results/files-<timestamp>.json and
// bench-results/files-latest.json.

import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { Ring, type FileHandle, type ReadRequest, type RingOptions } from '../index'
import { ensureFile, residency, warmPageCache } from './data'
import { findFio, fioRandRead, fioVersion, fioWal } from './fio'
import { BLOCK, Flags, Positions, within, fmtRate, fmtRatio, fmtUs, pad, padLeft, promiseLoops, runTimed, type Measurement, type TimedOptions } from './harness'
import { READ_SAMPLE_EVERY, ioUringFds, runPeerJob, type Alloc, type PeerJob } from './peers'

// ----- options -----------------------------------------------------------------

interface Options {
  timed: TimedOptions
  only: string[]
  fio: boolean
  memory: boolean
  memoryOps: number
  depths: number[]
  dataDir: string
  directSize: number
  cacheSize: number
}

const ROOT = path.resolve(__dirname, '..')
const MiB = 1 << 20

function usage(msg: string): never {
  const head = fs.readFileSync(__filename, 'utf8').split('\n\n')[0]
  process.stderr.write(`${msg}\n\n${head}\n`)
  process.exit(2)
}

function parseOptions(argv: string[]): Options {
  const known = ['duration', 'warmup', 'quick', 'only', 'no-fio', 'memory', 'all', 'memory-ops', 'depths', 'data-dir', 'direct-size', 'cache-size', 'help']
  const flags = new Flags(argv, known, [], usage)
  if (flags.has('help')) usage('ringline file benchmark')
  const num = (k: string, def: number, min = 0): number => flags.num(k, def, min)
  const quick = flags.has('quick')
  const all = flags.has('all')
  const depths = (flags.get('depths') ?? '1,32,128').split(',').map(Number)
  if (depths.some((d) => !Number.isInteger(d) || d < 1 || d > 256)) usage('--depths takes integers from 1 to 256')
  return {
    timed: {
      durationMs: num('duration', quick ? 1 : 6, 0.1) * 1000,
      warmupMs: num('warmup', quick ? 0.25 : 1) * 1000,
    },
    only: (flags.get('only') ?? '')
      .split(',')
      .map((s) => s.trim().toLowerCase())
      .filter((s) => s !== ''),
    fio: !flags.has('no-fio'),
    memory: flags.has('memory') || all || process.env.RINGLINE_BENCH_MEMORY === '1',
    memoryOps: Math.floor(num('memory-ops', 10_000_000, 1_000_001)),
    depths,
    dataDir: path.resolve(flags.get('data-dir') || path.join(ROOT, 'bench-results', 'data')),
    directSize: Math.floor(num('direct-size', 2048, 1)) * MiB,
    cacheSize: Math.floor(num('cache-size', 512, 1)) * MiB,
  }
}

// ----- results -------------------------------------------------------------------

interface Result {
  group: string
  engine: string
  measurement?: Measurement
  error?: string
  skipped?: string
}

interface Workload {
  group: string
  engine: string
  run: () => Promise<Measurement>
}

interface Group {
  name: string
  title: string
  /** Prepares what the group needs (files); runs only if a workload of it is selected. */
  before?: () => void
  workloads: Workload[]
  /** Peers that cannot run, printed in place of a result. */
  skipped: { engine: string; why: string }[]
}

const log = (s: string): void => {
  process.stdout.write(`${s}\n`)
}

const fmtMs = (ms: number): string => (ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${ms.toFixed(0)} ms`)

const isRingline = (engine: string): boolean => engine.startsWith('ringline')

function printGroup(g: Group, results: Result[]): void {
  log(`  ${pad('engine', 34)}${padLeft('ops/s', 9)}${padLeft('p50 µs', 10)}${padLeft('p99 µs', 10)}`)
  for (const r of results) {
    if (r.measurement) {
      const m = r.measurement
      const notes: string[] = []
      if (m.info?.note) notes.push(String(m.info.note))
      const el = m.eventLoop
      if (el && el.timerTicks < el.timerTicksExpected * 0.5) {
        notes.push(`(event loop starved: ${el.timerTicks}/${el.timerTicksExpected} timer ticks, blocked up to ${fmtMs(el.maxBlockedMs)})`)
      }
      const note = notes.length > 0 ? `   ${notes.join(' ')}` : ''
      log(`  ${pad(r.engine, 34)}${padLeft(fmtRate(m.opsPerSec), 9)}${padLeft(fmtUs(m.p50Us), 10)}${padLeft(fmtUs(m.p99Us), 10)}${note}`)
    } else {
      log(`  ${pad(r.engine, 34)}${r.skipped ? r.skipped : `FAILED: ${r.error}`}`)
    }
  }
  const peers = results.filter((r) => !isRingline(r.engine) && r.measurement)
  const ours = results.filter((r) => isRingline(r.engine) && r.measurement)
  if (ours.length > 0 && peers.length > 0) {
    log('')
    for (const o of ours) {
      const rate = o.measurement!.opsPerSec
      const parts = peers.map((p) => `${fmtRatio(rate / p.measurement!.opsPerSec)} ${p.engine}`)
      log(`  ${g.name}: ${o.engine} ${fmtRate(rate)}/s = ${parts.join(', ')}`)
    }
  }
}

const SUMMARY: [string, string][] = [
  ['ringline read', 'rl read'],
  ['ringline readMany', 'rl many'],
  ['ringline readMany 2xhalf', 'rl 2xhalf'],
  ['ringline read sqpoll', 'rl rd sq'],
  ['ringline read loop', 'rl rd loop'],
  ['fs/promises', 'fs/prom'],
  ['fs callback', 'fs cb'],
  ['fs/promises+UV_USE_IO_URING', 'prom+uring'],
  ['fs callback+UV_USE_IO_URING', 'cb+uring'],
  ['fio io_uring', 'fio'],
]

/** ops/s of the main engines, one row per read workload. */
function printSummary(results: Result[]): void {
  const groups = [...new Set(results.map((r) => r.group))].filter((g) => g.endsWith(' read'))
  if (groups.length === 0) return
  log('')
  log('== summary: 4 KiB random reads, ops/s (rl = ringline; full names and latencies above)')
  log(`  ${pad('', 22)}${SUMMARY.map(([, h]) => padLeft(h, 11)).join('')}`)
  for (const g of groups) {
    const cells = SUMMARY.map(([engine]) => {
      const r = results.find((x) => x.group === g && x.engine === engine)
      return padLeft(r?.measurement ? fmtRate(r.measurement.opsPerSec) : '-', 11)
    })
    log(`  ${pad(g, 22)}${cells.join('')}`)
  }
}

function ratios(results: Result[]): { group: string; ringline: string; peer: string; ratio: number }[] {
  const out: { group: string; ringline: string; peer: string; ratio: number }[] = []
  for (const o of results) {
    if (!isRingline(o.engine) || !o.measurement) continue
    for (const p of results) {
      if (p.group !== o.group || isRingline(p.engine) || !p.measurement) continue
      out.push({ group: o.group, ringline: o.engine, peer: p.engine, ratio: o.measurement.opsPerSec / p.measurement.opsPerSec })
    }
  }
  return out
}

// ----- ringline workloads ----------------------------------------------------------

interface ReadSpec {
  file: string
  fileSize: number
  direct: boolean
  depth: number
}

function slices(slab: Buffer, n: number): Buffer[] {
  const out: Buffer[] = []
  for (let i = 0; i < n; i++) out.push(slab.subarray(i * BLOCK, (i + 1) * BLOCK))
  return out
}

/** What a run did inside ringline: did it take the fast paths? */
function ringInfo(ring: Ring, ownMemory = false): Record<string, unknown> {
  const s = ring.stats()
  const info: Record<string, unknown> = {
    submitted: s.submitted,
    fixedBufferOps: s.fixedBufferOps,
    bounced: s.bounced,
    registeredFiles: s.registeredFiles,
    registeredBuffers: s.registeredBuffers,
    sqpoll: s.sqpoll,
  }
  // allocAligned memory should never be copied; a plain Buffer always is.
  if (ownMemory && s.bounced > 0) info.note = `(${s.bounced} ops bounced although on allocAligned memory)`
  return info
}

/** The counters that tell where a stuck op is. */
function ringState(ring: Ring): string {
  try {
    const s = ring.stats()
    return `ring: submitted ${s.submitted}, completed ${s.completed}, inFlight ${s.inFlight}, queued ${s.queued}, sqpoll ${s.sqpoll}`
  } catch (e) {
    return `ring.stats() threw: ${(e as Error).message}`
  }
}

/**
 * A fresh Ring and file for one measurement, closed afterwards. A step that
 * never settles (open, close, a lost completion) fails the measurement with
 * the ring's counters instead of hanging the benchmark; the ring is then
 * left behind.
 */
async function withRing<T>(
  ringOptions: RingOptions,
  file: string,
  flags: string,
  direct: boolean,
  body: (ring: Ring, fh: FileHandle, diag: () => string) => Promise<T>,
): Promise<T> {
  const ring = new Ring(ringOptions)
  const diag = (): string => ringState(ring)
  let fh: FileHandle | undefined
  let result: T | undefined
  let error: unknown = null
  try {
    fh = await within(ring.open(file, flags, undefined, { direct }), 10_000, 'Ring.open', diag)
    result = await body(ring, fh, diag)
  } catch (e) {
    error = e
  }
  try {
    if (fh !== undefined) await within(fh.close(), 10_000, 'FileHandle.close', diag)
    await within(ring.close(), 10_000, 'Ring.close', diag)
  } catch (e) {
    error ??= e
  }
  if (error !== null) throw error
  return result as T
}

function ringlineRead(w: ReadSpec, opts: TimedOptions, ringOptions: RingOptions, memory: 'aligned' | 'plain'): Promise<Measurement> {
  return withRing(ringOptions, w.file, 'r', w.direct, async (ring, fh, diag) => {
    const slab = memory === 'aligned' ? ring.allocAligned(w.depth * BLOCK) : Buffer.alloc(w.depth * BLOCK)
    const bufs = slices(slab, w.depth)
    const pos = new Positions(w.fileSize)
    const m = await runTimed(opts, READ_SAMPLE_EVERY, (ctl) =>
      promiseLoops(
        ctl,
        w.depth,
        (slot) => fh.read(bufs[slot], 0, BLOCK, pos.next()),
        (r) => (r.bytesRead === BLOCK ? 1 : -1),
      ),
      diag,
    )
    m.info = ringInfo(ring, memory === 'aligned')
    return m
  })
}

/** `loops` loops, each a readMany of depth/loops reads, awaited and repeated. */
function ringlineReadMany(w: ReadSpec, opts: TimedOptions, ringOptions: RingOptions, loops: number): Promise<Measurement> {
  return withRing(ringOptions, w.file, 'r', w.direct, async (ring, fh, diag) => {
    const bufs = slices(ring.allocAligned(w.depth * BLOCK), w.depth)
    const per = w.depth / loops
    const batches: ReadRequest[][] = []
    for (let l = 0; l < loops; l++) batches.push(bufs.slice(l * per, (l + 1) * per).map((buffer) => ({ buffer, position: 0 })))
    const pos = new Positions(w.fileSize)
    const m = await runTimed(opts, 1, (ctl) =>
      promiseLoops(
        ctl,
        loops,
        (slot) => {
          const b = batches[slot]
          for (let i = 0; i < b.length; i++) b[i].position = pos.next()
          return fh.readMany(b)
        },
        (counts) => {
          for (let i = 0; i < counts.length; i++) if (counts[i] !== BLOCK) return -1
          return counts.length
        },
      ),
      diag,
    )
    m.latency += ' (batches: each op of a batch has the batch latency)'
    m.info = ringInfo(ring, true)
    return m
  })
}

function ringlineWal(file: string, opts: TimedOptions, mode: 'append' | 'write+datasync', completion: 'thread' | 'loop'): Promise<Measurement> {
  fs.rmSync(file, { force: true })
  const buf = Buffer.alloc(BLOCK, 0x5a)
  return withRing({ completion }, file, 'a', false, async (ring, fh, diag) => {
    const m = await runTimed(opts, 1, (ctl) =>
      mode === 'append'
        ? promiseLoops(
            ctl,
            1,
            () => fh.append(buf, { sync: 'data' }),
            (r) => (r.bytesWritten === BLOCK ? 1 : -1),
          )
        : promiseLoops(
            ctl,
            1,
            async () => {
              const r = await fh.write(buf)
              await fh.datasync()
              return r.bytesWritten
            },
            (n) => (n === BLOCK ? 1 : -1),
          ),
      diag,
    )
    m.info = ringInfo(ring)
    return m
  }).finally(() => fs.rmSync(file, { force: true }))
}

// ----- node:fs with UV_USE_IO_URING=1, in a child process ------------------------------

const CHILD = path.join(__dirname, 'peer-child.ts')

function childExecArgv(): string[] {
  const a = process.execArgv
  return a.some((s) => s.includes('tsx')) ? a : [...a, '--import', 'tsx']
}

interface ChildOutput {
  ok?: boolean
  error?: string
  uringFds?: number
  measurement?: Measurement
}

function parseChild(line: string): ChildOutput | null {
  try {
    return JSON.parse(line) as ChildOutput
  } catch {
    return null
  }
}

function runChild(job: PeerJob, opts: TimedOptions): Promise<Measurement> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...childExecArgv(), CHILD, JSON.stringify({ job, opts })], {
      cwd: ROOT,
      env: { ...process.env, UV_USE_IO_URING: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    let err = ''
    child.stdout.on('data', (d: Buffer) => (out += d.toString()))
    child.stderr.on('data', (d: Buffer) => (err += d.toString()))
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.warmupMs + opts.durationMs + 90_000)
    child.on('error', (e) => {
      clearTimeout(timer)
      reject(new Error(`child process could not start: ${e.message}`))
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      const line = out.trim().split('\n').pop() ?? ''
      const doc = parseChild(line)
      if (doc?.ok && doc.measurement) {
        const m = doc.measurement
        const fds = doc.uringFds ?? -1
        m.info = { ...m.info, libuvIoUringFds: fds }
        if (fds === 0) m.info.note = '(libuv opened no io_uring: thread-pool figures)'
        resolve(m)
        return
      }
      const why = doc?.error ?? (err.trim().split('\n').slice(-3).join(' / ') || 'no output')
      reject(new Error(`UV_USE_IO_URING child ${signal ? `killed by ${signal}` : `exit ${code}`}: ${why}`))
    })
  })
}

// ----- memory check ------------------------------------------------------------------

interface MemSample {
  reads: number
  rss: number
  heapUsed: number
  external: number
  arrayBuffers: number
}

async function memoryCheck(file: string, fileSize: number, total: number): Promise<Record<string, unknown>> {
  const gc = (globalThis as { gc?: () => void }).gc
  const depth = 32
  const every = 1_000_000
  const samples: MemSample[] = []
  const sample = (reads: number): MemSample => {
    gc?.()
    const u = process.memoryUsage()
    const s = { reads, rss: u.rss, heapUsed: u.heapUsed, external: u.external, arrayBuffers: u.arrayBuffers }
    samples.push(s)
    return s
  }
  return withRing({ completion: 'thread' }, file, 'r', false, async (ring, fh) => {
    const bufs = slices(ring.allocAligned(depth * BLOCK), depth)
    const pos = new Positions(fileSize)
    let issued = 0
    let done = 0
    const t0 = performance.now()
    sample(0)
    const loop = async (slot: number): Promise<void> => {
      while (issued < total) {
        issued++
        const r = await fh.read(bufs[slot], 0, BLOCK, pos.next())
        if (r.bytesRead !== BLOCK) throw new Error(`short read: ${r.bytesRead}`)
        if (++done % every === 0 && done < total) {
          const s = sample(done)
          if (done === every || done % (5 * every) === 0) log(`  ${fmtRate(done)} reads: rss ${(s.rss / MiB).toFixed(1)} MiB`)
        }
      }
    }
    const loops: Promise<void>[] = []
    for (let s = 0; s < depth; s++) loops.push(loop(s))
    await Promise.all(loops)
    const seconds = (performance.now() - t0) / 1000
    const end = sample(done)
    const base = samples.find((s) => s.reads === every) ?? samples[0]
    const growth = ((end.rss - base.rss) / base.rss) * 100
    // A leak keeps growing; allocator and V8 warm-up level off: compare the second half too.
    const half = samples.filter((s) => s.reads <= total / 2).pop() ?? base
    const lateGrowth = ((end.rss - half.rss) / half.rss) * 100
    log(`  ${fmtRate(done)} reads: rss ${(end.rss / MiB).toFixed(1)} MiB`)
    log(
      `  memory: ${fmtRate(done)} page-cache reads at qd${depth} in ${seconds.toFixed(1)} s (${fmtRate(done / seconds)}/s); ` +
        `rss ${(base.rss / MiB).toFixed(1)} MiB after 1M -> ${(end.rss / MiB).toFixed(1)} MiB at the end: ` +
        `${growth >= 0 ? '+' : ''}${growth.toFixed(1)}% (second half alone, after ${fmtRate(half.reads)}: ${lateGrowth >= 0 ? '+' : ''}${lateGrowth.toFixed(1)}%); heapUsed ${(base.heapUsed / MiB).toFixed(1)} -> ${(end.heapUsed / MiB).toFixed(1)} MiB`,
    )
    return { reads: done, depth, seconds, rssGrowthPercent: growth, rssGrowthSecondHalfPercent: lateGrowth, samples, ring: ringInfo(ring), gcExposed: gc !== undefined }
  })
}

// ----- main ------------------------------------------------------------------------

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2))
  const fio = o.fio ? findFio() : null
  const fioVer = fio ? await fioVersion(fio) : null
  fs.mkdirSync(o.dataDir, { recursive: true })
  const resultsDir = path.join(ROOT, 'bench-results')
  fs.mkdirSync(resultsDir, { recursive: true })

  // Aligned memory for node:fs O_DIRECT reads and for writing the O_DIRECT file.
  const allocRing = new Ring({ registerBuffers: false, registerFiles: false })
  const alloc: Alloc = (size) => allocRing.allocAligned(size)

  const directFile = path.join(o.dataDir, `direct-${o.directSize / MiB}m.dat`)
  const cacheFile = path.join(o.dataDir, `cache-${o.cacheSize / MiB}m.dat`)
  const t = o.timed

  const selected = (group: string, engine: string): boolean => {
    const name = `${group} ${engine}`.toLowerCase()
    return o.only.length === 0 || o.only.some((s) => name.includes(s))
  }

  const fioSkip = (engine: string): { engine: string; why: string }[] =>
    fio ? [] : [{ engine, why: o.fio ? 'fio not installed: skipped' : 'skipped (--no-fio)' }]

  const groups: Group[] = []
  for (const direct of [true, false]) {
    for (const depth of o.depths) {
      const name = `${direct ? 'O_DIRECT' : 'page-cache'} qd${depth} read`
      const file = direct ? directFile : cacheFile
      const fileSize = direct ? o.directSize : o.cacheSize
      const spec: ReadSpec = { file, fileSize, direct, depth }
      const w: Workload[] = []
      const add = (engine: string, run: () => Promise<Measurement>): void => {
        w.push({ group: name, engine, run })
      }
      for (const sqpoll of [false, true]) {
        const sq = sqpoll ? ' sqpoll' : ''
        const ro: RingOptions = { sqpoll, completion: 'thread' }
        add(`ringline read${sq}`, () => ringlineRead(spec, t, ro, 'aligned'))
        add(`ringline readMany${sq}`, () => ringlineReadMany(spec, t, ro, 1))
        if (depth >= 2 && depth % 2 === 0) add(`ringline readMany 2xhalf${sq}`, () => ringlineReadMany(spec, t, ro, 2))
      }
      add('ringline read loop', () => ringlineRead(spec, t, { completion: 'loop' }, 'aligned'))
      add('ringline readMany loop', () => ringlineReadMany(spec, t, { completion: 'loop' }, 1))
      if (!direct) add('ringline read Buffer', () => ringlineRead(spec, t, { completion: 'thread' }, 'plain'))
      for (const engine of ['promises', 'callback'] as const) {
        const job: PeerJob = { kind: 'read', engine, file, fileSize, direct, depth }
        const label = engine === 'promises' ? 'fs/promises' : 'fs callback'
        add(label, () => runPeerJob(job, t, alloc))
        add(`${label}+UV_USE_IO_URING`, () => runChild(job, t))
      }
      if (fio) add('fio io_uring', () => fioRandRead(fio, spec, t))
      groups.push({
        name,
        title: `4 KiB random reads, ${depth} in flight, ${direct ? `O_DIRECT, ${o.directSize / MiB} MiB file` : `page cache hot, ${o.cacheSize / MiB} MiB file`}`,
        before: direct
          ? () => void ensureFile(directFile, o.directSize, true, alloc, log)
          : () => {
              ensureFile(cacheFile, o.cacheSize, false, alloc, log)
              const s = warmPageCache(cacheFile)
              const res = residency(cacheFile)
              log(`  (page cache warmed: file read through in ${s.toFixed(2)} s${res === null ? '' : `; ${(res * 100).toFixed(0)}% resident`})`)
            },
        workloads: w,
        skipped: fioSkip('fio io_uring'),
      })
    }
  }
  {
    const name = 'WAL append+fdatasync'
    const walFile = (tag: string): string => path.join(o.dataDir, `wal-${tag}.log`)
    const w: Workload[] = []
    const add = (engine: string, run: () => Promise<Measurement>): void => {
      w.push({ group: name, engine, run })
    }
    add('ringline append', () => ringlineWal(walFile('ringline'), t, 'append', 'thread'))
    add('ringline append loop', () => ringlineWal(walFile('ringline-loop'), t, 'append', 'loop'))
    add('ringline write+datasync', () => ringlineWal(walFile('ringline2'), t, 'write+datasync', 'thread'))
    for (const engine of ['promises', 'callback', 'sync'] as const) {
      const label = engine === 'promises' ? 'fs/promises' : engine === 'callback' ? 'fs callback' : 'fs writeSync'
      add(label, () => runPeerJob({ kind: 'wal', engine, file: walFile(engine) }, t, alloc))
      if (engine !== 'sync') add(`${label}+UV_USE_IO_URING`, () => runChild({ kind: 'wal', engine, file: walFile(`${engine}-uring`) }, t))
    }
    if (fio) {
      add('fio psync', () => fioWal(fio, walFile('fio-psync'), 'psync', t))
      add('fio io_uring', () => fioWal(fio, walFile('fio-uring'), 'io_uring', t))
    }
    groups.push({
      name,
      title: '4 KiB append + fdatasync, one at a time (write-ahead log), fresh file each',
      workloads: w,
      skipped: [...fioSkip('fio psync'), ...fioSkip('fio io_uring')],
    })
  }

  const started = new Date()
  const meta = {
    started: started.toISOString(),
    node: process.version,
    libuv: process.versions.uv,
    kernel: `${os.type()} ${os.release()}`,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
    uvThreadpoolSize: process.env.UV_THREADPOOL_SIZE ?? '4 (default)',
    uvUseIoUringInParent: process.env.UV_USE_IO_URING ?? null,
    parentIoUringFds: ioUringFds(),
    fio: fio ? `${fio} (${fioVer})` : o.fio ? 'not installed' : 'disabled (--no-fio)',
    options: { ...o, quick: process.argv.includes('--quick') },
    files: { direct: directFile, pageCache: cacheFile },
    loadavgStart: os.loadavg(),
    loadavgEnd: [] as number[],
  }
  log(`ringline file benchmark — ${meta.started}`)
  log(`node ${meta.node} (libuv ${meta.libuv}), ${meta.kernel}, ${meta.cpus} CPUs (${meta.cpuModel}), ${meta.memoryGiB} GiB`)
  log(`fio: ${meta.fio}; load average ${meta.loadavgStart.map((x) => x.toFixed(2)).join(' ')}`)
  log(`${t.durationMs / 1000} s per workload after ${t.warmupMs / 1000} s warm-up; shared machines are noisy: read the ratios`)
  if (!fio) log(o.fio ? 'fio not installed: skipped' : 'fio: skipped (--no-fio)')

  const results: Result[] = []
  for (const g of groups) {
    const chosen = g.workloads.filter((w) => selected(w.group, w.engine))
    const skipped = g.skipped.filter((s) => selected(g.name, s.engine))
    if (chosen.length === 0) continue
    log('')
    log(`== ${g.name}: ${g.title}`)
    try {
      g.before?.()
    } catch (e) {
      log(`  could not prepare: ${(e as Error).message}`)
      for (const w of chosen) results.push({ group: g.name, engine: w.engine, error: `setup: ${(e as Error).message}` })
      continue
    }
    const mine: Result[] = []
    for (const w of chosen) {
      process.stdout.write(`  . ${w.engine} ...`)
      const r: Result = { group: g.name, engine: w.engine }
      try {
        r.measurement = await w.run()
      } catch (e) {
        r.error = (e as Error).message
      }
      mine.push(r)
      const m = r.measurement
      process.stdout.write(m ? ` ${fmtRate(m.opsPerSec)}/s\n` : ` FAILED: ${r.error}\n`)
    }
    for (const s of skipped) mine.push({ group: g.name, engine: s.engine, skipped: s.why })
    log('')
    printGroup(g, mine)
    results.push(...mine)
  }

  printSummary(results)

  let memory: Record<string, unknown> | null = null
  if (o.memory) {
    log('')
    log(`== memory: ${fmtRate(o.memoryOps)} page-cache 4 KiB reads at qd32 via fh.read`)
    try {
      ensureFile(cacheFile, o.cacheSize, false, alloc, log)
      warmPageCache(cacheFile)
      memory = await memoryCheck(cacheFile, o.cacheSize, o.memoryOps)
    } catch (e) {
      log(`  FAILED: ${(e as Error).message}`)
      memory = { error: (e as Error).message }
    }
  } else {
    log('')
    log('memory check: not run (pass --memory or --all)')
  }

  await allocRing.close()
  meta.loadavgEnd = os.loadavg()
  const doc = { meta, results, ratios: ratios(results), memory }
  const stamp = started.toISOString().replace(/[:.]/g, '-')
  const out = path.join(resultsDir, `files-${stamp}.json`)
  const json = `${JSON.stringify(doc, null, 2)}\n`
  fs.writeFileSync(out, json)
  fs.writeFileSync(path.join(resultsDir, 'files-latest.json'), json)
  log('')
  log(`load average at the end ${meta.loadavgEnd.map((x) => x.toFixed(2)).join(' ')}`)
  log(`results: ${path.relative(process.cwd(), out)} (and files-latest.json)`)
}

main().catch((e: unknown) => {
  process.stderr.write(`benchmark failed: ${(e as Error)?.stack ?? String(e)}\n`)
  process.exit(1)
})
