// HTTP benchmark: node:http's server on ringline/net sockets (serveHttp)
// against node:http on node's own sockets, side by side in one run, with
// wrk as the load generator.
//
//   npm run bench:http -- [flags]     (node --import tsx benches/http.ts)
//
// Flags (`--flag N` and `--flag=N` both work):
//   --seconds N       seconds measured per row (default 5, after the warm-up;
//                     --duration N is the same; whole seconds, as wrk takes them)
//   --warmup N        warm-up seconds per row (default 1; a wrk run of its own)
//   --quick           2 s per row
//   --backends io_uring,mio  ringline's engines (default both)
//   --only A,B        rows whose "<group> <engine>" contains A or B
//                     (case-insensitive): --only json, --only p10,
//                     --only big, --only "node:http", --only mio
//   --no-loop         leave out the "ringline/net loop" rows
//                     (RINGLINE_COMPLETION=loop: no completion thread)
//   --repeat N        run each row N times, the rows of a group in turn
//                     (A B C A B C ...), report the median (default 1)
//   --conns N         connections of the small-response groups (default 100)
//   --big-conns N     connections of the 1 MiB group (default 10)
//   --threads N       wrk threads (default 1: the machine this was written on
//                     has 2 vCPUs, one for the server, one for wrk)
//   --wrk PATH        the wrk binary (default: wrk on PATH)
//   --json FILE       also write the results to FILE
//
// Groups (127.0.0.1, keep-alive, GET):
//   json       /json: a small JSON object (res.end(JSON.stringify(...)),
//              about 150 bytes on the wire), --conns connections
//   json-p10   the same with 10 requests pipelined on each connection
//              (wrk with a Lua request of 10 requests)
//   big        /big: a 1 MiB Buffer with its Content-Length, --big-conns
//              connections
// Rows: "ringline/net (io_uring)", "ringline/net (mio)" (completion
// thread), "ringline/net loop (<engine>)" (RINGLINE_COMPLETION=loop), and
// "node:http" (node:http.createServer().listen()). The server is the same
// node:http server and handler in every row (benches/http-server.ts).
//
// Every row: a fresh server child process; wrk for the warm-up, then wrk
// for the window. Printed per row: requests/s, MB/s (response bytes as wrk
// counts them), wrk's latency p50/p99, the server's CPU per request
// (process.cpuUsage of the server child over the window, every thread,
// divided by the requests of the window) and its CPU use (1.0 = one core),
// and wrk's own CPU use (bash `times`): near --threads cores it would be
// the bottleneck, and the row says so. Ratios: each ringline row against
// node:http, in requests/s and in server CPU per request (node's µs/req
// divided by ours: above 1 = ringline spends less). Results go to
// bench-results/http-<timestamp>.json and http-latest.json.
//
// wrk: the Debian package (apt-get install wrk). Missing, every row is
// skipped with the reason, and the run exits 0.

import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { HTTP_FLAGS } from './flags'
import { printEngineSummary, type EngineRow } from './summary'
import { Flags, engineLabel, fmtRate, fmtRatio, fmtUs, pad, padLeft, parseBackends, usageFor, type Backend } from './harness'

const ROOT = path.resolve(__dirname, '..')
const SERVER = path.join(__dirname, 'http-server.ts')
const NODE_PEER = 'node:http'

const usage: (msg: string) => never = usageFor(__filename, 'ringline HTTP benchmark')

interface Options {
  seconds: number
  warmup: number
  backends: Backend[]
  only: string[]
  loop: boolean
  repeat: number
  conns: number
  bigConns: number
  threads: number
  wrk: string
  json: string | null
}

