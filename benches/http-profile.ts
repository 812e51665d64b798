// Instructions per HTTP request of the server of http.ts, counted by
// valgrind's callgrind (user space only: the kernel's work is not in them):
// the server child (benches/http-server.ts) runs under callgrind; the client
// (benches/http-count.ts) makes a warm-up of --warm requests, then the
// counters are zeroed (callgrind_control -z), the client makes --requests
// requests on the same connections, and a dump (callgrind_control -d):
// instructions of the dump / requests. Deterministic enough (about 1%
// between runs) to compare two versions of a hot path, unlike timings on a
// shared machine. Every thread counts (ringline's completion thread too).
//
//   node --import tsx benches/http-profile.ts [--engines node,io_uring,mio,io_uring-loop]
//        [--requests 20000] [--warm 5000] [--conns 100] [--pipeline 1] [--path /json]
//        [--top 30] [--out DIR] [--v8 deterministic|default]
//
// --v8 deterministic (the default) runs the server with
// --no-concurrent-recompilation --single-threaded-gc: under valgrind, whose
// threads take turns, V8's background compiles finish late and code stays
// in its lower tiers for longer, differently from run to run (with
// computed-key literals and map migrations in the counts that a run at
// full speed never shows); compiling and collecting on the JS thread makes
// tiering happen at the same points every run, and puts the collector's
// work into the JS thread's count.
//
// Prints per engine: Ir/request, the split by object (node's binary, JIT
// code "???", libc, ringline's .node, ...), and the top functions by self
// instructions (--top). The dumps stay in --out (default a temp dir) for
// callgrind_annotate.

