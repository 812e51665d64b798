// TCP benchmark of ringline against node:net, side by side in one run.
//
//   npm run bench:net -- [flags]      (node --expose-gc --import tsx benches/net.ts)
//
// Flags (`--flag N` and `--flag=N` both work):
//   --seconds N       seconds measured per workload (default 5, after the warm-up)
//   --warmup N        warm-up seconds per workload (default 1)
//   --quick           1 s per workload, 0.25 s warm-up: smoke runs
//   --only A,B        run only workloads whose "<group> <engine>" contains A or B
//                     (case-insensitive): --only pingpong, --only bulk,
//                     --only zc, --only sweep, --only "pingpong-50 node"
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
//     node:net        net.createServer + net.createConnection; echo with
//                     socket.write in the 'data' handler, client callbacks
//   zc-64k, zc-1m, zc-16m   ringline only, same receiver as bulk:
//     ringline copy       a Buffer.alloc buffer, send(buf): copied into library memory
//     ringline zero-copy  an allocAligned buffer, send(buf, { zeroCopy: true })
//                         (SENDMSG_ZC; resolves after the kernel's notification)
//   sweep-4k ... sweep-256k   the same pair at 4, 8, 16, 32, 64 and 256 KiB,
//                 printed as one table with the size from which zero-copy wins.
//   soak (--soak) ringline 64 B ping-pong on 50 connections for 5 minutes
//                 after a 30 s warm-up; RSS (after a gc()) every 10 s; first,
//                 last, max and growth (target <= 10%).
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
// Results print as tables plus ratio lines (with the targets), and go to
// bench-results/net-<timestamp>.json and net-latest.json (the soak:
// net-soak-<timestamp>.json and net-soak-latest.json).

import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { Flags, fmtRate, fmtRatio, fmtUs, pad, padLeft, type Measurement, type TimedOptions } from './harness'
import type { NetJob, SoakResult } from './net-work'

// ----- options -----------------------------------------------------------------

interface Options {
  timed: TimedOptions
  only: string[]
  loop: boolean
  depth: number
  repeat: number
  soak: boolean
  soakMs: number
  soakWarmupMs: number
  soakEveryMs: number
}

const ROOT = path.resolve(__dirname, '..')
const KiB = 1024
const MiB = 1 << 20
const PINGPONG_BYTES = 64
const BULK_BYTES = MiB
const ZC_SIZES = [64 * KiB, MiB, 16 * MiB]
const SWEEP_SIZES = [4, 8, 16, 32, 64, 256].map((k) => k * KiB)
const SOAK_CONNS = 50

function usage(msg: string): never {
  const head = fs.readFileSync(__filename, 'utf8').split('\n\n')[0]
  process.stderr.write(`${msg}\n\n${head}\n`)
  process.exit(msg === 'ringline TCP benchmark' ? 0 : 2)
}

