// File I/O benchmark of ringline against its peers, side by side in one run,
// every ringline workload on both engines (io_uring and mio).
//
//   npm run bench:files -- [flags]  (node --expose-gc --import tsx benches/files.ts)
//   npm run bench -- [flags]        (this, then the TCP benchmark: benches/all.ts)
//
// Flags (`--flag=V` and `--flag V` both work):
//   --duration=S     seconds measured per workload (default 3, after the warm-up;
//                    --seconds=S is the same)
//   --warmup=S       warm-up seconds per workload (default 1; 0.25 with --quick)
//   --quick          1 s per workload, 0.25 s warm-up: smoke runs
//   --backends=io_uring,mio  the engines ringline's workloads run on (default
//                    both; every ringline row is labelled with its engine)
//   --only=A,B       run only workloads whose "<group> <engine>" contains A or B
//                    (case-insensitive), e.g. --only=qd32, --only=WAL,
//                    --only="page-cache qd1 read ringline", --only=mio
//   --no-fio         skip fio (it is skipped anyway where not installed)
//   --memory         also run the memory check (RINGLINE_BENCH_MEMORY=1 works too)
//   --all            everything, the memory check included
//   --memory-ops=N   reads in the memory check (default 10000000)
//   --depths=1,32,128  in-flight depths of the read workloads
//   --data-dir=DIR   where test files live (default bench-results/data; must
//                    support O_DIRECT, so not tmpfs)
//   --direct-size=MiB  size of the O_DIRECT file (default 2048)
//   --cache-size=MiB   size of the page-cache file (default 512)
//   --json=FILE      also write the results to FILE (all.ts uses it)
//   --bun=PATH, --bun-dir=DIR, --no-bun  the bun binary whose node:fs the
//                    peers also run under (see benches/bun.ts for where it is
//                    looked for); without one, the Bun rows say so
//
// Engines: each ringline variant below runs once per engine, as
// "ringline read (io_uring)" and "ringline read (mio)" (Ring option
// `backend`); a ring that reports another engine than the one asked for fails
// its row. The sqpoll variants are io_uring only (mio has no submission
// queue): on mio they print as skipped. Ratio lines compare every ringline
// row with every peer, and each mio row with the same variant on io_uring.
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
//     bun fs.promises         N loops awaiting FileHandle.read, under Bun (a child
//                             process running the same peer code), when found
//     fio io_uring            --ioengine=io_uring --iodepth=N; O_DIRECT:
//                             --direct=1; page cache: --direct=0
//                             --invalidate=0 --iodepth_batch_submit=N
//                             --iodepth_batch_complete_min=1
//     fio psync               (1 in flight) --ioengine=psync: one pread at a time
//   WAL append+fdatasync  4 KiB appends, each durable (fdatasync) before the
//                         next, to a fresh file per measurement:
//     ringline append         fh.append(buf, { sync: 'data' }) (the default way)
//     ringline append linked  the same with RINGLINE_SYNC_APPEND=linked: a write
//                             linked to an fdatasync
//     ringline append dsync   ... =dsync: one write with RWF_DSYNC
//     ringline write+datasync await fh.write(buf); await fh.datasync()
//     fs/promises, fs callback (also with UV_USE_IO_URING=1), fs writeSync,
//     bun fs.promises and bun writeSync (under Bun, when a bun binary is found)
//     (writeSync + fdatasyncSync), fio psync and fio io_uring
//     (--rw=write --bs=4k --fdatasync=1 --file_append=1)
//   WAL append+fdatasync x32  the same appends from 32 loops on one handle,
//                         against writeSync + fdatasyncSync one at a time:
//     ringline append x32 [loop]  the default way (group commit)
//     ringline append x32 V   RINGLINE_SYNC_APPEND=V: linked, dsync (each
//                             append durable on its own), group+linked,
//                             group+dsync (appends in flight together share
//                             fdatasyncs; the lone one goes as said)
//     (benches/wal-ab.ts runs these interleaved, round after round)
//   memory                10,000,000 page-cache reads, 32 in flight via
//                         fh.read, on each engine; RSS after 1M reads and
//                         at the end.
//
// Latency: process.hrtime.bigint() around the op (one op in 4 for reads,
// every batch for readMany and every op for the WAL), in a preallocated
// Float64Array; fio's figures are its own clat percentiles. Results print as
// tables plus ratio lines, then a table of ops/s of the main variants, and
// the engine summary: per workload, ringline read (WAL: ringline append) on
// io_uring and on mio against fs/promises, marked where mio is below it.
// They go to bench-results/files-<timestamp>.json and files-latest.json.

