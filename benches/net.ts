// TCP benchmark of ringline against node:net, side by side in one run,
// every ringline workload on both engines (io_uring and mio).
//
//   npm run bench:net -- [flags]      (node --expose-gc --import tsx benches/net.ts)
//   npm run bench -- [flags]          (the file benchmark, then this: benches/all.ts)
//
// Flags (`--flag N` and `--flag=N` both work):
//   --seconds N       seconds measured per workload (default 3, after the warm-up;
//                     --duration N is the same)
//   --warmup N        warm-up seconds per workload (default 1)
//   --quick           1 s per workload, 0.25 s warm-up: smoke runs
//   --backends io_uring,mio  the engines ringline's workloads run on (default
//                     both; every ringline row is labelled with its engine)
//   --only A,B        run only workloads whose "<group> <engine>" contains A or B
//                     (case-insensitive): --only pingpong, --only bulk,
//                     --only zc, --only sweep, --only "pingpong-50 node",
//                     --only mio
//   --repeat N        run each workload N times, the engines of a group in
//                     turn (A B C A B C ...), and report the median run of
//                     each (default 1); every run is kept in the JSON
//   --no-loop         leave out the "ringline loop" rows
//   --depth N         sends in flight in bulk, zc and sweep (default 1: each
//                     send awaited before the next)
//   --soak            instead of the workloads: the soak (below)
//   --soak-seconds N  length of the soak after its warm-up (default 300; implies --soak)
//   --soak-warmup N   soak warm-up seconds (default 30)
//   --soak-every N    seconds between RSS samples (default 10)
//   --json FILE       also write the results to FILE (all.ts uses it)
//   --bun PATH, --bun-dir DIR, --no-bun  the bun binary of the Bun rows (see
//                     benches/bun.ts for where it is looked for); without
//                     one, the run says so and has no Bun rows
//
// Engines: every ringline row runs once per engine, as "ringline (io_uring)"
// and "ringline (mio)": the child gets RINGLINE_BACKEND (the default ring's
// engine) and checks that the default ring reports it, else the row fails.
// Ratio lines: each engine against node:net (zero-copy: against copy on the
// same engine), and each mio row against the same row on io_uring. Targets:
// io_uring's (below), and mio >= node:net on pingpong-1, pingpong-50, bulk.
//
// Workloads (all on 127.0.0.1, TCP_NODELAY on every socket):
//   pingpong-1    64 B ping-pong, 1 connection: send 64 B, wait for the whole
//                 64 B echo, repeat. Round trips/s; latency of each round trip.
//   pingpong-50   the same on 50 connections at once.
//   bulk          1 MiB messages back to back on one connection (each send
//                 awaited / each write's callback waited for before the next;
//                 the same plain Buffer every time), the server reads and
//                 counts bytes. GB/s = bytes the server received inside the
//                 window; latency: one send (or write) from call to completion.
//     ringline        listen() + connect() on the default ring (completion thread)
//     ringline loop   the same with RINGLINE_COMPLETION=loop (the event loop
//                     polls the ring, no completion thread)
//     ringline cb     (ping-pong) the callback API: listen() and connect()
//                     with socket handlers, echo with write() in `data`;
//                     no promise anywhere ("ringline cb loop": completion 'loop')
//     node:net        net.createServer + net.createConnection; echo with
//                     socket.write in the 'data' handler, client callbacks
//     Bun.listen/connect  (ping-pong, where bun is found) Bun's own TCP API,
//                     the same echo and counting, in a child run by bun
//     node:net (Bun)  (ping-pong) the node:net code above, run by bun
//     ringline/net    the same node:net code over ringline/net's
//                     createServer/createConnection (pingpong and bulk): what
//                     node's stream interface over ringline sockets costs
//   zc-64k, zc-1m, zc-16m   ringline only, same receiver as bulk:
//     ringline copy       a Buffer.alloc buffer, send(buf): copied into library memory
//     ringline zero-copy  an allocAligned buffer, send(buf, { zeroCopy: true })
//                         (SENDMSG_ZC; resolves after the kernel's notification)
//   sweep-4k ... sweep-256k   the same pair at 4, 8, 16, 32, 64 and 256 KiB,
//                 printed as one table per engine with the size from which
//                 zero-copy wins.
//   soak (--soak) ringline 64 B ping-pong on 50 connections for 5 minutes
//                 after a 30 s warm-up, on each engine in turn; RSS (after a
//                 gc()) every 10 s; first, last, max and growth (target <= 10%).
//
// Where things run: every measurement is a child process of its own
// (net-child.ts) that holds both ends, server and client, on one event loop;
// this process only starts them and prints. Why: the machine this was written
// for has 2 vCPUs. With server and client in separate processes, two busy
// event loops (plus ringline's completion threads) fight over two cores and
// the scheduler's choices dominate the result; with both ends in one process
// each stack does all the work of both sides of every message on one JS
// thread, which is what the ratio is about (the CPU cost of a message through
// the stack), and the other core is left to the kernel and, for ringline,
// its completion thread (that is ringline's design, so it counts). A fresh
// process per measurement means neither stack runs while the other is
// measured and none inherits the other's heap, sockets or ring.
//
// Results print as tables plus ratio lines (with the targets), then the
// engine summary (ringline on io_uring and on mio against node:net, marked
// where mio is below it), and go to bench-results/net-<timestamp>.json and
// net-latest.json (the soak: net-soak-<timestamp>.json and
// net-soak-latest.json).

