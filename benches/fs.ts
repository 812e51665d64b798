// Whole-file and metadata benchmark for ringline/fs (the coming drop-in for
// node:fs/promises) against its peers, side by side in one run: node's
// fs/promises, fs callbacks and sync calls, and Bun's fs.promises and sync
// calls in a child process (when a bun binary is found).
//
//   node --expose-gc --import tsx benches/fs.ts [flags]
//
// Flags (`--flag=V` and `--flag V` both work):
//   --duration=S     seconds of measured passes per row (default 3; --seconds=S
//                    is the same); a pass always runs to its end
//   --warmup=S       warm-up passes run for this long first (default 0.5; at
//                    least one pass; 0: none)
//   --quick          1 s per row and a single warm-up pass: smoke runs
//   --only=A,B       run only rows whose "<workload> <engine>" contains A or B
//                    (case-insensitive), e.g. --only=readFile, --only=bun,
//                    --only="overwrite fs/promises", --only=churn
//   --concurrency=N  calls in flight for the promise and callback engines
//                    (default 64); the sync engines go one at a time
//   --dir=DIR        where the scratch directory is made (default os.tmpdir();
//                    the file system matters a lot: see benches/FS-FINDINGS.md)
//   --bun=PATH       the bun binary (else $BUN, else `bun` on PATH, else the
//                    npm package @oven/bun-linux-<arch> under --bun-dir)
//   --bun-dir=DIR    an npm prefix holding node_modules/@oven/bun-linux-<arch>
//                    (default $BUN_DIR, else /tmp/bun), installed with
//                      mkdir -p /tmp/bun && cd /tmp/bun && npm install @oven/bun-linux-x64
//                    (outside the repository)
//   --no-bun         skip Bun even if found
//   --child-control  also run node's fs/promises and sync in a child process,
//                    the way Bun runs: what the child process alone changes
//   --ringline-fs=M  module to load as ringline/fs (default: the first of
//                    ../fs, ../lib/fs that loads)
//   --json=FILE      also write the results to FILE
//
// Workloads (each a pass of N calls, repeated; setup outside the timer):
//   readFile 4KiB       readFile of 10,000 files of 4 KiB
//   readFile 256KiB     readFile of 1,000 files of 256 KiB
//                       Both are page-cache reads: the files were just written
//                       and dropping the page cache cannot be done reliably
//                       here, so no read reaches the disk.
//   writeFile new       writeFile of 10,000 new 4 KiB files (a fresh directory
//                       per pass, made before the timer starts)
//   writeFile overwrite writeFile of 10,000 existing 4 KiB files, same size
//                       Writes: sync(1) before each pass (outside the timer),
//                       so no pass inherits another's dirty pages; new files
//                       are kept until the end (so no engine creates files
//                       right after another deleted 10,000).
//   stat                stat of 10,000 paths (the readFile 4KiB files)
//   readdir             64 readdirs of the 10,000-entry directory per pass
//   churn               2,000 cycles per pass of mkdir(d), rename(s, d/x),
//                       unlink(d/x) (each cycle's empty file s made before
//                       the timer); ops/s counts cycles
// Engines:
//   fs/promises         node:fs/promises, 64 calls in flight
//   fs callback         node:fs callbacks, 64 chains
//   fs sync             node's sync calls, one at a time
//   ringline ...        ringline rows: today (no ringline/fs yet) readFile as
//                       open + fh.stat + fh.read into a buffer of that size +
//                       close, and writeFile as open('w') + fh.write + close,
//                       64 in flight on the default Ring; for writeFile also
//                       open(O_WRONLY|O_CREAT) + write + fh.truncate(len) +
//                       close, Bun's pattern (FS-FINDINGS.md); stat, readdir and
//                       churn have no fair ringline equivalent yet. Once
//                       ringline/fs exists, its row appears for every
//                       workload whose functions it exports (RINGLINE table)
//   bun fs.promises     Bun's fs.promises, 64 in flight, in a child process
//   bun fs sync         Bun's sync calls, one at a time, in a child process
//   node ... (child)    with --child-control: node in the same child harness
//
// Output: a table per workload (ops/s, sampled latency p50/p99, passes),
// ratio lines (every ringline row against every peer; every Bun row against
// node's), a summary table; results in bench-results/fs-<timestamp>.json and
// fs-latest.json. The scratch directory is removed at the end.