import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { Ring, type FileHandle, type ReadRequest, type RingOptions, type RingStats } from '../index'
import { ensureFile, residency, warmPageCache } from './data'
import { findBun } from './bun'
import { findFio, fioRandRead, fioVersion, fioWal } from './fio'
import { FILES_FLAGS } from './flags'
import {
  BLOCK,
  Flags,
  Positions,
  engineLabel,
  fmtRate,
  fmtRatio,
  fmtUs,
  pad,
  padLeft,
  parseBackends,
  promiseLoops,
  runTimed,
  splitEngine,
  usageFor,
  within,
  type Backend,
  type Measurement,
  type TimedOptions,
  runGroup,
  type RowResult,
} from './harness'
import { READ_SAMPLE_EVERY, ioUringFds, runPeerJob, type Alloc, type PeerJob } from './peers'
import { printEngineSummary, type EngineRow } from './summary'

// ----- options -----------------------------------------------------------------

interface Options {
  timed: TimedOptions
  backends: Backend[]
  only: string[]
  fio: boolean
  memory: boolean
  memoryOps: number
  depths: number[]
  dataDir: string
  directSize: number
  cacheSize: number
  /** Also write the results here. */
  json: string | null
  bun: string | null
  bunDir: string
  noBun: boolean
}

const ROOT = path.resolve(__dirname, '..')
const MiB = 1 << 20

const usage: (msg: string) => never = usageFor(__filename, 'ringline file benchmark')

function parseOptions(argv: string[]): Options {
  const flags = new Flags(argv, FILES_FLAGS.known, FILES_FLAGS.valued, usage)
  if (flags.has('help')) usage('ringline file benchmark')
  const num = (k: string, def: number, min = 0): number => flags.num(k, def, min)
  const quick = flags.has('quick')
  const all = flags.has('all')
  const depths = (flags.get('depths') ?? '1,32,128').split(',').map(Number)
  if (depths.some((d) => !Number.isInteger(d) || d < 1 || d > 256)) usage('--depths takes integers from 1 to 256')
  const seconds = flags.has('seconds') ? num('seconds', 3, 0.1) : num('duration', quick ? 1 : 3, 0.1)
  return {
    timed: {
      durationMs: seconds * 1000,
      warmupMs: num('warmup', quick ? 0.25 : 1) * 1000,
    },
    backends: parseBackends(flags.get('backends'), usage),
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
    json: flags.get('json') ? path.resolve(flags.get('json') as string) : null,
    bun: flags.get('bun') || null,
    bunDir: path.resolve(flags.get('bun-dir') || process.env.BUN_DIR || '/tmp/bun'),
    noBun: flags.has('no-bun'),
  }
}

// ----- results -------------------------------------------------------------------

type Result = RowResult

/** A row of a group: a run, or (`skip`) the reason it cannot run here. */
interface Workload {
  group: string
  engine: string
  run?: () => Promise<Measurement>
  skip?: string
}

interface Group {
  name: string
  title: string
  /** Prepares what the group needs (files); runs only if a workload of it is selected. */
  before?: () => void
  workloads: Workload[]
}

const log = (s: string): void => {
  process.stdout.write(`${s}\n`)
}