import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { NET_FLAGS } from './flags'
import { BACKENDS, Flags, usageFor, engineLabel, fmtRate, fmtRatio, fmtUs, pad, padLeft, parseBackends, type Backend, type Measurement, type TimedOptions } from './harness'
import type { NetEngine, NetJob, SoakResult } from './net-work'
import { printEngineSummary, type EngineRow } from './summary'
import { findBun } from './bun'

// ----- options -----------------------------------------------------------------

interface Options {
  timed: TimedOptions
  backends: Backend[]
  only: string[]
  loop: boolean
  depth: number
  repeat: number
  soak: boolean
  soakMs: number
  soakWarmupMs: number
  soakEveryMs: number
  /** Also write the results here. */
  json: string | null
  bun: string | null
  bunDir: string
  noBun: boolean
}

const ROOT = path.resolve(__dirname, '..')
const KiB = 1024
const MiB = 1 << 20
const PINGPONG_BYTES = 64
const BULK_BYTES = MiB
const ZC_SIZES = [64 * KiB, MiB, 16 * MiB]
const SWEEP_SIZES = [4, 8, 16, 32, 64, 256].map((k) => k * KiB)
const SOAK_CONNS = 50

const usage: (msg: string) => never = usageFor(__filename, 'ringline TCP benchmark')

function parseOptions(argv: string[]): Options {
  const flags = new Flags(argv, NET_FLAGS.known, NET_FLAGS.valued, usage)
  if (flags.has('help')) usage('ringline TCP benchmark')
  const num = (k: string, def: number, min: number): number => flags.num(k, def, min)
  const quick = flags.has('quick')
  const seconds = flags.has('seconds') ? num('seconds', 3, 0.1) : num('duration', quick ? 1 : 3, 0.1)
  return {
    timed: { durationMs: seconds * 1000, warmupMs: num('warmup', quick ? 0.25 : 1, 0) * 1000 },
    backends: parseBackends(flags.get('backends'), usage),
    only: (flags.get('only') ?? '')
      .split(',')
      .map((s) => s.trim().toLowerCase())
      .filter((s) => s !== ''),
    loop: !flags.has('no-loop'),
    depth: Math.floor(num('depth', 1, 1)),
    repeat: Math.floor(num('repeat', 1, 1)),
    soak: flags.has('soak') || flags.has('soak-seconds'),
    soakMs: num('soak-seconds', 300, 1) * 1000,
    soakWarmupMs: num('soak-warmup', 30, 0) * 1000,
    soakEveryMs: num('soak-every', 10, 1) * 1000,
    json: flags.get('json') ? path.resolve(flags.get('json') as string) : null,
    bun: flags.get('bun') || null,
    bunDir: path.resolve(flags.get('bun-dir') || process.env.BUN_DIR || '/tmp/bun'),
    noBun: flags.has('no-bun'),
  }
}

// ----- child processes ------------------------------------------------------------

const CHILD = path.join(__dirname, 'net-child.ts')

function childExecArgv(): string[] {
  const a = [...process.execArgv]
  if (!a.some((s) => s.includes('tsx'))) a.push('--import', 'tsx')
  if (!a.includes('--expose-gc')) a.unshift('--expose-gc')
  return a
}

interface ChildLine {
  progress?: string
  ok?: boolean
  error?: string
  code?: string | null
  result?: Measurement | SoakResult
}