import { spawn, spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { defaultRing, open } from '../index'
import { findBun, type BunInfo } from './bun'
import { canRun, measureJob, runtimePromises, type Call, type Engine, type FsImpl, type WorkJob } from './fs-work'
import { Flags, fmtRate, fmtRatio, fmtUs, pad, padLeft, runGroup, usageFor, type Measurement, type RowResult } from './harness'

// ----- options -----------------------------------------------------------------

const FS_FLAGS = {
  known: ['quick', 'help', 'no-bun', 'child-control'],
  valued: ['duration', 'seconds', 'warmup', 'only', 'concurrency', 'dir', 'bun', 'bun-dir', 'ringline-fs', 'json'],
}

interface Options {
  durationMs: number
  warmupMs: number
  quick: boolean
  only: string[]
  concurrency: number
  dir: string
  bun: string | null
  bunDir: string
  noBun: boolean
  childControl: boolean
  ringlineFs: string | null
  json: string | null
}

const ROOT = path.resolve(__dirname, '..')

const usage: (msg: string) => never = usageFor(__filename, 'ringline fs benchmark')

function parseOptions(argv: string[]): Options {
  const flags = new Flags(argv, FS_FLAGS.known, FS_FLAGS.valued, usage)
  if (flags.has('help')) usage('ringline fs benchmark')
  const quick = flags.has('quick')
  const seconds = flags.has('seconds') ? flags.num('seconds', 3, 0.1) : flags.num('duration', quick ? 1 : 3, 0.1)
  const concurrency = flags.num('concurrency', 64, 1)
  if (!Number.isInteger(concurrency)) usage('--concurrency takes an integer')
  return {
    durationMs: seconds * 1000,
    warmupMs: flags.num('warmup', quick ? 0.001 : 0.5) * 1000,
    quick,
    only: (flags.get('only') ?? '')
      .split(',')
      .map((s) => s.trim().toLowerCase())
      .filter((s) => s !== ''),
    concurrency,
    dir: path.resolve(flags.get('dir') || os.tmpdir()),
    bun: flags.get('bun') || null,
    bunDir: path.resolve(flags.get('bun-dir') || process.env.BUN_DIR || '/tmp/bun'),
    noBun: flags.has('no-bun'),
    childControl: flags.has('child-control'),
    ringlineFs: flags.get('ringline-fs') || null,
    json: flags.get('json') ? path.resolve(flags.get('json') as string) : null,
  }
}

const log = (s: string): void => {
  process.stdout.write(`${s}\n`)
}

// ----- ringline implementations -------------------------------------------------------

/** readFile today: open, fh.stat for the size, fh.read into a buffer of that size, close. */
async function ringlineOpenReadFile(p: string): Promise<Buffer> {
  const fh = await open(p, 'r')
  try {
    const { size } = await fh.stat()
    const buf = Buffer.allocUnsafe(size)
    let off = 0
    while (off < size) {
      const { bytesRead } = await fh.read(buf, off, size - off, off)
      if (bytesRead === 0) break
      off += bytesRead
    }
    return off === size ? buf : buf.subarray(0, off)
  } finally {
    await fh.close()
  }
}

/** writeFile today: open('w') (O_TRUNC, as node's writeFile), fh.write until done, close. */
async function ringlineOpenWriteFile(p: string, data: Uint8Array): Promise<void> {
  const fh = await open(p, 'w')
  try {
    let off = 0
    while (off < data.byteLength) {
      const { bytesWritten } = await fh.write(data, off, data.byteLength - off, off)
      off += bytesWritten
    }
  } finally {
    await fh.close()
  }
}

/**
 * writeFile the way Bun does it (benches/FS-FINDINGS.md): open without
 * O_TRUNC, write from 0, then ftruncate to the length written, close. Not
 * node's semantics on a failed write (the old tail stays), but on ext4 a
 * same-size overwrite then no longer starts writeback at close.
 */
async function ringlineOpenWriteTruncFile(p: string, data: Uint8Array): Promise<void> {
  const fh = await open(p, fs.constants.O_WRONLY | fs.constants.O_CREAT)
  try {
    let off = 0
    while (off < data.byteLength) {
      const { bytesWritten } = await fh.write(data, off, data.byteLength - off, off)
      off += bytesWritten
    }
    await fh.truncate(off)
  } finally {
    await fh.close()
  }
}

/**
 * ringline's rows. One entry per implementation; a workload runs it when it
 * has the functions the workload needs (fs-work.ts NEEDS). `label` names
 * the row per call. The ringline/fs entry is filled at startup from the
 * module, if there is one (loadRinglineFs).
 */
interface RinglineEntry {
  name: string
  impl: FsImpl
  label?: Partial<Record<Call, string>>
}

const RINGLINE: RinglineEntry[] = [
  {
    name: 'ringline open+fh',
    impl: { readFile: ringlineOpenReadFile, writeFile: ringlineOpenWriteFile },
    label: { readFile: 'ringline open+read+close', writeFile: 'ringline open+write+close' },
  },
  {
    name: 'ringline open+fh without O_TRUNC',
    impl: { writeFile: ringlineOpenWriteTruncFile },
    label: { writeFile: 'ringline open+write+ftruncate+close' },
  },
  { name: 'ringline/fs', impl: {} },
]

const FS_FUNCTIONS: (keyof FsImpl)[] = ['readFile', 'writeFile', 'stat', 'readdir', 'mkdir', 'rename', 'unlink']

/** Fills the ringline/fs entry from the module, if it loads; says what it found. */
async function loadRinglineFs(explicit: string | null): Promise<string> {
  const candidates = explicit ? [path.resolve(explicit)] : [path.join(ROOT, 'fs'), path.join(ROOT, 'lib', 'fs')]
  const failures: string[] = []
  for (const c of candidates) {
    let m: Record<string, unknown>
    try {
      m = (await import(c)) as Record<string, unknown>
    } catch (e) {
      failures.push(`${path.relative(ROOT, c) || c}: ${(e as Error).message.split('\n')[0]}`)
      continue
    }
    const sources = [m, m.promises, m.default].filter((x): x is Record<string, unknown> => x !== null && typeof x === 'object')
    const impl: Record<string, unknown> = {}
    for (const k of FS_FUNCTIONS) {
      const f = sources.map((s) => s[k]).find((x) => typeof x === 'function')
      if (f !== undefined) impl[k] = f
    }
    RINGLINE[RINGLINE.length - 1].impl = impl as FsImpl
    const have = FS_FUNCTIONS.filter((k) => impl[k] !== undefined)
    return `ringline/fs: ${path.relative(ROOT, c)} (${have.length > 0 ? have.join(', ') : 'none of the functions'})`
  }
  return `ringline/fs: not available (${explicit ? failures.join('; ') : 'no ../fs or ../lib/fs module yet'}): its rows are left out`
}

// ----- Bun --------------------------------------------------------------------------

const WORKER = path.join(__dirname, 'fs-bun-worker.ts')

interface ChildOutput {
  ok?: boolean
  runtime?: string
  error?: string
  measurement?: Measurement
}

/** Runs `job` in a child process (`argv0 ...args WORKER`) and reads its measurement. */
function runChild(argv0: string, args: string[], job: WorkJob, api: 'promises' | 'sync'): Promise<Measurement> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv0, [...args, WORKER, JSON.stringify({ job, api })], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (d: Buffer) => (out += d.toString()))
    child.stderr.on('data', (d: Buffer) => (err += d.toString()))
    const timer = setTimeout(() => child.kill('SIGKILL'), 600_000)
    child.on('error', (e) => {
      clearTimeout(timer)
      reject(new Error(`child process could not start: ${e.message}`))
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      let doc: ChildOutput | null = null
      try {
        doc = JSON.parse(out.trim().split('\n').pop() ?? '') as ChildOutput
      } catch {
        doc = null
      }
      if (doc?.ok && doc.measurement) {
        doc.measurement.info = { ...doc.measurement.info, runtime: doc.runtime }
        resolve(doc.measurement)
        return
      }
      const why = doc?.error?.split('\n')[0] ?? (err.trim().split('\n').slice(-3).join(' / ') || 'no output')
      reject(new Error(`child ${signal ? `killed by ${signal}` : `exit ${code}`}: ${why}`))
    })
  })
}

