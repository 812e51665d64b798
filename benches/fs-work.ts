// The workloads of benches/fs.ts, shared by the benchmark process (node) and
// by fs-bun-worker.ts, which runs them in a child process under Bun (or, as a
// control, under node): one definition, so every runtime does the same calls
// on the same paths. Nothing here may import ringline (Bun runs this file).
//
// A workload is a pass of `count` calls, `concurrency` in flight (promise
// and callback engines) or one at a time (sync). What a pass needs on disk
// (directories, source files of the churn) is made by setupPass, outside the
// timed part; the timer covers the calls alone. Passes repeat until the
// measured time reaches the duration (at most maxPasses); warm-up passes come
// first. Pass k of a "fresh" workload works in <dir>/p<k>, so no pass meets
// another's files: nothing is deleted until the benchmark's end.

import { spawnSync } from 'node:child_process'
import * as fs from 'node:fs'
import * as fsp from 'node:fs/promises'
import * as path from 'node:path'
import { hrtime } from 'node:process'
import { Latency, type Measurement } from './harness'

export type Call = 'readFile' | 'writeFile' | 'stat' | 'readdir' | 'churn'

/** One measurement's workload, serialisable (it goes to the Bun child as JSON). */
export interface WorkJob {
  call: Call
  /**
   * readFile, stat, writeFile overwrite: the directory holding f0 .. f<count-1>;
   * readdir: the directory listed; writeFile new and churn: a base directory
   * of this engine's own, pass k in <dir>/p<k>.
   */
  dir: string
  /** Calls per pass (churn: cycles per pass). */
  count: number
  /** writeFile: new files (fresh names each pass) rather than overwrites. */
  fresh: boolean
  /** readFile: the size every file must have; writeFile: bytes written. */
  size: number
  /** readdir: the entries the directory must list. */
  entries: number
  concurrency: number
  /**
   * Run sync(1) before each pass (outside the timed part), so that every pass
   * of a write workload starts with no dirty data, whatever ran before it.
   */
  flush: boolean
  plan: Plan
}

export interface Plan {
  /** Warm-up passes run until this much time went by (at least one pass; 0: none). */
  warmupMs: number
  /** Measured passes run until their timed parts add up to this... */
  durationMs: number
  /** ...or until this many measured passes. */
  maxPasses: number
}

/** A node:fs/promises-shaped implementation; a workload needs only some of the functions. */
export interface FsImpl {
  readFile?: (path: string) => Promise<ArrayBufferView>
  writeFile?: (path: string, data: Uint8Array) => Promise<unknown>
  stat?: (path: string) => Promise<unknown>
  readdir?: (path: string) => Promise<unknown[]>
  mkdir?: (path: string) => Promise<unknown>
  rename?: (from: string, to: string) => Promise<unknown>
  unlink?: (path: string) => Promise<unknown>
}

/** The functions a call needs. */
export const NEEDS: Record<Call, (keyof FsImpl)[]> = {
  readFile: ['readFile'],
  writeFile: ['writeFile'],
  stat: ['stat'],
  readdir: ['readdir'],
  churn: ['mkdir', 'rename', 'unlink'],
}

export const canRun = (impl: FsImpl, call: Call): boolean => NEEDS[call].every((k) => typeof impl[k] === 'function')

/** This runtime's node:fs/promises (node's in node, Bun's in Bun). */
export function runtimePromises(): FsImpl {
  return {
    readFile: (p) => fsp.readFile(p),
    writeFile: (p, d) => fsp.writeFile(p, d),
    stat: (p) => fsp.stat(p),
    readdir: (p) => fsp.readdir(p),
    mkdir: (p) => fsp.mkdir(p),
    rename: (a, b) => fsp.rename(a, b),
    unlink: (p) => fsp.unlink(p),
  }
}

/** How an engine issues the calls. */
export type Engine = { kind: 'promise'; impl: FsImpl } | { kind: 'callback' } | { kind: 'sync' }

interface PassInput {
  /** The path of each call (churn: the source file of each cycle). */
  paths: string[]
  /** churn: the directory each cycle makes, and where its file goes. */
  dirs?: string[]
  targets?: string[]
}

const passDir = (job: WorkJob, k: number): string => path.join(job.dir, `p${k}`)