const fmtMs = (ms: number): string => (ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${ms.toFixed(0)} ms`)

const isRingline = (engine: string): boolean => engine.startsWith('ringline')

/** The node peer every engine is held against (the summary, and the target mio >= node). */
const NODE_PEER = 'fs/promises'

const ENGINE_COL = 44

function printGroup(g: Group, results: Result[]): void {
  log(`  ${pad('engine', ENGINE_COL)}${padLeft('ops/s', 9)}${padLeft('p50 µs', 10)}${padLeft('p99 µs', 10)}`)
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
      log(`  ${pad(r.engine, ENGINE_COL)}${padLeft(fmtRate(m.opsPerSec), 9)}${padLeft(fmtUs(m.p50Us), 10)}${padLeft(fmtUs(m.p99Us), 10)}${note}`)
    } else {
      log(`  ${pad(r.engine, ENGINE_COL)}${r.skipped ? r.skipped : `FAILED: ${r.error}`}`)
    }
  }
  const peers = results.filter((r) => !isRingline(r.engine) && r.measurement)
  const ours = results.filter((r) => isRingline(r.engine) && r.measurement)
  if (ours.length === 0) return
  log('')
  for (const o of ours) {
    const rate = o.measurement!.opsPerSec
    const parts = peers.map((p) => `${fmtRatio(rate / p.measurement!.opsPerSec)} ${p.engine}`)
    // A mio row against the same variant on io_uring: the cost of the fallback.
    const { variant, backend } = splitEngine(o.engine)
    const twin = backend === 'mio' ? ours.find((x) => x.engine === engineLabel(variant, 'io_uring')) : undefined
    if (twin) parts.push(`${fmtRatio(rate / twin.measurement!.opsPerSec)} ${twin.engine}`)
    if (parts.length > 0) log(`  ${g.name}: ${o.engine} ${fmtRate(rate)}/s = ${parts.join(', ')}`)
  }
}

/** Columns of the read table: ringline variants (one row per engine) and peers. */
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
  ['fio psync', 'fio psync'],
]

/** ops/s of the main engines, one row per read workload and engine (the peers on the first). */
function printSummary(results: Result[], backends: Backend[]): void {
  const groups = [...new Set(results.map((r) => r.group))].filter((g) => g.endsWith(' read'))
  if (groups.length === 0) return
  log('')
  log(`== 4 KiB random reads, ops/s (rl = ringline; a row per engine: ${backends.join(', ')}; full names and latencies above)`)
  log(`  ${pad('', 22)}${pad('engine', 9)}${SUMMARY.map(([, h]) => padLeft(h, 11)).join('')}`)
  for (const g of groups) {
    backends.forEach((b, i) => {
      const cells = SUMMARY.map(([engine]) => {
        const ours = isRingline(engine)
        if (!ours && i > 0) return padLeft('', 11)
        const r = results.find((x) => x.group === g && x.engine === (ours ? engineLabel(engine, b) : engine))
        return padLeft(r?.measurement ? fmtRate(r.measurement.opsPerSec) : '-', 11)
      })
      log(`  ${pad(i === 0 ? g : '', 22)}${pad(b, 9)}${cells.join('')}`)
    })
  }
}

/** Per workload: the primary ringline variant on each engine against fs/promises. */
function engineRows(results: Result[]): EngineRow[] {
  const rate = (group: string, engine: string): number | null => {
    const r = results.find((x) => x.group === group && x.engine === engine)
    return r?.measurement ? r.measurement.opsPerSec : null
  }
  const rows: EngineRow[] = []
  for (const group of new Set(results.map((r) => r.group))) {
    const variant = group.startsWith('WAL') ? 'ringline append' : 'ringline read'
    const row: EngineRow = {
      bench: 'files',
      workload: group,
      variant,
      peer: NODE_PEER,
      unit: 'ops/s',
      node: rate(group, NODE_PEER),
      ioUring: rate(group, engineLabel(variant, 'io_uring')),
      mio: rate(group, engineLabel(variant, 'mio')),
    }
    if (row.ioUring !== null || row.mio !== null) rows.push(row)
  }
  return rows
}

interface RatioRecord {
  group: string
  ringline: string
  peer: string
  ratio: number
}

/** Every ringline row against every peer of its group, and each mio row against its io_uring twin. */
function ratios(results: Result[]): RatioRecord[] {
  const out: RatioRecord[] = []
  for (const o of results) {
    if (!isRingline(o.engine) || !o.measurement) continue
    for (const p of results) {
      if (p.group !== o.group || !p.measurement) continue
      const { variant, backend } = splitEngine(o.engine)
      const twin = backend === 'mio' && p.engine === engineLabel(variant, 'io_uring')
      if (isRingline(p.engine) && !twin) continue
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

/**
 * Ring options with the engine to run on. `backend` is a Ring option from the
 * mio engine on; a build without it ignores the key (and newRing notices).
 */
type EngineOptions = RingOptions & { backend: Backend }

/** A Ring on `o.backend`; fails if the ring reports another engine. */
function newRing(o: EngineOptions): Ring {
  const ring = new Ring(o)
  const got = ring.backend
  if (got !== o.backend) {
    void ring.close()
    throw new Error(`asked for backend '${o.backend}', the ring runs on '${got}' (does this build of the native module know the backend option?)`)
  }
  return ring
}

/** What mio does differently from io_uring, as the ring reports it (stats().degradations). */
function degradations(ring: Ring): string[] | undefined {
  const d = (ring.stats() as RingStats & { degradations?: unknown }).degradations
  return Array.isArray(d) ? d.map(String) : undefined
}

/** What a run did inside ringline: did it take the fast paths? */
function ringInfo(ring: Ring, ownMemory = false): Record<string, unknown> {
  const s = ring.stats()
  const info: Record<string, unknown> = {
    backend: ring.backend,
    degradations: degradations(ring),
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
  ringOptions: EngineOptions,
  file: string,
  flags: string,
  direct: boolean,
  body: (ring: Ring, fh: FileHandle, diag: () => string) => Promise<T>,
): Promise<T> {
  const ring = newRing(ringOptions)
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

function ringlineRead(w: ReadSpec, opts: TimedOptions, ringOptions: EngineOptions, memory: 'aligned' | 'plain'): Promise<Measurement> {
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
function ringlineReadMany(w: ReadSpec, opts: TimedOptions, ringOptions: EngineOptions, loops: number): Promise<Measurement> {
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

/**
 * `make()` with RINGLINE_SYNC_APPEND set to `v` (how synced appends become
 * durable: read when a Ring is made, which withRing does before its first
 * await); unchanged when `v` is undefined.
 */
function withSyncAppend<T>(v: string | undefined, make: () => T): T {
  const before = process.env.RINGLINE_SYNC_APPEND
  if (v !== undefined) process.env.RINGLINE_SYNC_APPEND = v
  try {
    return make()
  } finally {
    if (before === undefined) delete process.env.RINGLINE_SYNC_APPEND
    else process.env.RINGLINE_SYNC_APPEND = before
  }
}

function ringlineWal(file: string, opts: TimedOptions, mode: 'append' | 'write+datasync', ringOptions: EngineOptions, appenders = 1, syncAppend?: string): Promise<Measurement> {
  fs.rmSync(file, { force: true })
  const buf = Buffer.alloc(BLOCK, 0x5a)
  return withSyncAppend(syncAppend, () => withRing(ringOptions, file, 'a', false, async (ring, fh, diag) => {
    const m = await runTimed(opts, 1, (ctl) =>
      mode === 'append'
        ? promiseLoops(
            ctl,
            appenders,
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
  })).finally(() => fs.rmSync(file, { force: true }))
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

/**
 * Runs a peer job in a child process: node with UV_USE_IO_URING=1, or
 * (`bun`: its path) the same script under Bun, whose node:fs it measures.
 */
function runChild(job: PeerJob, opts: TimedOptions, bun?: string): Promise<Measurement> {
  const who = bun === undefined ? 'UV_USE_IO_URING child' : 'bun child'
  return new Promise((resolve, reject) => {
    const [bin, args, env] =
      bun === undefined
        ? [process.execPath, [...childExecArgv(), CHILD], { ...process.env, UV_USE_IO_URING: '1' }]
        : [bun, [CHILD], { ...process.env }]
    const child = spawn(bin, [...args, JSON.stringify({ job, opts })], {
      cwd: ROOT,
      env,
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
        if (bun === undefined) {
          const fds = doc.uringFds ?? -1
          m.info = { ...m.info, libuvIoUringFds: fds }
          if (fds === 0) m.info.note = '(libuv opened no io_uring: thread-pool figures)'
        }
        resolve(m)
        return
      }
      const why = doc?.error ?? (err.trim().split('\n').slice(-3).join(' / ') || 'no output')
      reject(new Error(`${who} ${signal ? `killed by ${signal}` : `exit ${code}`}: ${why}`))
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

async function memoryCheck(file: string, fileSize: number, total: number, backend: Backend): Promise<Record<string, unknown>> {
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
  return withRing({ completion: 'thread', backend }, file, 'r', false, async (ring, fh) => {
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

  const fioWhy = o.fio ? 'fio not installed: skipped' : 'skipped (--no-fio)'
  const bun = o.noBun ? { path: null, version: null, looked: [] } : findBun(o.bun, o.bunDir)
  const bunWhy = o.noBun ? 'skipped (--no-bun)' : `skipped: no bun binary found (looked at ${bun.looked.join(', ')})`
  const SQPOLL_ONLY = 'skipped: sqpoll is an io_uring option (mio has no submission queue)'

  const groups: Group[] = []
  /** Adds to `w` a ringline variant once per engine; `ioUringOnly`: why it is skipped on mio. */
  const ringline = (w: Workload[], group: string, variant: string, run: (b: Backend) => Promise<Measurement>, ioUringOnly?: string): void => {
    for (const b of o.backends) {
      const engine = engineLabel(variant, b)
      if (b !== 'io_uring' && ioUringOnly !== undefined) w.push({ group, engine, skip: ioUringOnly })
      else w.push({ group, engine, run: () => run(b) })
    }
  }
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
      const rl = (variant: string, run: (b: Backend) => Promise<Measurement>, ioUringOnly?: string): void => ringline(w, name, variant, run, ioUringOnly)
      for (const sqpoll of [false, true]) {
        const sq = sqpoll ? ' sqpoll' : ''
        const only = sqpoll ? SQPOLL_ONLY : undefined
        const ro = (backend: Backend): EngineOptions => ({ sqpoll, completion: 'thread', backend })
        rl(`ringline read${sq}`, (b) => ringlineRead(spec, t, ro(b), 'aligned'), only)
        rl(`ringline readMany${sq}`, (b) => ringlineReadMany(spec, t, ro(b), 1), only)
        if (depth >= 2 && depth % 2 === 0) rl(`ringline readMany 2xhalf${sq}`, (b) => ringlineReadMany(spec, t, ro(b), 2), only)
      }
      rl('ringline read loop', (b) => ringlineRead(spec, t, { completion: 'loop', backend: b }, 'aligned'))
      rl('ringline readMany loop', (b) => ringlineReadMany(spec, t, { completion: 'loop', backend: b }, 1))
      if (!direct) rl('ringline read Buffer', (b) => ringlineRead(spec, t, { completion: 'thread', backend: b }, 'plain'))
      for (const engine of ['promises', 'callback'] as const) {
        const job: PeerJob = { kind: 'read', engine, file, fileSize, direct, depth }
        const label = engine === 'promises' ? 'fs/promises' : 'fs callback'
        add(label, () => runPeerJob(job, t, alloc))
        add(`${label}+UV_USE_IO_URING`, () => runChild(job, t))
      }
      const readJob: PeerJob = { kind: 'read', engine: 'promises', file, fileSize, direct, depth }
      if (bun.path !== null) add('bun fs.promises', () => runChild(readJob, t, bun.path as string))
      else w.push({ group: name, engine: 'bun fs.promises', skip: bunWhy })
      if (fio) add('fio io_uring', () => fioRandRead(fio, spec, t))
      else w.push({ group: name, engine: 'fio io_uring', skip: fioWhy })
      if (depth === 1) {
        if (fio) add('fio psync', () => fioRandRead(fio, spec, t, 'psync'))
        else w.push({ group: name, engine: 'fio psync', skip: fioWhy })
      }
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
    const rl = (variant: string, run: (b: Backend) => Promise<Measurement>): void => ringline(w, name, variant, run)
    rl('ringline append', (b) => ringlineWal(walFile(`ringline-${b}`), t, 'append', { completion: 'thread', backend: b }))
    rl('ringline append loop', (b) => ringlineWal(walFile(`ringline-loop-${b}`), t, 'append', { completion: 'loop', backend: b }))
    // How a lone append becomes durable (RINGLINE_SYNC_APPEND): a write
    // linked to an fdatasync, or one write with RWF_DSYNC.
    for (const v of ['linked', 'dsync']) {
      rl(`ringline append ${v}`, (b) => ringlineWal(walFile(`ringline-${v}-${b}`), t, 'append', { completion: 'thread', backend: b }, 1, v))
    }
    rl('ringline write+datasync', (b) => ringlineWal(walFile(`ringline2-${b}`), t, 'write+datasync', { completion: 'thread', backend: b }))
    for (const engine of ['promises', 'callback', 'sync'] as const) {
      const label = engine === 'promises' ? 'fs/promises' : engine === 'callback' ? 'fs callback' : 'fs writeSync'
      add(label, () => runPeerJob({ kind: 'wal', engine, file: walFile(engine) }, t, alloc))
      if (engine !== 'sync') add(`${label}+UV_USE_IO_URING`, () => runChild({ kind: 'wal', engine, file: walFile(`${engine}-uring`) }, t))
    }
    for (const engine of ['promises', 'sync'] as const) {
      const label = engine === 'promises' ? 'bun fs.promises' : 'bun writeSync'
      if (bun.path !== null) add(label, () => runChild({ kind: 'wal', engine, file: walFile(`bun-${engine}`) }, t, bun.path as string))
      else w.push({ group: name, engine: label, skip: bunWhy })
    }
    if (fio) {
      add('fio psync', () => fioWal(fio, walFile('fio-psync'), 'psync', t))
      add('fio io_uring', () => fioWal(fio, walFile('fio-uring'), 'io_uring', t))
    } else {
      for (const engine of ['fio psync', 'fio io_uring']) w.push({ group: name, engine, skip: fioWhy })
    }
    groups.push({
      name,
      title: '4 KiB append + fdatasync, one at a time (write-ahead log), fresh file each',
      workloads: w,
    })
  }
  {
    // Group commit: 32 appenders on one handle share fdatasyncs
    // (driver/group_commit.rs); the peer is the one-at-a-time sync rate
    // the issue measures it against (target: 10x).
    const name = 'WAL append+fdatasync x32'
    const walFile = (tag: string): string => path.join(o.dataDir, `wal32-${tag}.log`)
    const w: Workload[] = []
    const rl = (variant: string, run: (b: Backend) => Promise<Measurement>): void => ringline(w, name, variant, run)
    rl('ringline append x32', (b) => ringlineWal(walFile(`ringline-${b}`), t, 'append', { completion: 'thread', backend: b }, 32))
    rl('ringline append x32 loop', (b) => ringlineWal(walFile(`ringline-loop-${b}`), t, 'append', { completion: 'loop', backend: b }, 32))
    // Each way of making appends durable (RINGLINE_SYNC_APPEND): on their
    // own (linked write+fdatasync, or RWF_DSYNC), or sharing fsyncs with
    // the lone one going either way.
    for (const v of ['linked', 'dsync', 'group+linked', 'group+dsync']) {
      rl(`ringline append x32 ${v}`, (b) => ringlineWal(walFile(`ringline-${v}-${b}`), t, 'append', { completion: 'thread', backend: b }, 32, v))
    }
    w.push({ group: name, engine: 'fs writeSync (1 at a time)', run: () => runPeerJob({ kind: 'wal', engine: 'sync', file: walFile('sync') }, t, alloc) })
    groups.push({
      name,
      title: '4 KiB append + fdatasync, 32 appenders on one handle (group commit) against one-at-a-time writeSync+fdatasyncSync',
      workloads: w,
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
    bun: bun.path !== null ? `${bun.path} (${bun.version})` : o.noBun ? 'disabled (--no-bun)' : 'not found',
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
  const engines: Record<string, unknown> = {}
  for (const b of o.backends) {
    try {
      const ring = newRing({ backend: b, registerBuffers: false, registerFiles: false })
      const d = degradations(ring)
      engines[b] = { backend: ring.backend, degradations: d ?? null }
      await ring.close()
      log(`engine ${b}: ${d === undefined ? 'available' : d.length === 0 ? 'available, no degradations' : `degradations: ${d.join('; ')}`}`)
    } catch (e) {
      engines[b] = { error: (e as Error).message }
      log(`engine ${b}: UNAVAILABLE: ${(e as Error).message} (its rows will fail)`)
    }
  }

  const results: Result[] = []
  for (const g of groups) {
    const mine = await runGroup(g.name, g.title, g.workloads.filter((w) => selected(w.group, w.engine)), g.before, log)
    if (mine === null) continue
    if (mine.some((r) => r.error?.startsWith('setup: '))) {
      results.push(...mine)
      continue
    }
    printGroup(g, mine)
    results.push(...mine)
  }

  printSummary(results, o.backends)

  let memory: Record<string, unknown> | null = null
  if (o.memory) {
    memory = {}
    for (const b of o.backends) {
      log('')
      log(`== memory (${b}): ${fmtRate(o.memoryOps)} page-cache 4 KiB reads at qd32 via fh.read`)
      try {
        ensureFile(cacheFile, o.cacheSize, false, alloc, log)
        warmPageCache(cacheFile)
        memory[b] = await memoryCheck(cacheFile, o.cacheSize, o.memoryOps, b)
      } catch (e) {
        log(`  FAILED: ${(e as Error).message}`)
        memory[b] = { error: (e as Error).message }
      }
    }
  } else {
    log('')
    log('memory check: not run (pass --memory or --all)')
  }

  const summary = engineRows(results)
  if (summary.length > 0) {
    log('')
    log(`== engines (files): ringline on ${o.backends.join(' and ')} against node:fs`)
    printEngineSummary(summary, o.backends, log)
  }

  await allocRing.close()
  meta.loadavgEnd = os.loadavg()
  const doc = { meta, engines, results, ratios: ratios(results), engineSummary: summary, memory }
  const stamp = started.toISOString().replace(/[:.]/g, '-')
  const out = path.join(resultsDir, `files-${stamp}.json`)
  const json = `${JSON.stringify(doc, null, 2)}\n`
  fs.writeFileSync(out, json)
  fs.writeFileSync(path.join(resultsDir, 'files-latest.json'), json)
  if (o.json !== null) fs.writeFileSync(o.json, json)
  log('')
  log(`load average at the end ${meta.loadavgEnd.map((x) => x.toFixed(2)).join(' ')}`)
  log(`results: ${path.relative(process.cwd(), out)} (and files-latest.json)`)
}

main().catch((e: unknown) => {
  process.stderr.write(`benchmark failed: ${(e as Error)?.stack ?? String(e)}\n`)
  process.exit(1)
})
