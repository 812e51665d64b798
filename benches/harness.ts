// Shared pieces of the benchmarks: timed runs with a warm-up, op loops that
// keep N operations in flight, sampled latency, random positions, formatting.
// Used by files.ts (the parent) and by peer-child.ts (node:fs peers in a
// child process), so nothing here may import ringline.

import * as fs from 'node:fs'
import { hrtime } from 'node:process'

export const BLOCK = 4096

export interface TimedOptions {
  /** Warm-up before measuring, in ms: ops run, nothing is counted. */
  warmupMs: number
  /** Measurement window in ms. */
  durationMs: number
}

/** One measurement: throughput and latency percentiles. */
export interface Measurement {
  opsPerSec: number
  ops: number
  seconds: number
  p50Us: number
  p99Us: number
  p999Us: number
  meanUs: number
  /** Latency samples behind the percentiles. */
  samples: number
  /** How latency was sampled (or where it came from, for fio). */
  latency: string
  /**
   * Event-loop health during the window (our own process only): turns of a
   * 10 ms interval timer, and the longest stretch without one.
   */
  eventLoop?: { timerTicks: number; timerTicksExpected: number; maxBlockedMs: number }
  /** Extra facts worth keeping (stats, commands, caveats). */
  info?: Record<string, unknown>
}

/**
 * Latency samples (ns) in a preallocated Float64Array. When more samples
 * arrive than it holds, it keeps the most recent `capacity`.
 */
export class Latency {
  private readonly buf: Float64Array
  private readonly mask: number
  private n = 0

  constructor(capacityLog2 = 21) {
    this.buf = new Float64Array(1 << capacityLog2)
    this.mask = this.buf.length - 1
  }

  reset(): void {
    this.n = 0
  }

  add(ns: number): void {
    this.buf[this.n++ & this.mask] = ns
  }

  get count(): number {
    return Math.min(this.n, this.buf.length)
  }

  /** Percentiles in µs (nearest rank). */
  summary(): { p50: number; p99: number; p999: number; mean: number; samples: number } {
    const n = this.count
    if (n === 0) return { p50: NaN, p99: NaN, p999: NaN, mean: NaN, samples: 0 }
    const s = this.buf.slice(0, n).sort()
    let sum = 0
    for (let i = 0; i < n; i++) sum += s[i]
    const at = (q: number): number => s[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))] / 1000
    return { p50: at(0.5), p99: at(0.99), p999: at(0.999), mean: sum / n / 1000, samples: n }
  }
}

/**
 * Shared state of one timed run, read by every op loop. The loops move it
 * from warm-up to measuring to stopping themselves (`poll`, every 16th op),
 * by the clock: timers cannot be trusted to fire, since an engine that
 * settles its promises inside the microtask that submitted them (inline
 * completions) never yields to the event loop while a loop keeps it busy.
 */
export class Control {
  /** 0: warm-up, 1: measuring, 2: stopping. */
  state = 0
  /** Ops completed while measuring. */
  ops = 0
  /** Op counter for sampling (an op is timed when (seq & mask) === 0) and polling. */
  seq = 0
  failure: Error | null = null
  /** performance.now() at the start and end of the measurement window. */
  t0 = 0
  t1 = 0
  private readonly warmEnd: number
  private end = Infinity

  constructor(
    readonly lat: Latency,
    /** Sample one op in 2^k: mask = 2^k - 1. */
    readonly mask: number,
    private readonly opts: TimedOptions,
  ) {
    this.warmEnd = performance.now() + opts.warmupMs
  }

  /** Advances the phase by the clock. */
  poll(): void {
    const now = performance.now()
    if (this.state === 0) {
      if (now >= this.warmEnd) {
        this.ops = 0
        this.lat.reset()
        this.t0 = now
        this.end = now + this.opts.durationMs
        this.state = 1
      }
    } else if (this.state === 1 && now >= this.end) {
      this.t1 = now
      this.state = 2
    }
  }

  fail(e: unknown): void {
    if (this.failure === null) this.failure = e instanceof Error ? e : new Error(String(e))
    this.state = 2
  }
}

const sharedLatency = new Latency()
const HANG_MS = 20_000
const TICK_MS = 10

/**
 * Runs `body` (whose loops return once `ctl.state === 2`) through warm-up
 * and the measurement window; latency is sampled one op in `sampleEvery`
 * (a power of two). `diag` describes the engine's state if ops get stuck.
 */
