// `npm run bench`: the file benchmark (files.ts), the ringline/fs benchmark
// (fs.ts, which has its own summary), the TCP benchmark (net.ts), then the
// HTTP benchmark (http.ts: node:http on ringline/net, wrk as load), each
// in a process of its own, every ringline workload on both engines
// (io_uring and mio); at the end one engine summary of files and TCP: per
// workload, ringline on io_uring and on mio against node (node:fs
// fs/promises for files, node:net for TCP), marked where mio is below node.
//
//   npm run bench -- [flags]      (node --expose-gc --import tsx benches/all.ts)
//   npm run bench:files -- ...    the file benchmark alone
//   npm run bench:net -- ...      the TCP benchmark alone
//   npm run bench:http -- ...     the HTTP benchmark alone
//
// Each flag goes to the benchmark(s) that take it (see their --help):
//   both:        --quick, --seconds/--duration, --warmup, --backends, --only
//   files only:  --no-fio, --memory, --all, --memory-ops, --depths, --data-dir,
//                --direct-size, --cache-size
//   TCP only:    --depth, --soak, --soak-seconds, ...
//   TCP and HTTP: --no-loop, --repeat
//   HTTP only:   --conns, --big-conns, --threads, --wrk
// e.g. npm run bench -- --quick --backends=io_uring
//
// Default run: about 14 minutes on 2 vCPUs (3 s per workload after 1 s of
// warm-up). The summary goes to bench-results/summary-<timestamp>.json and
// summary-latest.json.

import { spawn } from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { FILES_FLAGS, HTTP_FLAGS, NET_FLAGS, type FlagSpec } from './flags'
import { BACKENDS, usageFor, type Backend } from './harness'
import { printEngineSummary, type EngineRow } from './summary'

const ROOT = path.resolve(__dirname, '..')

const log = (s: string): void => {
  process.stdout.write(`${s}\n`)
}

const usage: (msg: string) => never = usageFor(__filename, 'ringline benchmarks: files, then TCP')

const takes = (spec: FlagSpec, name: string): boolean => spec.known.includes(name) || spec.valued.includes(name)

/** Splits argv into the arguments of files.ts, net.ts and http.ts. */
function route(argv: string[]): { files: string[]; net: string[]; http: string[] } {
  const files: string[] = []
  const net: string[] = []
  const http: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(argv[i])
    if (!m) usage(`unknown argument: ${argv[i]}`)
    const name = m[1]
    if (name === 'help') usage('ringline benchmarks: files, then TCP')
    if (name === 'json') usage('--json: pass it to bench:files, bench:net or bench:http (npm run bench writes summary-latest.json)')
    const toFiles = takes(FILES_FLAGS, name)
    const toNet = takes(NET_FLAGS, name)
    const toHttp = takes(HTTP_FLAGS, name)
    if (!toFiles && !toNet && !toHttp) usage(`unknown flag: --${name}`)
    const tokens = [argv[i]]
    const valued = FILES_FLAGS.valued.includes(name) || NET_FLAGS.valued.includes(name) || HTTP_FLAGS.valued.includes(name)
    if (valued && m[2] === undefined) {
      if (i + 1 >= argv.length) usage(`--${name} needs a value`)
      tokens.push(argv[++i])
    }
    if (toFiles) files.push(...tokens)
    if (toNet) net.push(...tokens)
    if (toHttp) http.push(...tokens)
  }
  return { files, net, http }
}

function execArgv(): string[] {
  const a = [...process.execArgv]
  if (!a.some((s) => s.includes('tsx'))) a.push('--import', 'tsx')
  if (!a.includes('--expose-gc')) a.unshift('--expose-gc')
  return a
}

/** Runs one benchmark with its output on ours; resolves to its exit code. */
function run(script: string, args: string[]): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...execArgv(), path.join(__dirname, script), ...args], { cwd: ROOT, stdio: 'inherit' })
    child.on('error', (e) => {
      log(`${script} could not start: ${e.message}`)
      resolve(1)
    })
    child.on('close', (code, signal) => resolve(code ?? (signal ? 1 : 0)))
  })
}

interface Doc {
  engineSummary?: EngineRow[]
  meta?: { started?: string; loadavgStart?: number[]; loadavgEnd?: number[]; options?: { backends?: Backend[] } }
}

function readDoc(file: string): Doc | null {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as Doc
  } catch {
    return null
  } finally {
    fs.rmSync(file, { force: true })
  }
}

async function main(): Promise<void> {
  const { files, net, http } = route(process.argv.slice(2))
  const resultsDir = path.join(ROOT, 'bench-results')
  fs.mkdirSync(resultsDir, { recursive: true })
  const started = new Date()
  const stamp = started.toISOString().replace(/[:.]/g, '-')
  const filesJson = path.join(resultsDir, `.all-files-${process.pid}.json`)
  const netJson = path.join(resultsDir, `.all-net-${process.pid}.json`)
  const httpJson = path.join(resultsDir, `.all-http-${process.pid}.json`)

  const t0 = performance.now()
  const filesCode = await run('files.ts', [...files, `--json=${filesJson}`])
  const filesDoc = readDoc(filesJson)
  log('')
  log('='.repeat(78))
  log('')
  // ringline/fs against node:fs/promises, fs callbacks, sync calls and Bun
  // (its own summary; `npm run bench:fs -- --help` for its flags).
  const fsCode = await run('fs.ts', files.includes('--quick') ? ['--quick'] : [])
  log('')
  log('='.repeat(78))
  log('')
  const netCode = await run('net.ts', [...net, `--json=${netJson}`])
  const netDoc = readDoc(netJson)
  log('')
  log('='.repeat(78))
  log('')
  const httpCode = await run('http.ts', [...http, `--json=${httpJson}`])
  const httpDoc = readDoc(httpJson)
  const minutes = (performance.now() - t0) / 60_000

  const rows = [...(filesDoc?.engineSummary ?? []), ...(netDoc?.engineSummary ?? []), ...(httpDoc?.engineSummary ?? [])]
  log('')
  log('='.repeat(78))
  log('')
  log(`== summary, files, TCP and HTTP (${minutes.toFixed(1)} min): ringline on each engine against node, same run`)
  if (filesDoc === null) log(`  files benchmark: no results (exit ${filesCode})`)
  if (netDoc === null) log(`  TCP benchmark: no results (exit ${netCode})`)
  if (httpDoc === null) log(`  HTTP benchmark: no results (exit ${httpCode})`)
  const backends = BACKENDS.filter((b) => [filesDoc, netDoc, httpDoc].some((d) => d?.meta?.options?.backends?.includes(b)))
  printEngineSummary(rows, backends, log)
  const doc = { started: started.toISOString(), minutes, files: filesDoc?.meta ?? null, net: netDoc?.meta ?? null, http: httpDoc?.meta ?? null, exitCodes: { files: filesCode, fs: fsCode, net: netCode, http: httpCode }, engineSummary: rows }
  const json = `${JSON.stringify(doc, null, 2)}\n`
  const out = path.join(resultsDir, `summary-${stamp}.json`)
  fs.writeFileSync(out, json)
  fs.writeFileSync(path.join(resultsDir, 'summary-latest.json'), json)
  log('')
  log(`summary: ${path.relative(process.cwd(), out)} (and summary-latest.json; the full results: files-latest.json, net-latest.json, http-latest.json)`)
  if (filesCode !== 0 || netCode !== 0 || httpCode !== 0) process.exitCode = 1
}

main().catch((e: unknown) => {
  process.stderr.write(`benchmark failed: ${(e as Error)?.stack ?? String(e)}\n`)
  process.exit(1)
})