// ----- workloads ------------------------------------------------------------------------

const KiB = 1024

interface Row {
  engine: string
  run?: () => Promise<Measurement>
  skip?: string
}

interface Group {
  name: string
  title: string
  call: Call
  /** Makes what the group's passes read (files); runs only if a row of it is selected. */
  before?: () => void
  rows: Row[]
}

type Result = RowResult

const isRingline = (engine: string): boolean => engine.startsWith('ringline')
const isBun = (engine: string): boolean => engine.startsWith('bun ')

/** n files of `size` bytes named f0 .. f<n-1> in `dir`, made with sync calls. */
function makeFiles(dir: string, n: number, size: number): void {
  fs.mkdirSync(dir, { recursive: true })
  const data = Buffer.alloc(size, 0x62)
  const t0 = performance.now()
  for (let i = 0; i < n; i++) fs.writeFileSync(path.join(dir, `f${i}`), data)
  spawnSync('sync', { stdio: 'ignore' })
  const s = (performance.now() - t0) / 1000
  log(`  (setup: ${n} files of ${size / KiB} KiB in ${path.basename(dir)}/, ${s.toFixed(1)} s with writeFileSync + sync)`)
}

/** The file system `dir` is on, from /proc/mounts (longest mount point that contains it). */
function fileSystemOf(dir: string): string {
  try {
    let best: string[] | null = null
    for (const line of fs.readFileSync('/proc/mounts', 'utf8').split('\n')) {
      const f = line.split(' ')
      if (f.length < 4) continue
      const mp = f[1].replace(/\\040/g, ' ')
      if ((dir === mp || dir.startsWith(mp.endsWith('/') ? mp : `${mp}/`)) && (best === null || mp.length > best[1].length)) best = f
    }
    return best ? `${best[2]} on ${best[1]} (${best[0]}; ${best[3]})` : 'unknown'
  } catch {
    return 'unknown'
  }
}