function parseOptions(argv: string[]): Options {
  const flags = new Flags(argv, HTTP_FLAGS.known, HTTP_FLAGS.valued, usage)
  if (flags.has('help')) usage('ringline HTTP benchmark')
  const quick = flags.has('quick')
  // wrk takes whole seconds.
  const seconds = Math.round(flags.has('seconds') ? flags.num('seconds', 5, 1) : flags.num('duration', quick ? 2 : 5, 1))
  return {
    seconds,
    warmup: Math.round(flags.num('warmup', 1, 0)),
    backends: parseBackends(flags.get('backends'), usage),
    only: (flags.get('only') ?? '')
      .split(',')
      .map((s) => s.trim().toLowerCase())
      .filter((s) => s !== ''),
    loop: !flags.has('no-loop'),
    repeat: Math.floor(flags.num('repeat', 1, 1)),
    conns: Math.floor(flags.num('conns', 100, 1)),
    bigConns: Math.floor(flags.num('big-conns', 10, 1)),
    threads: Math.floor(flags.num('threads', 1, 1)),
    wrk: flags.get('wrk') ?? 'wrk',
    json: flags.get('json') ? path.resolve(flags.get('json') as string) : null,
  }
}

// ----- wrk ---------------------------------------------------------------------------

/** wrk's version line, or null when it cannot run. */
function findWrk(bin: string): string | null {
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8' })
  if (r.error) return null
  const line = `${r.stdout}${r.stderr}`.split('\n')[0]
  return line.startsWith('wrk') ? line.trim() : null
}

/** The Lua script: pipelining (WRK_PIPELINE requests per write) and a JSON summary line. */
const WRK_LUA = `
local depth = tonumber(os.getenv("WRK_PIPELINE") or "1")
if depth > 1 then
  init = function(args)
    local r = {}
    for i = 1, depth do r[i] = wrk.format(nil, nil) end
    pipelined = table.concat(r)
  end
  request = function() return pipelined end
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests":%d,"bytes":%d,"durationUs":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"p50Us":%d,"p99Us":%d,"meanUs":%f}\\n',
    summary.requests, summary.bytes, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean))
end
`

interface WrkResult {
  requests: number
  bytes: number
  durationUs: number
  connect: number
  read: number
  write: number
  status: number
  timeout: number
  p50Us: number
  p99Us: number
  meanUs: number
  /** wrk's own CPU seconds (user + system), from bash's `times`. */
  cpuSeconds: number
}