import { spawn, spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

const ROOT = path.resolve(__dirname, '..')

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`)
  if (i >= 0 && i + 1 < process.argv.length) return process.argv[i + 1]
  const eq = process.argv.find((a) => a.startsWith(`--${name}=`))
  return eq === undefined ? def : eq.slice(name.length + 3)
}

const engines = arg('engines', 'node,io_uring,mio').split(',')
const requests = Number(arg('requests', '20000'))
const warm = Number(arg('warm', '5000'))
const conns = Number(arg('conns', '100'))
const pipeline = Number(arg('pipeline', '1'))
const route = arg('path', '/json')
const top = Number(arg('top', '30'))
const v8Flags = arg('v8', 'deterministic') === 'deterministic' ? ['--no-concurrent-recompilation', '--single-threaded-gc'] : []
const outDir = arg('out', fs.mkdtempSync(path.join(os.tmpdir(), 'ringline-http-prof-')))
fs.mkdirSync(outDir, { recursive: true })

const log = (s: string): void => {
  process.stdout.write(`${s}\n`)
}

/** Starts the client: resolves once it has made the warm-up requests; `go()` runs the counted ones. */
function client(port: number): Promise<{ go: () => Promise<string> }> {
  return new Promise((resolve, reject) => {
    const c = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(__dirname, 'http-count.ts'), '--port', String(port), '--warm', String(warm), '--requests', String(requests), '--conns', String(conns), '--pipeline', String(pipeline), '--path', route],
      { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] },
    )
    let out = ''
    let warmed = false
    const finished = new Promise<string>((res, rej) => {
      c.on('close', (code) => (code === 0 ? res(out.trim().split('\n').pop() ?? '') : rej(new Error(`http-count exit ${code}`))))
    })
    finished.catch(reject)
    c.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      if (!warmed && out.includes('"warm"')) {
        warmed = true
        resolve({
          go: () => {
            c.stdin.write('go\n')
            return finished
          },
        })
      }
    })
  })
}

/**
 * callgrind_control `flag` on `pid`. Callgrind takes the command only when
 * the process runs: an idle server (waiting for requests) would never take
 * it, so `poke` makes it run something (a 'cpu' line on its stdin) until
 * the command is through.
 */
async function control(flag: string, pid: number, poke: () => void): Promise<void> {
  const c = spawn('callgrind_control', [flag, String(pid)], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  c.stdout.on('data', (d: Buffer) => (out += d.toString()))
  c.stderr.on('data', (d: Buffer) => (out += d.toString()))
  const timer = setInterval(poke, 200)
  const code = await new Promise<number | null>((resolve) => c.on('close', resolve))
  clearInterval(timer)
  if (code !== 0) throw new Error(`callgrind_control ${flag}: ${out}`)
}

async function profile(engine: string): Promise<void> {
  const [backend, completion] = engine === 'node' ? [undefined, undefined] : engine.endsWith('-loop') ? [engine.slice(0, -5), 'loop'] : [engine, 'thread']
  const env: NodeJS.ProcessEnv = { ...process.env }
  delete env.RINGLINE_BACKEND
  delete env.RINGLINE_COMPLETION
  if (backend !== undefined) env.RINGLINE_BACKEND = backend
  if (completion !== undefined) env.RINGLINE_COMPLETION = completion
  // The same per-request timer work as the default 5 s, without idle
  // connections timing out while valgrind is slow.
  env.HTTP_KEEPALIVE_MS = '600000'
  const file = path.join(outDir, `cg.${engine}.%p`)
  const child = spawn('valgrind', ['--tool=callgrind', '--separate-threads=yes', `--callgrind-out-file=${file}`, process.execPath, ...v8Flags, '--import', 'tsx', path.join(__dirname, 'http-server.ts'), engine === 'node' ? 'node' : 'ringline'], { cwd: ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] })
  let err = ''
  child.stderr.on('data', (d: Buffer) => (err += d.toString()))
  const port = await new Promise<number>((resolve, reject) => {
    let out = ''
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      const nl = out.indexOf('\n')
      if (nl >= 0) {
        const doc = JSON.parse(out.slice(0, nl)) as { port?: number; error?: string }
        if (doc.port === undefined) reject(new Error(doc.error ?? out))
        else resolve(doc.port)
      }
    })
    child.on('exit', () => reject(new Error(`server exited: ${err.split('\n').slice(-5).join(' / ')}`)))
  })
  const poke = (): void => {
    child.stdin.write('cpu\n')
  }
  process.stderr.write(`  [${engine}] server up on ${port}; warm-up...\n`)
  const cl = await client(port)
  process.stderr.write(`  [${engine}] warm; zeroing\n`)
  await control('-z', child.pid!, poke)
  process.stderr.write(`  [${engine}] counting\n`)
  const res = await cl.go()
  process.stderr.write(`  [${engine}] dumping\n`)
  await control('-d', child.pid!, poke)
  child.stdin.write('exit\n')
  await new Promise<void>((resolve) => child.on('exit', () => resolve()))
  // The dump made by -d, one file per thread: cg.<engine>.<pid>.1-01 (the
  // main thread: JavaScript), -02 ... (ringline's completion thread, V8's
  // compiler and GC threads, libuv's pool).
  const dumps = fs
    .readdirSync(outDir)
    .filter((f) => f.startsWith(`cg.${engine}.${child.pid}.1-`))
    .sort()
  const irOf = (f: string): number => {
    const m = /^(?:summary|totals): (\d+)/m.exec(fs.readFileSync(path.join(outDir, f), 'utf8'))
    return m === null ? 0 : Number(m[1])
  }
  const perThread = dumps.map((f) => [f.slice(f.lastIndexOf('-') + 1), irOf(f)] as const).filter(([, n]) => n > 0)
  const ir = perThread.reduce((a, [, n]) => a + n, 0)
  log('')
  log(`== ${engine}: ${route}, ${requests} requests after ${warm}, ${conns} connections, pipeline ${pipeline} (client: ${res})`)
  log(`  ${(ir / requests).toFixed(0)} Ir/request, every thread; by thread: ${perThread.map(([t, n]) => `${t} ${(n / requests).toFixed(0)}`).join(', ')} (01: the JS thread; dumps in ${outDir})`)
  // The JS thread: self instructions by object, then by function.
  const main = path.join(outDir, dumps[0])
  const mainIr = irOf(dumps[0])
  const ann = spawnSync('callgrind_annotate', ['--inclusive=no', `--threshold=100`, main], { encoding: 'utf8', maxBuffer: 1 << 28 })
  const byObj = new Map<string, number>()
  const fns: [number, string][] = []
  // The function list follows the "file:function" header. Entries of the
  // frames open across the zeroing (main, the event loop) come out with
  // their inclusive cost: left out (no function's own cost is a quarter of
  // everything).
  const lines = ann.stdout.split('\n')
  for (const line of lines.slice(lines.findIndex((l) => l.includes('file:function')) + 1)) {
    const m = /^\s*([\d,]+)\s+(?:\([^)]*\)\s+)?(.*?):(.*?)(?: \[(.*)\])?\s*$/.exec(line)
    if (!m) continue
    const n = Number(m[1].replace(/,/g, ''))
    if (n > mainIr / 4) continue
    const obj = path.basename(m[4] ?? m[2])
    byObj.set(obj, (byObj.get(obj) ?? 0) + n)
    fns.push([n, `${m[3]} [${obj}]`])
  }
  const objs = [...byObj.entries()].sort((a, b) => b[1] - a[1]).slice(0, 6)
  log(`  JS thread by object (Ir/request; "???" is JIT code): ${objs.map(([o, n]) => `${o} ${(n / requests).toFixed(0)}`).join(', ')}`)
  for (const [n, f] of fns.sort((a, b) => b[0] - a[0]).slice(0, top)) log(`  ${(n / requests).toFixed(0).padStart(7)}  ${f}`)
}

async function main(): Promise<void> {
  for (const e of engines) await profile(e)
}

main().catch((e: unknown) => {
  process.stderr.write(`${(e as Error)?.stack ?? String(e)}\n`)
  process.exit(1)
})