export async function runTimed(
  opts: TimedOptions,
  sampleEvery: number,
  body: (ctl: Control) => Promise<void>,
  diag?: () => string,
): Promise<Measurement> {
  sharedLatency.reset()
  const ctl = new Control(sharedLatency, sampleEvery - 1, opts)
  // A lost completion would hang the run (and leave the event loop idle, so
  // this timer fires): give up well after the window.
  let watchdog: NodeJS.Timeout | undefined
  const hung = new Promise<void>((_, reject) => {
    watchdog = setTimeout(
      () => reject(new Error(`hung: ops still pending ${HANG_MS / 1000} s after the measurement window${diag ? ` (${diag()})` : ''}`)),
      opts.warmupMs + opts.durationMs + HANG_MS,
    )
  })
  // Does the engine let the event loop run? A 10 ms interval counts its
  // turns during the window and the longest gap between two of them.
  let ticks = 0
  let last = 0
  let maxGap = 0
  const ticker = setInterval(() => {
    if (ctl.state !== 1) return
    const now = performance.now()
    const from = last > ctl.t0 ? last : ctl.t0
    if (now - from > maxGap) maxGap = now - from
    last = now
    ticks++
  }, TICK_MS)
  try {
    await Promise.race([body(ctl), hung])
  } catch (e) {
    ctl.fail(e)
  } finally {
    clearTimeout(watchdog)
    clearInterval(ticker)
  }
  if (ctl.failure !== null) throw ctl.failure
  if (ctl.t1 === 0) throw new Error('the run ended before its measurement window closed')
  const tail = ctl.t1 - (last > ctl.t0 ? last : ctl.t0)
  if (tail > maxGap) maxGap = tail
  const m = finish(ctl, (ctl.t1 - ctl.t0) / 1000, sampleEvery === 1 ? 'every op' : `1 op in ${sampleEvery}`)
  const expected = Math.floor((ctl.t1 - ctl.t0) / TICK_MS)
  m.eventLoop = { timerTicks: ticks, timerTicksExpected: expected, maxBlockedMs: +maxGap.toFixed(1) }
  return m
}

function finish(ctl: Control, seconds: number, latency: string): Measurement {
  const s = ctl.lat.summary()
  return {
    opsPerSec: ctl.ops / seconds,
    ops: ctl.ops,
    seconds,
    p50Us: s.p50,
    p99Us: s.p99,
    p999Us: s.p999,
    meanUs: s.mean,
    samples: s.samples,
    latency: `hrtime, ${latency}`,
  }
}

/** Times a blocking op in a plain loop (timers cannot fire), every op sampled. */
export function runSyncTimed(opts: TimedOptions, op: () => void): Measurement {
  sharedLatency.reset()
  const ctl = new Control(sharedLatency, 0, opts)
  const warmEnd = hrtime.bigint() + BigInt(Math.round(opts.warmupMs * 1e6))
  while (hrtime.bigint() < warmEnd) op()
  const t0 = hrtime.bigint()
  const end = t0 + BigInt(Math.round(opts.durationMs * 1e6))
  let t = t0
  while (t < end) {
    op()
    const t2 = hrtime.bigint()
    ctl.lat.add(Number(t2 - t))
    ctl.ops++
    t = t2
  }
  return finish(ctl, Number(t - t0) / 1e9, 'every op')
}

/**
 * `depth` loops, each awaiting its own op: `depth` ops in flight. `count`
 * turns a result into the number of ops it completed, or a negative number
 * for a bad result (a short read). The time from issue to settlement is the
 * op's latency (for a batch, every op of it shares the batch's latency).
 */
export function promiseLoops<T>(ctl: Control, depth: number, issue: (slot: number) => Promise<T>, count: (r: T) => number): Promise<void> {
  const loop = async (slot: number): Promise<void> => {
    try {
      while (ctl.state !== 2) {
        if ((ctl.seq & 15) === 0) ctl.poll()
        if ((ctl.seq++ & ctl.mask) === 0) {
          const t0 = hrtime.bigint()
          const r = await issue(slot)
          const dt = hrtime.bigint() - t0
          const n = count(r)
          if (n < 0) throw new Error(`bad result ${JSON.stringify(r)}`)
          if (ctl.state === 1) {
            ctl.ops += n
            ctl.lat.add(Number(dt))
          }
        } else {
          const n = count(await issue(slot))
          if (n < 0) throw new Error('bad result')
          if (ctl.state === 1) ctl.ops += n
        }
      }
    } catch (e) {
      ctl.fail(e)
    }
  }
  const loops: Promise<void>[] = []
  for (let s = 0; s < depth; s++) loops.push(loop(s))
  return Promise.all(loops).then(() => undefined)
}