function passInput(job: WorkJob, k: number): PassInput {
  const n = job.count
  if (job.call === 'readdir') return { paths: new Array<string>(n).fill(job.dir) }
  if (job.call === 'churn') {
    const d = passDir(job, k)
    const paths: string[] = []
    const dirs: string[] = []
    const targets: string[] = []
    for (let i = 0; i < n; i++) {
      paths.push(path.join(d, `s${i}`))
      dirs.push(path.join(d, `d${i}`))
      targets.push(path.join(d, `d${i}`, 'x'))
    }
    return { paths, dirs, targets }
  }
  const d = job.call === 'writeFile' && job.fresh ? passDir(job, k) : job.dir
  const paths: string[] = []
  for (let i = 0; i < n; i++) paths.push(path.join(d, `f${i}`))
  return { paths }
}

/** What pass k needs on disk, made with sync calls before its timer starts. */
function setupPass(job: WorkJob, k: number, input: PassInput): void {
  if (job.call === 'writeFile' && job.fresh) fs.mkdirSync(passDir(job, k), { recursive: true })
  if (job.call === 'churn') {
    fs.mkdirSync(passDir(job, k), { recursive: true })
    for (const p of input.paths) fs.closeSync(fs.openSync(p, 'w'))
  }
  if (job.flush) spawnSync('sync', { stdio: 'ignore' })
}

/** Tells a bad result (a short read, a short listing) from a good one. */
function checker(job: WorkJob): (r: unknown) => void {
  if (job.call === 'readFile') {
    return (r) => {
      const n = (r as ArrayBufferView).byteLength
      if (n !== job.size) throw new Error(`readFile returned ${n} bytes, the file has ${job.size}`)
    }
  }
  if (job.call === 'readdir') {
    return (r) => {
      const n = (r as unknown[]).length
      if (n !== job.entries) throw new Error(`readdir listed ${n} entries, the directory has ${job.entries}`)
    }
  }
  return () => undefined
}

/** One op in SAMPLE_EVERY is timed (hrtime around it); a power of two. */
const SAMPLE_EVERY = 8
const SAMPLE_MASK = SAMPLE_EVERY - 1

function promisePass(job: WorkJob, impl: FsImpl, input: PassInput, data: Uint8Array, lat: Latency): Promise<void> {
  const check = checker(job)
  const { paths, dirs, targets } = input
  let op: (i: number) => Promise<unknown>
  switch (job.call) {
    case 'readFile': {
      const f = impl.readFile!
      op = (i) => f(paths[i]).then(check)
      break
    }
    case 'writeFile': {
      const f = impl.writeFile!
      op = (i) => f(paths[i], data)
      break
    }
    case 'stat': {
      const f = impl.stat!
      op = (i) => f(paths[i])
      break
    }
    case 'readdir': {
      const f = impl.readdir!
      op = (i) => f(paths[i]).then(check)
      break
    }
    case 'churn': {
      const { mkdir, rename, unlink } = impl as Required<FsImpl>
      op = async (i) => {
        await mkdir(dirs![i])
        await rename(paths[i], targets![i])
        await unlink(targets![i])
      }
      break
    }
  }
  let next = 0
  const n = paths.length
  const worker = async (): Promise<void> => {
    for (;;) {
      const i = next++
      if (i >= n) return
      if ((i & SAMPLE_MASK) === 0) {
        const t0 = hrtime.bigint()
        await op(i)
        lat.add(Number(hrtime.bigint() - t0))
      } else {
        await op(i)
      }
    }
  }
  const workers: Promise<void>[] = []
  for (let w = 0; w < Math.min(job.concurrency, n); w++) workers.push(worker())
  return Promise.all(workers).then(() => undefined)
}

type Done = (err: Error | null, r?: unknown) => void