// ----- printing ------------------------------------------------------------------------

const ENGINE_COL = 48

function printGroup(results: Result[]): void {
  log(`  ${pad('engine', ENGINE_COL)}${padLeft('ops/s', 9)}${padLeft('p50 µs', 10)}${padLeft('p99 µs', 10)}${padLeft('passes', 8)}`)
  for (const r of results) {
    const m = r.measurement
    if (m) {
      const passes = String(m.info?.passes ?? '-')
      log(`  ${pad(r.engine, ENGINE_COL)}${padLeft(fmtRate(m.opsPerSec), 9)}${padLeft(fmtUs(m.p50Us), 10)}${padLeft(fmtUs(m.p99Us), 10)}${padLeft(passes, 8)}`)
    } else {
      log(`  ${pad(r.engine, ENGINE_COL)}${r.skipped ? r.skipped : `FAILED: ${r.error}`}`)
    }
  }
  const lines = ratioRecords(results).map(
    (x) => `  ${x.engine} ${fmtRate(x.rate)}/s = ${x.against.map((a) => `${fmtRatio(a.ratio)} ${a.peer}`).join(', ')}`,
  )
  if (lines.length > 0) {
    log('')
    for (const l of lines) log(l)
  }
}

interface RatioLine {
  group: string
  engine: string
  rate: number
  against: { peer: string; ratio: number }[]
}

/** Every ringline row against every other engine; every Bun row against node's rows. */
function ratioRecords(results: Result[]): RatioLine[] {
  const ok = results.filter((r) => r.measurement)
  const out: RatioLine[] = []
  for (const o of ok) {
    let peers: Result[]
    const same = ok.filter((p) => p.group === o.group)
    if (isRingline(o.engine)) peers = same.filter((p) => !isRingline(p.engine))
    else if (isBun(o.engine)) peers = same.filter((p) => p.engine.startsWith('fs'))
    else continue
    if (peers.length === 0) continue
    const rate = o.measurement!.opsPerSec
    out.push({ group: o.group, engine: o.engine, rate, against: peers.map((p) => ({ peer: p.engine, ratio: rate / p.measurement!.opsPerSec })) })
  }
  return out
}