export type Callback = (err: Error | null, bytes: number) => void

/**
 * `depth` callback chains, each issuing its next op from the previous one's
 * callback: `depth` ops in flight. `expect` is the byte count each op must report.
 */
export function callbackLoops(ctl: Control, depth: number, expect: number, issue: (slot: number, cb: Callback) => void): Promise<void> {
  return new Promise<void>((resolve) => {
    let live = depth
    for (let s = 0; s < depth; s++) {
      const slot = s
      let t0 = 0n
      let sampled = false
      const next = (): void => {
        if ((ctl.seq & 15) === 0) ctl.poll()
        if (ctl.state === 2) {
          if (--live === 0) resolve()
          return
        }
        sampled = (ctl.seq++ & ctl.mask) === 0
        if (sampled) t0 = hrtime.bigint()
        try {
          issue(slot, cb)
        } catch (e) {
          ctl.fail(e)
          if (--live === 0) resolve()
        }
      }
      const cb: Callback = (err, bytes) => {
        if (err !== null && err !== undefined) ctl.fail(err)
        else if (bytes !== expect) ctl.fail(new Error(`short I/O: ${bytes} of ${expect} bytes`))
        else if (ctl.state === 1) {
          ctl.ops++
          if (sampled) ctl.lat.add(Number(hrtime.bigint() - t0))
        }
        next()
      }
      next()
    }
  })
}

/**
 * A fixed pseudo-random sequence of block-aligned positions (xorshift32, so
 * every engine reads the same blocks in the same order).
 */
export class Positions {
  private readonly table: Float64Array
  private readonly mask: number
  private i = 0

  constructor(fileSize: number, seed = 0x9e3779b9, log2 = 20) {
    const blocks = Math.floor(fileSize / BLOCK)
    this.table = new Float64Array(1 << log2)
    this.mask = this.table.length - 1
    let x = seed >>> 0 || 1
    for (let k = 0; k < this.table.length; k++) {
      x ^= x << 13
      x >>>= 0
      x ^= x >>> 17
      x ^= x << 5
      x >>>= 0
      this.table[k] = (x % blocks) * BLOCK
    }
  }

  next(): number {
    return this.table[this.i++ & this.mask]
  }
}