function callbackPass(job: WorkJob, input: PassInput, data: Uint8Array, lat: Latency): Promise<void> {
  const check = checker(job)
  const { paths, dirs, targets } = input
  let op: (i: number, done: Done) => void
  switch (job.call) {
    case 'readFile':
      op = (i, done) => fs.readFile(paths[i], done)
      break
    case 'writeFile':
      op = (i, done) => fs.writeFile(paths[i], data, done)
      break
    case 'stat':
      op = (i, done) => fs.stat(paths[i], done)
      break
    case 'readdir':
      op = (i, done) => fs.readdir(paths[i], done)
      break
    case 'churn':
      op = (i, done) =>
        fs.mkdir(dirs![i], (e1) => {
          if (e1) return done(e1)
          fs.rename(paths[i], targets![i], (e2) => {
            if (e2) return done(e2)
            fs.unlink(targets![i], (e3) => done(e3))
          })
        })
      break
  }
  const n = paths.length
  return new Promise<void>((resolve, reject) => {
    let next = 0
    let live = Math.min(job.concurrency, n)
    let failed = false
    if (live === 0) resolve()
    const chain = (): void => {
      if (failed) return
      const i = next++
      if (i >= n) {
        if (--live === 0) resolve()
        return
      }
      const t0 = (i & SAMPLE_MASK) === 0 ? hrtime.bigint() : 0n
      op(i, (err, r) => {
        try {
          if (err) throw err
          check(r)
        } catch (e) {
          failed = true
          reject(e)
          return
        }
        if (t0 !== 0n) lat.add(Number(hrtime.bigint() - t0))
        chain()
      })
    }
    for (let w = 0; w < live; w++) chain()
  })
}

function syncPass(job: WorkJob, input: PassInput, data: Uint8Array, lat: Latency): void {
  const check = checker(job)
  const { paths, dirs, targets } = input
  let op: (i: number) => void
  switch (job.call) {
    case 'readFile':
      op = (i) => check(fs.readFileSync(paths[i]))
      break
    case 'writeFile':
      op = (i) => fs.writeFileSync(paths[i], data)
      break
    case 'stat':
      op = (i) => fs.statSync(paths[i])
      break
    case 'readdir':
      op = (i) => check(fs.readdirSync(paths[i]))
      break
    case 'churn':
      op = (i) => {
        fs.mkdirSync(dirs![i])
        fs.renameSync(paths[i], targets![i])
        fs.unlinkSync(targets![i])
      }
      break
  }
  const n = paths.length
  for (let i = 0; i < n; i++) {
    if ((i & SAMPLE_MASK) === 0) {
      const t0 = hrtime.bigint()
      op(i)
      lat.add(Number(hrtime.bigint() - t0))
    } else {
      op(i)
    }
  }
}

async function runPass(job: WorkJob, engine: Engine, input: PassInput, data: Uint8Array, lat: Latency): Promise<void> {
  if (engine.kind === 'promise') return promisePass(job, engine.impl, input, data, lat)
  if (engine.kind === 'callback') return callbackPass(job, input, data, lat)
  syncPass(job, input, data, lat)
}

/**
 * Runs `job` on `engine`: warm-up passes, then measured passes. ops/s is
 * the calls of the measured passes over the sum of their timed parts.
 */
export async function measureJob(job: WorkJob, engine: Engine): Promise<Measurement> {
  const data = Buffer.alloc(job.call === 'writeFile' ? job.size : 0, 0x61)
  const lat = new Latency(20)
  const plan = job.plan
  let k = 0
  const pass = async (): Promise<number> => {
    const input = passInput(job, k)
    setupPass(job, k, input)
    k++
    const t0 = hrtime.bigint()
    await runPass(job, engine, input, data, lat)
    return Number(hrtime.bigint() - t0) / 1e9
  }
  if (plan.warmupMs > 0) {
    const end = performance.now() + plan.warmupMs
    do await pass()
    while (performance.now() < end)
  }
  lat.reset()
  const passSeconds: number[] = []
  let seconds = 0
  do {
    const s = await pass()
    passSeconds.push(s)
    seconds += s
  } while (seconds * 1000 < plan.durationMs && passSeconds.length < plan.maxPasses)
  const ops = passSeconds.length * job.count
  const s = lat.summary()
  return {
    opsPerSec: ops / seconds,
    ops,
    seconds,
    p50Us: s.p50,
    p99Us: s.p99,
    p999Us: s.p999,
    meanUs: s.mean,
    samples: s.samples,
    latency: `hrtime, 1 op in ${SAMPLE_EVERY}${job.call === 'churn' ? ' (a whole mkdir+rename+unlink cycle)' : ''}`,
    info: {
      passes: passSeconds.length,
      warmupPasses: k - passSeconds.length,
      passRates: passSeconds.map((x) => Math.round(job.count / x)),
    },
  }
}