/** Short column names of the summary; ringline rows are matched by prefix. */
const SUMMARY: [string, string][] = [
  ['fs/promises', 'fs/prom'],
  ['fs callback', 'fs cb'],
  ['fs sync', 'fs sync'],
  ['ringline open', 'rl open'],
  ['ringline open+write+ftruncate', 'rl ftrunc'],
  ['ringline/fs', 'rl/fs'],
  ['bun fs.promises', 'bun prom'],
  ['bun fs sync', 'bun sync'],
]

function printSummary(results: Result[], groups: Group[]): void {
  const names = groups.map((g) => g.name).filter((n) => results.some((r) => r.group === n && r.measurement))
  if (names.length === 0) return
  log('')
  log(`== summary, ops/s (rl open: ringline open+read/write+close today; rl ftrunc: open without O_TRUNC+write+ftruncate+close; bun/node: bun fs.promises / fs/promises)`)
  log(`  ${pad('workload', 21)}${SUMMARY.map(([, h]) => padLeft(h, 10)).join('')}${padLeft('bun/node', 10)}`)
  for (const n of names) {
    const rate = (prefix: string): number | null => {
      const r = results.find((x) => x.group === n && x.measurement && (x.engine === prefix || x.engine.startsWith(`${prefix} `) || x.engine.startsWith(`${prefix}+`)))
      return r?.measurement ? r.measurement.opsPerSec : null
    }
    const cells = SUMMARY.map(([prefix]) => {
      const v = rate(prefix)
      return padLeft(v === null ? '-' : fmtRate(v), 10)
    })
    const b = rate('bun fs.promises')
    const f = rate('fs/promises')
    log(`  ${pad(n, 21)}${cells.join('')}${padLeft(b !== null && f !== null ? fmtRatio(b / f) : '-', 10)}`)
  }
}