/** `p`, or a rejection naming `what` if it has not settled within `ms`. */
export function within<T>(p: Promise<T>, ms: number, what: string, diag?: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms / 1000} s${diag ? ` (${diag()})` : ''}`)), ms)
  })
  return Promise.race([p, late]).finally(() => clearTimeout(timer))
}

// ----- formatting ------------------------------------------------------------

/** 9.5k, 36k, 612k, 1.05M */
export function fmtRate(n: number): string {
  if (!Number.isFinite(n)) return '-'
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`
  if (n >= 1e5) return `${Math.round(n / 1e3)}k`
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)}k`
  if (n >= 1e3) return `${(n / 1e3).toFixed(2)}k`
  return n.toFixed(0)
}

export function fmtUs(n: number): string {
  if (!Number.isFinite(n)) return '-'
  if (n >= 100) return n.toFixed(0)
  if (n >= 10) return n.toFixed(1)
  return n.toFixed(2)
}

export function fmtRatio(r: number): string {
  if (!Number.isFinite(r)) return '-'
  return r >= 10 ? `${r.toFixed(1)}x` : `${r.toFixed(2)}x`
}

export function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length)
}

export function padLeft(s: string, n: number): string {
  return s.length >= n ? s : ' '.repeat(n - s.length) + s
}

/**
 * A benchmark's command-line flags: `--flag`, `--flag=value`, and
 * `--flag value` for the flags listed in `valued`. Anything else goes to
 * `usage`, which prints and exits.
 */
export class Flags {
  private readonly map = new Map<string, string>()

  constructor(
    argv: string[],
    known: string[],
    valued: string[],
    private readonly usage: (msg: string) => never,
  ) {
    for (let i = 0; i < argv.length; i++) {
      const m = /^--([a-z-]+)(?:=(.*))?$/.exec(argv[i])
      if (!m) usage(`unknown argument: ${argv[i]}`)
      if (!known.includes(m[1]) && !valued.includes(m[1])) usage(`unknown flag: --${m[1]}`)
      let v = m[2]
      if (v === undefined && valued.includes(m[1])) {
        v = argv[++i]
        if (v === undefined) usage(`--${m[1]} needs a value`)
      }
      this.map.set(m[1], v ?? '')
    }
  }

  has(k: string): boolean {
    return this.map.has(k)
  }

  get(k: string): string | undefined {
    return this.map.get(k)
  }

  /** The number given for `k` (at least `min`), or `def`. */
  num(k: string, def: number, min = 0): number {
    const v = this.map.get(k)
    if (v === undefined) return def
    const n = Number(v)
    if (v === '' || !Number.isFinite(n) || n < min) this.usage(`--${k} needs a number >= ${min}`)
    return n
  }
}

// ----- engines ---------------------------------------------------------------

/**
 * The engines ringline runs on: io_uring, and mio (epoll for sockets, a
 * thread pool for files). Every ringline workload runs once per selected
 * engine, labelled `<variant> (<engine>)`.
 */
export type Backend = 'io_uring' | 'mio'

export const BACKENDS: readonly Backend[] = ['io_uring', 'mio']

/** `--backends=io_uring,mio` (default: both, in that order). */
export function parseBackends(v: string | undefined, usage: (msg: string) => never): Backend[] {
  if (v === undefined) return [...BACKENDS]
  const out: Backend[] = []
  for (const s of v.split(',').map((x) => x.trim())) {
    if (s === '') continue
    if (s !== 'io_uring' && s !== 'mio') usage(`--backends takes io_uring and/or mio (comma-separated), not '${s}'`)
    if (!out.includes(s)) out.push(s)
  }
  if (out.length === 0) usage('--backends needs at least one of io_uring, mio')
  return BACKENDS.filter((b) => out.includes(b))
}

/** "ringline read" on mio: "ringline read (mio)". */
export const engineLabel = (variant: string, backend: Backend): string => `${variant} (${backend})`

/** The variant and engine of a label made by engineLabel; backend null for the peers. */
export function splitEngine(label: string): { variant: string; backend: Backend | null } {
  const m = / \((io_uring|mio)\)$/.exec(label)
  return m ? { variant: label.slice(0, m.index), backend: m[1] as Backend } : { variant: label, backend: null }
}

/**
 * The usage printer of a benchmark script: prints `msg`, then the script's
 * head comment (its first paragraph block), and exits 0 when `msg` is the
 * script's `title` (--help), 2 otherwise.
 */
export function usageFor(file: string, title: string): (msg: string) => never {
  return (msg: string): never => {
    const head = fs.readFileSync(file, 'utf8').split('\n\n')[0]
    process.stderr.write(`${msg}\n\n${head}\n`)
    process.exit(msg === title ? 0 : 2)
  }
}

/** What one row of a benchmark group measured (or why it did not). */
export interface RowResult {
  group: string
  engine: string
  measurement?: Measurement
  error?: string
  skipped?: string
}

/** A row of a group: a run, or (`skip`) the reason it cannot run here. */
export interface Row {
  engine: string
  run?: () => Promise<Measurement>
  skip?: string
}

/**
 * Runs the selected rows of one group in order, printing a progress line
 * per row: `before` prepares the group (its failure fails every row).
 * Returns null when no selected row can run (the group is left out).
 */
export async function runGroup(
  name: string,
  title: string,
  rows: Row[],
  before: (() => void) | undefined,
  log: (s: string) => void,
): Promise<RowResult[] | null> {
  if (!rows.some((r) => r.run !== undefined)) return null
  log('')
  log(`== ${name}: ${title}`)
  try {
    before?.()
  } catch (e) {
    log(`  could not prepare: ${(e as Error).message}`)
    return rows.map((r) => ({ group: name, engine: r.engine, error: `setup: ${(e as Error).message}` }))
  }
  const out: RowResult[] = []
  for (const r of rows) {
    const res: RowResult = { group: name, engine: r.engine }
    out.push(res)
    if (r.run === undefined) {
      res.skipped = r.skip ?? 'skipped'
      continue
    }
    process.stdout.write(`  . ${r.engine} ...`)
    try {
      res.measurement = await r.run()
    } catch (e) {
      res.error = (e as Error).message
    }
    const m = res.measurement
    process.stdout.write(m ? ` ${fmtRate(m.opsPerSec)}/s\n` : ` FAILED: ${res.error}\n`)
  }
  log('')
  return out
}