function parseOptions(argv: string[]): Options {
  const valued = ['seconds', 'duration', 'warmup', 'only', 'depth', 'repeat', 'soak-seconds', 'soak-warmup', 'soak-every']
  const flags = new Flags(argv, ['quick', 'no-loop', 'soak', 'help'], valued, usage)
  if (flags.has('help')) usage('ringline TCP benchmark')
  const num = (k: string, def: number, min: number): number => flags.num(k, def, min)
  const quick = flags.has('quick')
  const seconds = flags.has('seconds') ? num('seconds', 5, 0.1) : num('duration', quick ? 1 : 5, 0.1)
  return {
    timed: { durationMs: seconds * 1000, warmupMs: num('warmup', quick ? 0.25 : 1, 0) * 1000 },
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

function runChild(job: NetJob, opts: TimedOptions, env: Record<string, string | undefined>, timeoutMs: number, onProgress?: (line: string) => void): Promise<Measurement | SoakResult> {
  return new Promise((resolve, reject) => {
    const childEnv: Record<string, string | undefined> = { ...process.env, ...env }
    for (const k of Object.keys(childEnv)) if (childEnv[k] === undefined) delete childEnv[k]
    const child = spawn(process.execPath, [...childExecArgv(), CHILD, JSON.stringify({ job, opts })], {
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
  target?: Target
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

const THREAD = { RINGLINE_COMPLETION: 'thread' }
const LOOP = { RINGLINE_COMPLETION: 'loop' }
const NODE = { RINGLINE_COMPLETION: undefined }

const sizeName = (n: number): string => (n >= MiB ? `${n / MiB} MiB` : `${n / KiB} KiB`)
const sizeTag = (n: number): string => (n >= MiB ? `${n / MiB}m` : `${n / KiB}k`)

function buildGroups(o: Options): Group[] {
  const groups: Group[] = []
  const peers = (job: (engine: 'ringline' | 'node') => NetJob): Workload[] => {
    const w: Workload[] = [{ group: '', engine: 'ringline', job: job('ringline'), env: THREAD }]
    if (o.loop) w.push({ group: '', engine: 'ringline loop', job: job('ringline'), env: LOOP })
    w.push({ group: '', engine: 'node:net', job: job('node'), env: NODE })
    return w
  }
  for (const [conns, target] of [
    [1, 1.0],
    [50, 1.4],
  ] as const) {
    groups.push({
      name: `pingpong-${conns}`,
      title: `64 B ping-pong, ${conns} connection${conns > 1 ? 's' : ''}: send 64 B, wait for the 64 B echo, repeat`,
      metric: 'roundtrips',
      workloads: peers((engine) => ({ kind: 'pingpong', engine, conns, size: PINGPONG_BYTES })),
      target: { ours: 'ringline', peer: 'node:net', ratio: target },
    })
  }
  groups.push({
    name: 'bulk',
    title: '1 MiB messages back to back on one connection, the server counts bytes',
    metric: 'gbps',
    workloads: peers((engine) => ({ kind: 'bulk', engine, size: BULK_BYTES, memory: 'plain', depth: o.depth })),
    target: { ours: 'ringline', peer: 'node:net', ratio: 1.0 },
  })
  const zcPair = (size: number): Workload[] => [
    { group: '', engine: 'ringline copy', job: { kind: 'bulk', engine: 'ringline', size, memory: 'plain', depth: o.depth }, env: THREAD },
    { group: '', engine: 'ringline zero-copy', job: { kind: 'bulk', engine: 'ringline', size, memory: 'zero-copy', depth: o.depth }, env: THREAD },
  ]
  for (const size of ZC_SIZES) {
    groups.push({
      name: `zc-${sizeTag(size)}`,
      title: `${sizeName(size)} messages on one connection: zero-copy (allocAligned, { zeroCopy: true }) vs copying send (Buffer)`,
      metric: 'gbps',
      workloads: zcPair(size),
      target: size === MiB ? { ours: 'ringline zero-copy', peer: 'ringline copy', ratio: 1.0, strict: true } : undefined,
    })
  }
  for (const size of SWEEP_SIZES) {
    groups.push({
      name: `sweep-${sizeTag(size)}`,
      title: `zero-copy threshold sweep, ${sizeName(size)}`,
      metric: 'gbps',
      workloads: zcPair(size),
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

function printGroup(g: Group, results: Result[]): void {
  if (g.metric === 'roundtrips') log(`  ${pad('engine', 22)}${padLeft('round trips/s', 14)}${padLeft('p50 µs', 10)}${padLeft('p99 µs', 10)}`)
  else log(`  ${pad('engine', 22)}${padLeft('GB/s', 8)}${padLeft('msgs/s', 9)}${padLeft('p50 µs', 10)}${padLeft('p99 µs', 10)}   (latency: one send)`)
  for (const r of results) {
    const m = r.measurement
    if (!m) {
      log(`  ${pad(r.engine, 22)}FAILED: ${r.error}`)
      continue
    }
    const lat = `${padLeft(fmtUs(m.p50Us), 10)}${padLeft(fmtUs(m.p99Us), 10)}`
    if (g.metric === 'roundtrips') log(`  ${pad(r.engine, 22)}${padLeft(fmtRate(m.opsPerSec), 14)}${lat}${notes(m)}`)
    else log(`  ${pad(r.engine, 22)}${padLeft(fmtGbps(value('gbps', m)), 8)}${padLeft(fmtRate(m.opsPerSec), 9)}${lat}${notes(m)}`)
  }
  const ok = results.filter((r) => r.measurement)
  const lines = ratios(g, ok)
  if (lines.length === 0) return
  log('')
  for (const x of lines) {
    const t = g.target
    let target = ''
    if (t && x.ours === t.ours && x.peer === t.peer) {
      const met = t.strict ? x.ratio > t.ratio : x.ratio >= t.ratio
      target = `   target ${t.strict ? '>' : '>='}${fmtRatio(t.ratio)}: ${met ? 'met' : 'MISSED'}`
    }
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
  met?: boolean
}

/** ringline rows against node:net; zero-copy against copy. */
function ratios(g: Group, results: Result[]): Ratio[] {
  const out: Ratio[] = []
  const get = (engine: string): Result | undefined => results.find((r) => r.engine === engine && r.measurement)
  const pairs: [string, string][] = g.workloads.some((w) => w.engine === 'node:net')
    ? [
        ['ringline', 'node:net'],
        ['ringline loop', 'node:net'],
      ]
    : [['ringline zero-copy', 'ringline copy']]
  for (const [a, b] of pairs) {
    const ra = get(a)
    const rb = get(b)
    if (!ra || !rb) continue
    const va = value(g.metric, ra.measurement!)
    const r: Ratio = { group: g.name, ours: a, peer: b, value: va, ratio: va / value(g.metric, rb.measurement!) }
    const t = g.target
    if (t && t.ours === a && t.peer === b) {
      r.target = t.ratio
      r.met = t.strict ? r.ratio > t.ratio : r.ratio >= t.ratio
    }
    out.push(r)
  }
  return out
}

interface SweepRow {
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

async function soak(o: Options): Promise<SoakResult> {
  const job: NetJob = { kind: 'soak', conns: SOAK_CONNS, size: PINGPONG_BYTES, warmupMs: o.soakWarmupMs, soakMs: o.soakMs, everyMs: o.soakEveryMs }
  const r = (await runChild(job, o.timed, THREAD, o.soakWarmupMs + o.soakMs + 120_000, (line) => log(`  ${line}`))) as SoakResult
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
    return out
  }

  if (o.soak) {
    log('')
    log(`== soak: ringline 64 B ping-pong, ${SOAK_CONNS} connections; RSS every ${o.soakEveryMs / 1000} s for ${o.soakMs / 1000} s after ${o.soakWarmupMs / 1000} s of warm-up`)
    let result: SoakResult | { error: string }
    try {
      result = await soak(o)
    } catch (e) {
      log(`  FAILED: ${(e as Error).message}`)
      result = { error: (e as Error).message }
    }
    meta.loadavgEnd = os.loadavg()
    const out = write('net-soak', { meta, soak: result })
    log('')
    log(`results: ${path.relative(process.cwd(), out)} (and net-soak-latest.json)`)
    if ('error' in result) process.exitCode = 1
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
  for (const g of buildGroups(o)) {
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
          const m = (await runChild(w.job, t, w.env, childTimeout)) as Measurement
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
      const copy = mine.find((r) => r.engine === 'ringline copy')?.measurement
      const zc = mine.find((r) => r.engine === 'ringline zero-copy')?.measurement
      if (copy && zc) {
        const a = value('gbps', copy)
        const b = value('gbps', zc)
        sweepRows.push({ size: g.sweep, copyGbps: a, zeroCopyGbps: b, ratio: b / a })
      }
      for (const r of mine) if (r.error) log(`  ${sizeName(g.sweep)} ${r.engine}: FAILED: ${r.error}`)
      continue
    }
    log('')
    printGroup(g, mine)
  }
  let threshold: number | null = null
  if (sweepRows.length > 0) {
    log('')
    log(`== sweep table: GB/s by message size (${o.depth} send${o.depth > 1 ? 's' : ''} in flight; loopback)`)
    threshold = printSweep(sweepRows)
  }

  const targets = allRatios.filter((r) => r.target !== undefined)
  if (targets.length > 0) {
    log('')
    log('== targets')
    for (const r of targets) {
      log(`  ${pad(r.group, 12)} ${pad(`${r.ours} / ${r.peer}`, 36)} ${padLeft(fmtRatio(r.ratio), 7)}  (target ${r.group.startsWith('zc') ? '>' : '>='}${fmtRatio(r.target!)}) ${r.met ? 'met' : 'MISSED'}`)
    }
  }

  meta.loadavgEnd = os.loadavg()
  const out = write('net', { meta, results, ratios: allRatios, sweep: { rows: sweepRows, suggestedThresholdBytes: threshold } })
  log('')
  log(`load average at the end ${meta.loadavgEnd.map((x) => x.toFixed(2)).join(' ')}`)
  log(`results: ${path.relative(process.cwd(), out)} (and net-latest.json)`)
  if (results.some((r) => r.error)) process.exitCode = 1
}

main().catch((e: unknown) => {
  process.stderr.write(`benchmark failed: ${(e as Error)?.stack ?? String(e)}\n`)
  process.exit(1)
})