/** The child: node (with tsx) running net-child.ts, or with `bun` (its path) bun running it. */
function runChild(
  job: NetJob,
  opts: TimedOptions,
  env: Record<string, string | undefined>,
  timeoutMs: number,
  onProgress?: (line: string) => void,
  bun?: string,
): Promise<Measurement | SoakResult> {
  return new Promise((resolve, reject) => {
    const childEnv: Record<string, string | undefined> = { ...process.env, ...env }
    for (const k of Object.keys(childEnv)) if (childEnv[k] === undefined) delete childEnv[k]
    const [bin, args] = bun === undefined ? [process.execPath, childExecArgv()] : [bun, []]
    const child = spawn(bin, [...args, CHILD, JSON.stringify({ job, opts })], {
      cwd: ROOT,
      env: childEnv as NodeJS.ProcessEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let partial = ''
    let last: ChildLine | null = null
    let err = ''
    child.stdout.on('data', (d: Buffer) => {
      partial += d.toString()
      let nl: number
      while ((nl = partial.indexOf('\n')) >= 0) {
        const line = partial.slice(0, nl)
        partial = partial.slice(nl + 1)
        let doc: ChildLine
        try {
          doc = JSON.parse(line) as ChildLine
        } catch {
          err += `${line}\n`
          continue
        }
        if (doc.progress !== undefined) onProgress?.(doc.progress)
        else last = doc
      }
    })
    child.stderr.on('data', (d: Buffer) => (err += d.toString()))
    let killed = false
    const timer = setTimeout(() => {
      killed = true
      child.kill('SIGKILL')
    }, timeoutMs)
    child.on('error', (e) => {
      clearTimeout(timer)
      reject(new Error(`child process could not start: ${e.message}`))
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      const doc = last as ChildLine | null
      if (doc?.ok && doc.result) {
        resolve(doc.result)
        return
      }
      const why = doc?.error ?? (err.trim().split('\n').slice(-4).join(' / ') || 'no output')
      const how = killed ? `killed after ${timeoutMs / 1000} s` : signal ? `killed by ${signal}` : `exit ${code}`
      reject(new Error(`${why}${doc?.code ? ` [${doc.code}]` : ''} (child ${how})`))
    })
  })
}

// ----- workloads ---------------------------------------------------------------------

type Metric = 'roundtrips' | 'gbps'

interface Workload {
  group: string
  engine: string
  job: NetJob
  env: Record<string, string | undefined>
  /** Run by this bun binary instead of node. */
  bun?: string
}

interface Target {
  /** The engine the target applies to, and the engine it is compared with. */
  ours: string
  peer: string
  /** ours/peer must be at least this (strictly more with `strict`). */
  ratio: number
  strict?: boolean
}

interface Group {
  name: string
  title: string
  metric: Metric
  workloads: Workload[]
  targets: Target[]
  /** Printed as part of the sweep table instead of a table of its own. */
  sweep?: number
}

interface Result {
  group: string
  engine: string
  /** The median run with --repeat. */
  measurement?: Measurement
  /** With --repeat: the metric of every run, in order. */
  runs?: number[]
  error?: string
}

type Completion = 'thread' | 'loop'

/** The child's environment: how completions arrive and which engine the default ring runs on. */
const ringEnv = (completion: Completion, backend: Backend): Record<string, string | undefined> => ({
  RINGLINE_COMPLETION: completion,
  RINGLINE_BACKEND: backend,
})
const NODE = { RINGLINE_COMPLETION: undefined, RINGLINE_BACKEND: undefined }

/** The node peer every engine is held against (the summary, and the target mio >= node). */
const NODE_PEER = 'node:net'
/** Bun's own TCP API, and node:net's code under Bun. */
const BUN_NATIVE = 'Bun.listen/connect'
const BUN_NODE = 'node:net (Bun)'
/** The callback API's rows: on the completion thread (the default) and with completion 'loop'. */
const CB = 'ringline cb'
const CB_LOOP = 'ringline cb loop'

const sizeName = (n: number): string => (n >= MiB ? `${n / MiB} MiB` : `${n / KiB} KiB`)
const sizeTag = (n: number): string => (n >= MiB ? `${n / MiB}m` : `${n / KiB}k`)

function buildGroups(o: Options, bun: string | null): Group[] {
  const groups: Group[] = []
  /** `callbacks`: also the callback API's rows and Bun's (ping-pong). */
  const peers = (job: (engine: NetEngine, backend?: Backend) => NetJob, callbacks = false): Workload[] => {
    const w: Workload[] = []
    for (const b of o.backends) {
      w.push({ group: '', engine: engineLabel('ringline', b), job: job('ringline', b), env: ringEnv('thread', b) })
      if (o.loop) w.push({ group: '', engine: engineLabel('ringline loop', b), job: job('ringline', b), env: ringEnv('loop', b) })
      if (callbacks) {
        w.push({ group: '', engine: engineLabel(CB, b), job: job('callback', b), env: ringEnv('thread', b) })
        if (o.loop) w.push({ group: '', engine: engineLabel(CB_LOOP, b), job: job('callback', b), env: ringEnv('loop', b) })
      }
      // node:net's code over ringline/net's sockets: what the stream bridge costs.
      w.push({ group: '', engine: engineLabel('ringline/net', b), job: job('net', b), env: ringEnv('thread', b) })
    }
    w.push({ group: '', engine: NODE_PEER, job: job('node'), env: NODE })
    if (callbacks && bun !== null) {
      w.push({ group: '', engine: BUN_NATIVE, job: job('bun'), env: NODE, bun })
      w.push({ group: '', engine: BUN_NODE, job: job('node'), env: NODE, bun })
    }
    return w
  }
  /** io_uring's target against node:net, and mio's (mio >= node:net). */
  const nodeTargets = (ioUring: number): Target[] => [
    { ours: engineLabel('ringline', 'io_uring'), peer: NODE_PEER, ratio: ioUring },
    { ours: engineLabel('ringline', 'mio'), peer: NODE_PEER, ratio: 1.0 },
  ]
  for (const [conns, target] of [
    [1, 1.0],
    [50, 1.4],
  ] as const) {
    groups.push({
      name: `pingpong-${conns}`,
      title: `64 B ping-pong, ${conns} connection${conns > 1 ? 's' : ''}: send 64 B, wait for the 64 B echo, repeat`,
      metric: 'roundtrips',
      workloads: peers((engine, backend) => ({ kind: 'pingpong', engine, backend, conns, size: PINGPONG_BYTES }), true),
      targets: [
        ...nodeTargets(target),
        // Issue 13: the callback API at least Bun's own and 1.2x (1
        // connection) / 1.5x (50) node:net.
        { ours: engineLabel(CB, 'io_uring'), peer: BUN_NATIVE, ratio: 1.0 },
        { ours: engineLabel(CB, 'io_uring'), peer: NODE_PEER, ratio: conns === 1 ? 1.2 : 1.5 },
      ],
    })
  }
  groups.push({
    name: 'bulk',
    title: '1 MiB messages back to back on one connection, the server counts bytes',
    metric: 'gbps',
    workloads: peers((engine, backend) => ({ kind: 'bulk', engine, backend, size: BULK_BYTES, memory: 'plain', depth: o.depth })),
    targets: nodeTargets(1.0),
  })
  const zcPair = (size: number): Workload[] =>
    o.backends.flatMap((b): Workload[] => [
      { group: '', engine: engineLabel('ringline copy', b), job: { kind: 'bulk', engine: 'ringline', backend: b, size, memory: 'plain', depth: o.depth }, env: ringEnv('thread', b) },
      { group: '', engine: engineLabel('ringline zero-copy', b), job: { kind: 'bulk', engine: 'ringline', backend: b, size, memory: 'zero-copy', depth: o.depth }, env: ringEnv('thread', b) },
    ])
  for (const size of ZC_SIZES) {
    groups.push({
      name: `zc-${sizeTag(size)}`,
      title: `${sizeName(size)} messages on one connection: zero-copy (allocAligned, { zeroCopy: true }) vs copying send (Buffer)`,
      metric: 'gbps',
      workloads: zcPair(size),
      targets: size === MiB ? [{ ours: engineLabel('ringline zero-copy', 'io_uring'), peer: engineLabel('ringline copy', 'io_uring'), ratio: 1.0, strict: true }] : [],
    })
  }
  for (const size of SWEEP_SIZES) {
    groups.push({
      name: `sweep-${sizeTag(size)}`,
      title: `zero-copy threshold sweep, ${sizeName(size)}`,
      metric: 'gbps',
      workloads: zcPair(size),
      targets: [],
      sweep: size,
    })
  }
  for (const g of groups) for (const w of g.workloads) w.group = g.name
  return groups
}

// ----- printing -------------------------------------------------------------------------

const log = (s: string): void => {
  process.stdout.write(`${s}\n`)
}

const fmtMs = (ms: number): string => (ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${ms.toFixed(0)} ms`)
const fmtGbps = (n: number): string => (Number.isFinite(n) ? n.toFixed(n >= 10 ? 1 : 2) : '-')
const fmtMiB = (n: number): string => `${(n / MiB).toFixed(1)} MiB`

function value(metric: Metric, m: Measurement): number {
  return metric === 'roundtrips' ? m.opsPerSec : Number(m.info?.gbps ?? NaN)
}

const fmtValue = (metric: Metric, v: number): string => (metric === 'roundtrips' ? `${fmtRate(v)} round trips/s` : `${fmtGbps(v)} GB/s`)

function notes(m: Measurement): string {
  const out: string[] = []
  if (m.info?.note) out.push(String(m.info.note))
  const el = m.eventLoop
  if (el && el.timerTicks < el.timerTicksExpected * 0.5) {
    out.push(`(event loop starved: ${el.timerTicks}/${el.timerTicksExpected} timer ticks, blocked up to ${fmtMs(el.maxBlockedMs)})`)
  }
  if (m.info?.teardownError) out.push(`(teardown: ${String(m.info.teardownError)})`)
  return out.length > 0 ? `   ${out.join(' ')}` : ''
}

const ENGINE_COL = 32

function printGroup(g: Group, results: Result[]): void {
  if (g.metric === 'roundtrips') log(`  ${pad('engine', ENGINE_COL)}${padLeft('round trips/s', 14)}${padLeft('p50 µs', 10)}${padLeft('p99 µs', 10)}`)
  else log(`  ${pad('engine', ENGINE_COL)}${padLeft('GB/s', 8)}${padLeft('msgs/s', 9)}${padLeft('p50 µs', 10)}${padLeft('p99 µs', 10)}   (latency: one send)`)
  for (const r of results) {
    const m = r.measurement
    if (!m) {
      log(`  ${pad(r.engine, ENGINE_COL)}FAILED: ${r.error}`)
      continue
    }
    const lat = `${padLeft(fmtUs(m.p50Us), 10)}${padLeft(fmtUs(m.p99Us), 10)}`
    if (g.metric === 'roundtrips') log(`  ${pad(r.engine, ENGINE_COL)}${padLeft(fmtRate(m.opsPerSec), 14)}${lat}${notes(m)}`)
    else log(`  ${pad(r.engine, ENGINE_COL)}${padLeft(fmtGbps(value('gbps', m)), 8)}${padLeft(fmtRate(m.opsPerSec), 9)}${lat}${notes(m)}`)
  }
  const ok = results.filter((r) => r.measurement)
  const lines = ratios(g, ok)
  if (lines.length === 0) return
  log('')
  for (const x of lines) {
    const target = x.target === undefined ? '' : `   target ${x.strict ? '>' : '>='}${fmtRatio(x.target)}: ${x.met ? 'met' : 'MISSED'}`
    log(`  ${g.name}: ${x.ours} ${fmtValue(g.metric, x.value)} = ${fmtRatio(x.ratio)} ${x.peer}${target}`)
  }
}

interface Ratio {
  group: string
  ours: string
  peer: string
  value: number
  ratio: number
  target?: number
  strict?: boolean
  met?: boolean
}

/**
 * Each engine's rows against node:net (zero-copy groups: zero-copy against
 * copy on the same engine), then each mio row against the same row on io_uring.
 */
function ratios(g: Group, results: Result[]): Ratio[] {
  const out: Ratio[] = []
  const get = (engine: string): Result | undefined => results.find((r) => r.engine === engine && r.measurement)
  const variants = g.workloads.some((w) => w.engine === NODE_PEER) ? ['ringline', 'ringline loop', CB, CB_LOOP] : ['ringline copy', 'ringline zero-copy']
  const pairs: [string, string][] = []
  for (const b of BACKENDS) {
    if (variants[0] === 'ringline') for (const v of variants) pairs.push([engineLabel(v, b), NODE_PEER])
    else pairs.push([engineLabel('ringline zero-copy', b), engineLabel('ringline copy', b)])
    for (const v of [CB, CB_LOOP]) pairs.push([engineLabel(v, b), BUN_NATIVE])
  }
  pairs.push([BUN_NATIVE, NODE_PEER], [BUN_NODE, NODE_PEER])
  for (const v of variants) pairs.push([engineLabel(v, 'mio'), engineLabel(v, 'io_uring')])
  for (const [a, b] of pairs) {
    const ra = get(a)
    const rb = get(b)
    if (!ra || !rb) continue
    const va = value(g.metric, ra.measurement!)
    const r: Ratio = { group: g.name, ours: a, peer: b, value: va, ratio: va / value(g.metric, rb.measurement!) }
    const t = g.targets.find((x) => x.ours === a && x.peer === b)
    if (t) {
      r.target = t.ratio
      r.strict = t.strict === true
      r.met = t.strict ? r.ratio > t.ratio : r.ratio >= t.ratio
    }
    out.push(r)
  }
  return out
}

/** Per workload with a node:net row: ringline (completion thread) on each engine against it. */
function engineRows(groups: Group[], results: Result[]): EngineRow[] {
  const rows: EngineRow[] = []
  for (const g of groups) {
    if (!g.workloads.some((w) => w.engine === NODE_PEER)) continue
    const get = (engine: string): number | null => {
      const r = results.find((x) => x.group === g.name && x.engine === engine)
      return r?.measurement ? value(g.metric, r.measurement) : null
    }
    const row: EngineRow = {
      bench: 'tcp',
      workload: g.name,
      variant: 'ringline',
      peer: NODE_PEER,
      unit: g.metric === 'roundtrips' ? 'round trips/s' : 'GB/s',
      node: get(NODE_PEER),
      ioUring: get(engineLabel('ringline', 'io_uring')),
      mio: get(engineLabel('ringline', 'mio')),
    }
    if (results.some((r) => r.group === g.name)) rows.push(row)
  }
  return rows
}

interface SweepRow {
  backend: Backend
  size: number
  copyGbps: number
  zeroCopyGbps: number
  ratio: number
}

function printSweep(rows: SweepRow[]): number | null {
  log(`  ${padLeft('size', 8)}${padLeft('copy GB/s', 11)}${padLeft('zc GB/s', 10)}${padLeft('zc/copy', 9)}`)
  for (const r of rows) {
    log(`  ${padLeft(sizeName(r.size), 8)}${padLeft(fmtGbps(r.copyGbps), 11)}${padLeft(fmtGbps(r.zeroCopyGbps), 10)}${padLeft(fmtRatio(r.ratio), 9)}`)
  }
  // The smallest size from which zero-copy wins at every larger size measured too.
  let threshold: number | null = null
  for (let i = rows.length - 1; i >= 0; i--) {
    if (!(rows[i].ratio > 1)) break
    threshold = rows[i].size
  }
  log('')
  if (rows.length < 2) log('  (too few sizes measured for a threshold)')
  else if (threshold === null) log(`  zero-copy does not win at ${sizeName(rows[rows.length - 1].size)}: no threshold up to there`)
  else if (threshold === rows[0].size) log(`  zero-copy wins at every size measured, already at ${sizeName(threshold)}`)
  else log(`  zero-copy wins from ${sizeName(threshold)} on (at this and every larger size measured): suggested threshold ${sizeName(threshold)}`)
  return threshold
}

// ----- soak --------------------------------------------------------------------------

async function soak(o: Options, backend: Backend): Promise<SoakResult> {
  const job: NetJob = { kind: 'soak', backend, conns: SOAK_CONNS, size: PINGPONG_BYTES, warmupMs: o.soakWarmupMs, soakMs: o.soakMs, everyMs: o.soakEveryMs }
  const r = (await runChild(job, o.timed, ringEnv('thread', backend), o.soakWarmupMs + o.soakMs + 120_000, (line) => log(`  ${line}`))) as SoakResult
  const growth = r.growthPercent
  const met = growth <= 10
  log('')
  log(
    `  rss first ${fmtMiB(r.firstRss)}, last ${fmtMiB(r.lastRss)}, max ${fmtMiB(r.maxRss)}: ` +
      `growth ${growth >= 0 ? '+' : ''}${growth.toFixed(1)}%   target <= 10%: ${met ? 'met' : 'MISSED'}`,
  )
  log(`  ${fmtRate(r.roundTrips)} round trips in ${r.soakSeconds} s after the warm-up (${fmtRate(r.roundTrips / r.soakSeconds)}/s)${r.gcExposed ? '' : '; gc() not exposed: samples without a collection first'}`)
  const td = (r as SoakResult & { teardownError?: string }).teardownError
  if (td) log(`  teardown: ${td}`)
  return r
}

// ----- main ----------------------------------------------------------------------------

function sysctl(name: string): string | null {
  try {
    return fs.readFileSync(`/proc/sys/${name.replace(/\./g, '/')}`, 'utf8').trim().replace(/\s+/g, ' ')
  } catch {
    return null
  }
}

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2))
  const resultsDir = path.join(ROOT, 'bench-results')
  fs.mkdirSync(resultsDir, { recursive: true })
  const started = new Date()
  const meta = {
    started: started.toISOString(),
    node: process.version,
    kernel: `${os.type()} ${os.release()}`,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
    topology: 'one child process per measurement, server and client in it (one event loop); 127.0.0.1',
    sysctl: {
      'net.ipv4.tcp_wmem': sysctl('net.ipv4.tcp_wmem'),
      'net.ipv4.tcp_rmem': sysctl('net.ipv4.tcp_rmem'),
      'net.core.optmem_max': sysctl('net.core.optmem_max'),
    },
    options: o,
    loadavgStart: os.loadavg(),
    loadavgEnd: [] as number[],
  }
  log(`ringline TCP benchmark — ${meta.started}`)
  log(`node ${meta.node}, ${meta.kernel}, ${meta.cpus} CPUs (${meta.cpuModel}), ${meta.memoryGiB} GiB; load average ${meta.loadavgStart.map((x) => x.toFixed(2)).join(' ')}`)
  log('each measurement: a fresh child process holding server and client (see the head of benches/net.ts for why)')
  const stamp = started.toISOString().replace(/[:.]/g, '-')
  const write = (name: string, doc: unknown): string => {
    const json = `${JSON.stringify(doc, null, 2)}\n`
    const out = path.join(resultsDir, `${name}-${stamp}.json`)
    fs.writeFileSync(out, json)
    fs.writeFileSync(path.join(resultsDir, `${name}-latest.json`), json)
    if (o.json !== null) fs.writeFileSync(o.json, json)
    return out
  }

  if (o.soak) {
    const soaks: Partial<Record<Backend, SoakResult | { error: string }>> = {}
    for (const b of o.backends) {
      log('')
      log(`== soak (${b}): ringline 64 B ping-pong, ${SOAK_CONNS} connections; RSS every ${o.soakEveryMs / 1000} s for ${o.soakMs / 1000} s after ${o.soakWarmupMs / 1000} s of warm-up`)
      try {
        soaks[b] = await soak(o, b)
      } catch (e) {
        log(`  FAILED: ${(e as Error).message}`)
        soaks[b] = { error: (e as Error).message }
        process.exitCode = 1
      }
    }
    meta.loadavgEnd = os.loadavg()
    const out = write('net-soak', { meta, soak: soaks })
    log('')
    log(`results: ${path.relative(process.cwd(), out)} (and net-soak-latest.json)`)
    return
  }

  const t = o.timed
  log(`${t.durationMs / 1000} s per workload after ${t.warmupMs / 1000} s warm-up; shared machines are noisy: read the ratios`)
  const selected = (w: Workload): boolean => {
    const name = `${w.group} ${w.engine}`.toLowerCase()
    return o.only.length === 0 || o.only.some((s) => name.includes(s))
  }
  const childTimeout = t.warmupMs + t.durationMs + 90_000
  const results: Result[] = []
  const allRatios: Ratio[] = []
  const sweepRows: SweepRow[] = []
  let sweepHeader = false
  const bunInfo = o.noBun ? null : findBun(o.bun, o.bunDir)
  if (bunInfo === null) log('Bun rows: skipped (--no-bun)')
  else if (bunInfo.path === null) log(`Bun rows: skipped, no bun binary found (looked at ${bunInfo.looked.join(', ')})`)
  else log(`Bun rows: ${bunInfo.path} (bun ${bunInfo.version})`)
  const groups = buildGroups(o, bunInfo?.path ?? null)
  for (const g of groups) {
    const chosen = g.workloads.filter(selected)
    if (chosen.length === 0) continue
    if (g.sweep === undefined) {
      log('')
      log(`== ${g.name}: ${g.title}`)
    } else if (!sweepHeader) {
      sweepHeader = true
      log('')
      log(`== sweep: copying vs zero-copy send by message size, one connection (for the zero-copy threshold)`)
    }
    const runs = new Map<Workload, Measurement[]>()
    const errors = new Map<Workload, string>()
    for (let rep = 0; rep < o.repeat; rep++) {
      for (const w of chosen) {
        if (errors.has(w)) continue
        const tag = o.repeat > 1 ? ` #${rep + 1}` : ''
        process.stdout.write(`  . ${g.sweep === undefined ? '' : `${sizeName(g.sweep)} `}${w.engine}${tag} ...`)
        try {
          const m = (await runChild(w.job, t, w.env, childTimeout, undefined, w.bun)) as Measurement
          runs.set(w, [...(runs.get(w) ?? []), m])
          process.stdout.write(` ${fmtValue(g.metric, value(g.metric, m))}\n`)
        } catch (e) {
          errors.set(w, (e as Error).message)
          process.stdout.write(` FAILED: ${(e as Error).message}\n`)
        }
      }
    }
    const mine: Result[] = chosen.map((w) => {
      const r: Result = { group: g.name, engine: w.engine }
      const ms = runs.get(w) ?? []
      if (errors.has(w)) r.error = errors.get(w)
      else {
        // The median run by the group's metric (the lower middle one of an even count).
        const sorted = [...ms].sort((a, b) => value(g.metric, a) - value(g.metric, b))
        r.measurement = sorted[Math.floor((sorted.length - 1) / 2)]
        if (ms.length > 1) r.runs = ms.map((m) => value(g.metric, m))
      }
      return r
    })
    results.push(...mine)
    allRatios.push(...ratios(g, mine))
    if (g.sweep !== undefined) {
      for (const backend of o.backends) {
        const copy = mine.find((r) => r.engine === engineLabel('ringline copy', backend))?.measurement
        const zc = mine.find((r) => r.engine === engineLabel('ringline zero-copy', backend))?.measurement
        if (copy && zc) {
          const a = value('gbps', copy)
          const b = value('gbps', zc)
          sweepRows.push({ backend, size: g.sweep, copyGbps: a, zeroCopyGbps: b, ratio: b / a })
        }
      }
      for (const r of mine) if (r.error) log(`  ${sizeName(g.sweep)} ${r.engine}: FAILED: ${r.error}`)
      continue
    }
    log('')
    printGroup(g, mine)
  }
  const thresholds: Partial<Record<Backend, number | null>> = {}
  for (const b of o.backends) {
    const rows = sweepRows.filter((r) => r.backend === b)
    if (rows.length === 0) continue
    log('')
    log(`== sweep table (${b}): GB/s by message size (${o.depth} send${o.depth > 1 ? 's' : ''} in flight; loopback)`)
    thresholds[b] = printSweep(rows)
  }
  if (o.backends.length > 1 && sweepRows.length > 0) {
    log('')
    log(`  mio / io_uring by size: ${SWEEP_SIZES.map((size) => {
      const get = (b: Backend): SweepRow | undefined => sweepRows.find((r) => r.backend === b && r.size === size)
      const u = get('io_uring')
      const m = get('mio')
      return u && m ? `${sizeName(size)} copy ${fmtRatio(m.copyGbps / u.copyGbps)} zc ${fmtRatio(m.zeroCopyGbps / u.zeroCopyGbps)}` : null
    }).filter((x) => x !== null).join('; ')}`)
  }

  const targets = allRatios.filter((r) => r.target !== undefined)
  if (targets.length > 0) {
    log('')
    log('== targets')
    for (const r of targets) {
      log(`  ${pad(r.group, 12)} ${pad(`${r.ours} / ${r.peer}`, 56)} ${padLeft(fmtRatio(r.ratio), 7)}  (target ${r.strict ? '>' : '>='}${fmtRatio(r.target!)}) ${r.met ? 'met' : 'MISSED'}`)
    }
  }

  const summary = engineRows(groups, results)
  if (summary.length > 0) {
    log('')
    log(`== engines (TCP): ringline on ${o.backends.join(' and ')} against node:net`)
    printEngineSummary(summary, o.backends, log)
  }

  meta.loadavgEnd = os.loadavg()
  const sweep = { rows: sweepRows, suggestedThresholdBytes: thresholds.io_uring ?? null, suggestedThresholdBytesByBackend: thresholds }
  const out = write('net', { meta, results, ratios: allRatios, engineSummary: summary, sweep })
  log('')
  log(`load average at the end ${meta.loadavgEnd.map((x) => x.toFixed(2)).join(' ')}`)
  log(`results: ${path.relative(process.cwd(), out)} (and net-latest.json)`)
  if (results.some((r) => r.error)) process.exitCode = 1
}

main().catch((e: unknown) => {
  process.stderr.write(`benchmark failed: ${(e as Error)?.stack ?? String(e)}\n`)
  process.exit(1)
})