function runWrk(o: Options, script: string, url: string, conns: number, seconds: number, pipeline: number): Promise<WrkResult> {
  return new Promise((resolve, reject) => {
    const args = ['-t', String(Math.min(o.threads, conns)), '-c', String(conns), '-d', `${seconds}s`, '--timeout', '10s', '-s', script, url]
    // bash runs wrk, then `times` prints the CPU time of its children: wrk's.
    const child = spawn('bash', ['-c', '"$@"; s=$?; times; exit $s', 'bash', o.wrk, ...args], {
      env: { ...process.env, WRK_PIPELINE: String(pipeline) },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    let err = ''
    child.stdout.on('data', (d: Buffer) => (out += d.toString()))
    child.stderr.on('data', (d: Buffer) => (err += d.toString()))
    child.on('error', reject)
    child.on('close', (code) => {
      const m = /WRKJSON (\{.*\})/.exec(out)
      if (code !== 0 || m === null) {
        reject(new Error(`wrk failed (exit ${code}): ${(err || out).trim().split('\n').slice(-3).join(' / ')}`))
        return
      }
      const r = JSON.parse(m[1]) as WrkResult
      // `times`: two lines, the shell's and its children's "XmY.YYYs XmY.YYYs".
      const lines = out.trim().split('\n')
      const kids = /(\d+)m([\d.]+)s (\d+)m([\d.]+)s/.exec(lines[lines.length - 1])
      r.cpuSeconds = kids === null ? NaN : Number(kids[1]) * 60 + Number(kids[2]) + Number(kids[3]) * 60 + Number(kids[4])
      resolve(r)
    })
  })
}

// ----- server child ------------------------------------------------------------------

interface Cpu {
  user: number
  system: number
}

class ServerChild {
  private readonly child: ChildProcessWithoutNullStreams
  private partial = ''
  private waiters: ((doc: Record<string, unknown>) => void)[] = []
  private err = ''
  private exited: string | null = null

  constructor(engine: 'node' | 'ringline', env: Record<string, string | undefined>) {
    const childEnv: Record<string, string | undefined> = { ...process.env, ...env }
    for (const k of Object.keys(childEnv)) if (childEnv[k] === undefined) delete childEnv[k]
    const execArgv = process.execArgv.some((s) => s.includes('tsx')) ? [...process.execArgv] : [...process.execArgv, '--import', 'tsx']
    this.child = spawn(process.execPath, [...execArgv, SERVER, engine], { cwd: ROOT, env: childEnv as NodeJS.ProcessEnv, stdio: ['pipe', 'pipe', 'pipe'] })
    this.child.stdout.on('data', (d: Buffer) => {
      this.partial += d.toString()
      let nl: number
      while ((nl = this.partial.indexOf('\n')) >= 0) {
        const line = this.partial.slice(0, nl)
        this.partial = this.partial.slice(nl + 1)
        let doc: Record<string, unknown>
        try {
          doc = JSON.parse(line) as Record<string, unknown>
        } catch {
          this.err += `${line}\n`
          continue
        }
        this.waiters.shift()?.(doc)
      }
    })
    this.child.stderr.on('data', (d: Buffer) => (this.err += d.toString()))
    this.child.on('exit', (code, signal) => {
      this.exited = `server exited (${signal ?? code}): ${this.err.trim().split('\n').slice(-3).join(' / ')}`
      for (const w of this.waiters.splice(0)) w({ error: this.exited })
    })
  }

  /** The next JSON line (after sending `cmd`, if given). */
  next(cmd?: string, timeoutMs = 30_000): Promise<Record<string, unknown>> {
    if (this.exited !== null) return Promise.reject(new Error(this.exited))
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server did not answer ${cmd ?? 'its start'} within ${timeoutMs / 1000} s`)), timeoutMs)
      this.waiters.push((doc) => {
        clearTimeout(timer)
        if (typeof doc.error === 'string') reject(new Error(doc.error))
        else resolve(doc)
      })
      if (cmd !== undefined) this.child.stdin.write(`${cmd}\n`)
    })
  }

  async cpu(): Promise<Cpu> {
    return (await this.next('cpu')).cpu as Cpu
  }

  stop(): Promise<void> {
    return new Promise((resolve) => {
      if (this.exited !== null) {
        resolve()
        return
      }
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000)
      this.child.once('exit', () => {
        clearTimeout(timer)
        resolve()
      })
      this.child.stdin.write('exit\n')
    })
  }
}

// ----- workloads ---------------------------------------------------------------------

interface Row {
  group: string
  engine: string
  server: 'node' | 'ringline'
  env: Record<string, string | undefined>
}

interface Group {
  name: string
  title: string
  route: string
  conns: number
  pipeline: number
  rows: Row[]
}

interface Measurement {
  requestsPerSec: number
  mbPerSec: number
  requests: number
  seconds: number
  p50Us: number
  p99Us: number
  meanUs: number
  /** Server CPU µs (user + system, every thread) per request. */
  serverUsPerReq: number
  serverUserUsPerReq: number
  serverSysUsPerReq: number
  /** Server CPU seconds per second of the window (1 = one core). */
  serverCores: number
  /** wrk's CPU seconds per second of its window. */
  wrkCores: number
  errors: number
  stats?: unknown
}

interface Result {
  group: string
  engine: string
  measurement?: Measurement
  runs?: number[]
  error?: string
  skipped?: string
}

function buildGroups(o: Options): Group[] {
  const rows = (): Row[] => {
    const out: Row[] = []
    for (const b of o.backends) {
      out.push({ group: '', engine: engineLabel('ringline/net', b), server: 'ringline', env: { RINGLINE_BACKEND: b, RINGLINE_COMPLETION: 'thread' } })
      if (o.loop) out.push({ group: '', engine: engineLabel('ringline/net loop', b), server: 'ringline', env: { RINGLINE_BACKEND: b, RINGLINE_COMPLETION: 'loop' } })
    }
    out.push({ group: '', engine: NODE_PEER, server: 'node', env: { RINGLINE_BACKEND: undefined, RINGLINE_COMPLETION: undefined } })
    return out
  }
  const groups: Group[] = [
    { name: 'json', title: `small JSON response, ${o.conns} keep-alive connections`, route: '/json', conns: o.conns, pipeline: 1, rows: rows() },
    { name: 'json-p10', title: `small JSON response, ${o.conns} connections, 10 requests pipelined on each`, route: '/json', conns: o.conns, pipeline: 10, rows: rows() },
    { name: 'big', title: `1 MiB body, ${o.bigConns} keep-alive connections`, route: '/big', conns: o.bigConns, pipeline: 1, rows: rows() },
  ]
  for (const g of groups) for (const r of g.rows) r.group = g.name
  return groups
}

async function measure(o: Options, g: Group, row: Row, script: string): Promise<Measurement> {
  const server = new ServerChild(row.server, row.env)
  try {
    const info = await server.next()
    const url = `http://127.0.0.1:${Number(info.port)}${g.route}`
    if (o.warmup > 0) await runWrk(o, script, url, g.conns, o.warmup, g.pipeline)
    const c0 = await server.cpu()
    const w = await runWrk(o, script, url, g.conns, o.seconds, g.pipeline)
    const c1 = await server.cpu()
    const stats = row.server === 'ringline' ? (await server.next('stats')).stats : undefined
    const seconds = w.durationUs / 1e6
    const user = c1.user - c0.user
    const system = c1.system - c0.system
    const n = w.requests
    const errors = w.connect + w.read + w.write + w.status + w.timeout
    if (n === 0) throw new Error(`no requests completed (errors: ${errors})`)
    return {
      requestsPerSec: n / seconds,
      mbPerSec: w.bytes / seconds / 1e6,
      requests: n,
      seconds,
      p50Us: w.p50Us,
      p99Us: w.p99Us,
      meanUs: w.meanUs,
      serverUsPerReq: (user + system) / n,
      serverUserUsPerReq: user / n,
      serverSysUsPerReq: system / n,
      // The cpu samples bracket wrk's run (its start and exit): close enough.
      serverCores: (user + system) / 1e6 / seconds,
      wrkCores: w.cpuSeconds / (seconds + 0.05),
      errors,
      stats: stats === null ? undefined : stats,
    }
  } finally {
    await server.stop()
  }
}

// ----- printing ------------------------------------------------------------------------

const log = (s: string): void => {
  process.stdout.write(`${s}\n`)
}

const ENGINE_COL = 30

function printGroup(o: Options, results: Result[]): void {
  log(
    `  ${pad('engine', ENGINE_COL)}${padLeft('req/s', 9)}${padLeft('MB/s', 8)}${padLeft('p50 µs', 9)}${padLeft('p99 µs', 9)}` +
      `${padLeft('srv µs/req', 12)}${padLeft('(usr+sys)', 13)}${padLeft('srv cores', 10)}${padLeft('wrk cores', 10)}`,
  )
  for (const r of results) {
    const m = r.measurement
    if (!m) {
      log(`  ${pad(r.engine, ENGINE_COL)}${r.skipped ? `skipped: ${r.skipped}` : `FAILED: ${r.error}`}`)
      continue
    }
    const notes: string[] = []
    if (m.errors > 0) notes.push(`${m.errors} wrk errors`)
    if (m.wrkCores > 0.9 * o.threads) notes.push('(wrk near saturation: it may be the bottleneck)')
    log(
      `  ${pad(r.engine, ENGINE_COL)}${padLeft(fmtRate(m.requestsPerSec), 9)}${padLeft(m.mbPerSec.toFixed(m.mbPerSec >= 100 ? 0 : 1), 8)}` +
        `${padLeft(fmtUs(m.p50Us), 9)}${padLeft(m.p99Us > 0 ? fmtUs(m.p99Us) : '-', 9)}${padLeft(fmtUs(m.serverUsPerReq), 12)}` +
        `${padLeft(`${fmtUs(m.serverUserUsPerReq)}+${fmtUs(m.serverSysUsPerReq)}`, 13)}${padLeft(m.serverCores.toFixed(2), 10)}${padLeft(m.wrkCores.toFixed(2), 10)}` +
        (notes.length > 0 ? `   ${notes.join(' ')}` : ''),
    )
  }
}

interface Ratio {
  group: string
  ours: string
  peer: string
  /** req/s ours / peer. */
  throughput: number
  /** Server CPU per request, peer / ours (above 1: ours spends less). */
  cpu: number
}

function ratios(results: Result[]): Ratio[] {
  const peer = results.find((r) => r.engine === NODE_PEER && r.measurement)?.measurement
  if (peer === undefined) return []
  const out: Ratio[] = []
  for (const r of results) {
    if (r.engine === NODE_PEER || !r.measurement) continue
    out.push({ group: r.group, ours: r.engine, peer: NODE_PEER, throughput: r.measurement.requestsPerSec / peer.requestsPerSec, cpu: peer.serverUsPerReq / r.measurement.serverUsPerReq })
  }
  return out
}

// ----- main ----------------------------------------------------------------------------

async function main(): Promise<void> {
  const o = parseOptions(process.argv.slice(2))
  const resultsDir = path.join(ROOT, 'bench-results')
  fs.mkdirSync(resultsDir, { recursive: true })
  const started = new Date()
  const wrkVersion = findWrk(o.wrk)
  const meta = {
    started: started.toISOString(),
    node: process.version,
    kernel: `${os.type()} ${os.release()}`,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    loadGenerator: wrkVersion ?? `missing (${o.wrk})`,
    topology: 'server: one child process per row; load: wrk in another process; 127.0.0.1',
    options: o,
    loadavgStart: os.loadavg(),
    loadavgEnd: [] as number[],
  }
  log(`ringline HTTP benchmark — ${meta.started}`)
  log(`node ${meta.node}, ${meta.kernel}, ${meta.cpus} CPUs (${meta.cpuModel}); load average ${meta.loadavgStart.map((x) => x.toFixed(2)).join(' ')}`)
  log(`load generator: ${meta.loadGenerator}, ${o.threads} thread${o.threads > 1 ? 's' : ''}; ${o.seconds} s per row after ${o.warmup} s warm-up; shared machines are noisy: read the ratios`)
  const selected = (r: Row): boolean => {
    const name = `${r.group} ${r.engine}`.toLowerCase()
    return o.only.length === 0 || o.only.some((s) => name.includes(s))
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ringline-http-'))
  const script = path.join(tmp, 'bench.lua')
  fs.writeFileSync(script, WRK_LUA)
  const results: Result[] = []
  const allRatios: Ratio[] = []
  try {
    for (const g of buildGroups(o)) {
      const chosen = g.rows.filter(selected)
      if (chosen.length === 0) continue
      log('')
      log(`== ${g.name}: ${g.title}`)
      const runs = new Map<Row, Measurement[]>()
      const errors = new Map<Row, string>()
      if (wrkVersion === null) {
        for (const r of chosen) errors.set(r, `skipped: no wrk (${o.wrk}) here; apt-get install wrk, or --wrk PATH`)
      }
      for (let rep = 0; rep < o.repeat && wrkVersion !== null; rep++) {
        for (const r of chosen) {
          if (errors.has(r)) continue
          process.stdout.write(`  . ${r.engine}${o.repeat > 1 ? ` #${rep + 1}` : ''} ...`)
          try {
            const m = await measure(o, g, r, script)
            runs.set(r, [...(runs.get(r) ?? []), m])
            process.stdout.write(` ${fmtRate(m.requestsPerSec)} req/s, ${fmtUs(m.serverUsPerReq)} µs server CPU/req\n`)
          } catch (e) {
            errors.set(r, (e as Error).message)
            process.stdout.write(` FAILED: ${(e as Error).message}\n`)
          }
        }
      }
      const mine: Result[] = chosen.map((r) => {
        const res: Result = { group: g.name, engine: r.engine }
        const e = errors.get(r)
        if (e !== undefined) {
          if (e.startsWith('skipped: ')) res.skipped = e.slice(9)
          else res.error = e
          return res
        }
        const ms = [...(runs.get(r) ?? [])].sort((a, b) => a.requestsPerSec - b.requestsPerSec)
        res.measurement = ms[Math.floor((ms.length - 1) / 2)]
        if (ms.length > 1) res.runs = (runs.get(r) ?? []).map((m) => m.requestsPerSec)
        return res
      })
      results.push(...mine)
      log('')
      printGroup(o, mine)
      const rs = ratios(mine)
      allRatios.push(...rs)
      if (rs.length > 0) log('')
      for (const x of rs) {
        log(`  ${g.name}: ${pad(x.ours, ENGINE_COL)} ${padLeft(fmtRatio(x.throughput), 6)} ${x.peer} req/s   server CPU/req: ${fmtRatio(x.cpu)} of node's efficiency   target >=1.00x: ${x.throughput >= 1 ? 'met' : 'MISSED'}`)
      }
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true })
  }
  if (allRatios.length > 0) {
    log('')
    log('== ratios against node:http (req/s; server CPU per request, node / ours)')
    for (const x of allRatios) log(`  ${pad(x.group, 9)} ${pad(x.ours, ENGINE_COL)} ${padLeft(fmtRatio(x.throughput), 7)} req/s  ${padLeft(fmtRatio(x.cpu), 7)} CPU/req`)
  }
  // Per group: ringline/net (completion thread) on each engine against node:http.
  const summary: EngineRow[] = []
  for (const name of [...new Set(results.map((r) => r.group))]) {
    const get = (engine: string): number | null => results.find((r) => r.group === name && r.engine === engine)?.measurement?.requestsPerSec ?? null
    summary.push({ bench: 'http', workload: `http ${name}`, variant: 'ringline/net', peer: NODE_PEER, unit: 'req/s', node: get(NODE_PEER), ioUring: get(engineLabel('ringline/net', 'io_uring')), mio: get(engineLabel('ringline/net', 'mio')) })
  }
  if (summary.some((r) => r.node !== null)) {
    log('')
    log(`== engines (HTTP): node:http on ringline/net on ${o.backends.join(' and ')} against node:http on node's sockets`)
    printEngineSummary(summary, o.backends, log)
  }
  meta.loadavgEnd = os.loadavg()
  const doc = { meta, results, ratios: allRatios, engineSummary: summary }
  const json = `${JSON.stringify(doc, null, 2)}\n`
  const stamp = started.toISOString().replace(/[:.]/g, '-')
  const out = path.join(resultsDir, `http-${stamp}.json`)
  fs.writeFileSync(out, json)
  fs.writeFileSync(path.join(resultsDir, 'http-latest.json'), json)
  if (o.json !== null) fs.writeFileSync(o.json, json)
  log('')
  log(`load average at the end ${meta.loadavgEnd.map((x) => x.toFixed(2)).join(' ')}`)
  log(`results: ${path.relative(process.cwd(), out)} (and http-latest.json)`)
  if (results.some((r) => r.error)) process.exitCode = 1
}

main().catch((e: unknown) => {
  process.stderr.write(`benchmark failed: ${(e as Error)?.stack ?? String(e)}\n`)
  process.exit(1)
})