// ----- main ----------------------------------------------------------------------------

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2))
  const resultsDir = path.join(ROOT, 'bench-results')
  fs.mkdirSync(resultsDir, { recursive: true })
  fs.mkdirSync(o.dir, { recursive: true })
  const scratch = fs.mkdtempSync(path.join(o.dir, 'ringline-fsbench-'))
  const cleanup = (): void => {
    try {
      fs.rmSync(scratch, { recursive: true, force: true })
    } catch {
      // best effort
    }
  }
  process.once('SIGINT', () => {
    log(`\ninterrupted: removing ${scratch}`)
    cleanup()
    process.exit(130)
  })

  const bun: BunInfo = o.noBun ? { path: null, version: null, looked: [] } : findBun(o.bun, o.bunDir)
  const ringlineFs = await loadRinglineFs(o.ringlineFs)
  const ring = defaultRing()
  const backend = ring.backend

  const small = path.join(scratch, 'small')
  const large = path.join(scratch, 'large')
  const over = path.join(scratch, 'overwrite')
  const plan = (maxPasses: number): WorkJob['plan'] => ({ warmupMs: o.warmupMs, durationMs: o.durationMs, maxPasses })
  const C = o.concurrency
  const SMALL_N = 10_000
  const LARGE_N = 1_000
  const READDIRS = 64
  const CHURN_N = 2_000
  // New files and the churn leave their files until the end: a few passes suffice.
  const FRESH_PASSES = o.quick ? 1 : 3

  const specs: { name: string; title: string; call: Call; before?: () => void; job: (tag: string) => WorkJob }[] = [
    {
      name: 'readFile 4KiB',
      title: `readFile of ${SMALL_N.toLocaleString('en')} files of 4 KiB (page cache)`,
      call: 'readFile',
      before: () => fs.existsSync(small) || makeFiles(small, SMALL_N, 4 * KiB),
      job: () => ({ call: 'readFile', dir: small, count: SMALL_N, fresh: false, size: 4 * KiB, entries: 0, concurrency: C, flush: false, plan: plan(1000) }),
    },
    {
      name: 'readFile 256KiB',
      title: `readFile of ${LARGE_N.toLocaleString('en')} files of 256 KiB (page cache)`,
      call: 'readFile',
      before: () => fs.existsSync(large) || makeFiles(large, LARGE_N, 256 * KiB),
      job: () => ({ call: 'readFile', dir: large, count: LARGE_N, fresh: false, size: 256 * KiB, entries: 0, concurrency: C, flush: false, plan: plan(1000) }),
    },
    {
      name: 'writeFile new',
      title: `writeFile of ${SMALL_N.toLocaleString('en')} new files of 4 KiB (fresh directory per pass; sync(1) before each pass)`,
      call: 'writeFile',
      job: (tag) => ({
        call: 'writeFile',
        dir: path.join(scratch, 'new', tag),
        count: SMALL_N,
        fresh: true,
        size: 4 * KiB,
        entries: 0,
        concurrency: C,
        flush: true,
        plan: plan(FRESH_PASSES),
      }),
    },
    {
      name: 'writeFile overwrite',
      title: `writeFile over ${SMALL_N.toLocaleString('en')} existing 4 KiB files, same size (sync(1) before each pass)`,
      call: 'writeFile',
      before: () => fs.existsSync(over) || makeFiles(over, SMALL_N, 4 * KiB),
      job: () => ({ call: 'writeFile', dir: over, count: SMALL_N, fresh: false, size: 4 * KiB, entries: 0, concurrency: C, flush: true, plan: plan(1000) }),
    },
    {
      name: 'stat',
      title: `stat of ${SMALL_N.toLocaleString('en')} paths`,
      call: 'stat',
      before: () => fs.existsSync(small) || makeFiles(small, SMALL_N, 4 * KiB),
      job: () => ({ call: 'stat', dir: small, count: SMALL_N, fresh: false, size: 0, entries: 0, concurrency: C, flush: false, plan: plan(1000) }),
    },
    {
      name: 'readdir',
      title: `readdir of a directory of ${SMALL_N.toLocaleString('en')} entries, ${READDIRS} per pass`,
      call: 'readdir',
      before: () => fs.existsSync(small) || makeFiles(small, SMALL_N, 4 * KiB),
      job: () => ({ call: 'readdir', dir: small, count: READDIRS, fresh: false, size: 0, entries: SMALL_N, concurrency: C, flush: false, plan: plan(1000) }),
    },
    {
      name: 'churn',
      title: `mkdir(d) + rename(s, d/x) + unlink(d/x), ${CHURN_N.toLocaleString('en')} cycles per pass; ops/s = cycles/s (sync(1) before each pass)`,
      call: 'churn',
      job: (tag) => ({
        call: 'churn',
        dir: path.join(scratch, 'churn', tag),
        count: CHURN_N,
        fresh: true,
        size: 0,
        entries: 0,
        concurrency: C,
        flush: true,
        plan: plan(FRESH_PASSES),
      }),
    },
  ]

  const tagOf = (engine: string): string => engine.replace(/[^a-zA-Z0-9]+/g, '-')
  const groups: Group[] = specs.map((s) => {
    const rows: Row[] = []
    const inProcess = (engine: string, e: Engine): void => {
      rows.push({ engine, run: () => measureJob(s.job(tagOf(engine)), e) })
    }
    inProcess('fs/promises', { kind: 'promise', impl: runtimePromises() })
    inProcess('fs callback', { kind: 'callback' })
    inProcess('fs sync', { kind: 'sync' })
    for (const r of RINGLINE) {
      if (!canRun(r.impl, s.call)) continue
      inProcess(`${r.label?.[s.call] ?? r.name} (${backend})`, { kind: 'promise', impl: r.impl })
    }
    if (o.childControl) {
      const args = ['--import', 'tsx']
      for (const api of ['promises', 'sync'] as const) {
        const engine = `node ${api === 'promises' ? 'fs/promises' : 'fs sync'} (child)`
        rows.push({ engine, run: () => runChild(process.execPath, args, s.job(tagOf(engine)), api) })
      }
    }
    for (const api of ['promises', 'sync'] as const) {
      const engine = api === 'promises' ? 'bun fs.promises' : 'bun fs sync'
      if (bun.path !== null) rows.push({ engine, run: () => runChild(bun.path as string, [], s.job(tagOf(engine)), api) })
      else rows.push({ engine, skip: o.noBun ? 'skipped (--no-bun)' : 'skipped: no bun binary found' })
    }
    return { name: s.name, title: s.title, call: s.call, before: s.before, rows }
  })

  const selected = (group: string, engine: string): boolean => {
    const name = `${group} ${engine}`.toLowerCase()
    return o.only.length === 0 || o.only.some((x) => name.includes(x))
  }

  const started = new Date()
  const meta = {
    started: started.toISOString(),
    node: process.version,
    libuv: process.versions.uv,
    bun: bun.path ? { path: bun.path, version: bun.version } : { notFound: o.noBun ? '--no-bun' : bun.looked },
    kernel: `${os.type()} ${os.release()}`,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
    uvThreadpoolSize: process.env.UV_THREADPOOL_SIZE ?? '4 (default)',
    uvUseIoUring: process.env.UV_USE_IO_URING ?? null,
    ringlineBackend: backend,
    ringlineFs,
    scratch,
    fileSystem: fileSystemOf(scratch),
    options: o,
    loadavgStart: os.loadavg(),
    loadavgEnd: [] as number[],
  }
  log(`ringline fs benchmark — ${meta.started}`)
  log(`node ${meta.node} (libuv ${meta.libuv}, UV_THREADPOOL_SIZE ${meta.uvThreadpoolSize}), ${meta.kernel}, ${meta.cpus} CPUs (${meta.cpuModel}), ${meta.memoryGiB} GiB`)
  if (bun.path) log(`bun ${bun.version}: ${bun.path}`)
  else if (o.noBun) log('bun: skipped (--no-bun)')
  else {
    log(`bun: NOT FOUND, its rows are skipped. Looked at: ${bun.looked.join(', ')}.`)
    log('  Give --bun=PATH or BUN=PATH, or: mkdir -p /tmp/bun && cd /tmp/bun && npm install @oven/bun-linux-x64')
  }
  log(`ringline: default Ring on ${backend}; ${ringlineFs}`)
  log(`scratch: ${scratch} on ${meta.fileSystem}`)
  log(`${o.durationMs / 1000} s of passes per row after ${o.warmupMs > 0 ? `${o.warmupMs / 1000} s of warm-up (at least one pass)` : 'no warm-up'}; ${C} in flight for promise/callback engines, sync one at a time`)
  log('reads are page-cache reads (files just written; the page cache is not dropped); shared machines are noisy: read the ratios')

  const results: Result[] = []
  try {
    for (const g of groups) {
      const mine = await runGroup(g.name, g.title, g.rows.filter((r) => selected(g.name, r.engine)), g.before, log)
      if (mine === null) continue
      if (mine.some((r) => r.error?.startsWith('setup: '))) {
        results.push(...mine)
        continue
      }
      printGroup(mine)
      if (!canRun(RINGLINE[RINGLINE.length - 1].impl, g.call)) {
        log(`  (no ringline/fs row: it has no ${g.call === 'churn' ? 'mkdir/rename/unlink' : g.call} yet)`)
      }
      results.push(...mine)
    }
    printSummary(results, groups)
  } finally {
    const t0 = performance.now()
    cleanup()
    await ring.close()
    log('')
    log(`scratch directory removed (${((performance.now() - t0) / 1000).toFixed(1)} s)`)
  }

  meta.loadavgEnd = os.loadavg()
  const doc = { meta, results, ratios: ratioRecords(results) }
  const stamp = started.toISOString().replace(/[:.]/g, '-')
  const out = path.join(resultsDir, `fs-${stamp}.json`)
  const json = `${JSON.stringify(doc, null, 2)}\n`
  fs.writeFileSync(out, json)
  fs.writeFileSync(path.join(resultsDir, 'fs-latest.json'), json)
  if (o.json !== null) fs.writeFileSync(o.json, json)
  log(`load average at the end ${meta.loadavgEnd.map((x) => x.toFixed(2)).join(' ')}`)
  log(`results: ${path.relative(process.cwd(), out)} (and fs-latest.json)`)
}

main().catch((e: unknown) => {
  process.stderr.write(`benchmark failed: ${(e as Error)?.stack ?? String(e)}\n`)
  process.exit(1)
})
