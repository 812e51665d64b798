// Shared helpers of the ringline test suite (not a spec file itself).

import type { ExecutionContext } from 'ava'
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

export const repoRoot = path.join(__dirname, '..')
export const distIndex = path.join(repoRoot, 'dist', 'index.js')
export const distIndexMjs = path.join(repoRoot, 'dist', 'index.mjs')
export const fixtures = path.join(__dirname, 'fixtures')

/**
 * The engine this run of the suite is on: `npm test` runs every spec with
 * RINGLINE_BACKEND=io_uring, mio and sim (see scripts/test-js.js; on sim,
 * fixtures go through __test__/sim-setup.ts).
 */
export const BACKEND: 'io_uring' | 'mio' | 'sim' = process.env.RINGLINE_BACKEND === 'mio' ? 'mio' : process.env.RINGLINE_BACKEND === 'sim' ? 'sim' : 'io_uring'

/** A fresh temporary directory for one spec file. */
export function makeTmpDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `ringline-${prefix}-`))
}

export function removeTmpDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true })
}

let counter = 0
/** A path in `dir` that no other test uses. */
export function uniquePath(dir: string, name = 'f'): string {
  counter += 1
  return path.join(dir, `${name}-${process.pid}-${counter}`)
}

/** Writes `size` random bytes to a new file and returns them. */
export function randomFile(file: string, size: number): Buffer {
  const data = randomBytes(size)
  fs.writeFileSync(file, data)
  return data
}

/** Creates a FIFO with mkfifo(1). */
export function mkfifo(file: string): void {
  execFileSync('mkfifo', ['-m', '0600', file])
}

/** Properties of an error, narrowed from `unknown`. */
export interface ErrorProps {
  name?: unknown
  message?: unknown
  code?: unknown
  errno?: unknown
  syscall?: unknown
  path?: unknown
}

export function props(e: unknown): ErrorProps {
  return typeof e === 'object' && e !== null ? (e as ErrorProps) : {}
}

/**
 * Asserts that `p` is a Node-style system error: exact class Error, `code`,
 * negative `errno` equal to `errno`, `syscall`, and `path` when given.
 */
export function assertSystemError(
  t: ExecutionContext,
  e: unknown,
  expected: { code: string; errno: number; syscall: string; path?: string },
): void {
  t.true(e instanceof Error, `expected an Error, got ${String(e)}`)
  if (!(e instanceof Error)) return
  t.is(Object.getPrototypeOf(e), Error.prototype, 'system errors are plain Error instances')
  const p = props(e)
  t.is(p.code, expected.code)
  t.is(p.errno, expected.errno)
  t.true(typeof p.errno === 'number' && p.errno < 0, 'errno is negative')
  t.is(p.syscall, expected.syscall)
  if (expected.path !== undefined) {
    t.is(p.path, expected.path)
    t.true(e.message.startsWith(`${expected.code}: `), `message starts with the code: ${e.message}`)
    t.true(e.message.endsWith(`, ${expected.syscall} '${expected.path}'`), `message names syscall and path: ${e.message}`)
  } else {
    t.true(e.message.startsWith(`${expected.code}: `), `message starts with the code: ${e.message}`)
    t.true(e.message.includes(`, ${expected.syscall}`), `message names the syscall: ${e.message}`)
  }
}

/** Awaits `p` and returns what it rejected with; fails the test if it resolved. */
export async function rejection(t: ExecutionContext, p: Promise<unknown>): Promise<unknown> {
  try {
    const v = await p
    t.fail(`expected a rejection, got ${String(v)}`)
    return undefined
  } catch (e) {
    return e
  }
}

/** Yields to the event loop once (lets completions in). */
export function tick(ms = 0): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/**
 * Polls `cond` until it is true, at most `polls` times with `ms` between
 * polls. Returns whether it became true. Bounded by count, not by a clock.
 */
export async function waitFor(cond: () => boolean, polls = 500, ms = 5): Promise<boolean> {
  for (let i = 0; i < polls; i++) {
    if (cond()) return true
    await tick(ms)
  }
  return cond()
}

export function gc(): void {
  if (typeof global.gc !== 'function') throw new Error('run with --expose-gc')
  global.gc()
}

export interface ChildResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

export interface Started {
  child: ChildProcess
  /** Resolves when the child has exited and its output is closed. */
  done: Promise<ChildResult>
}

/**
 * Starts `file` with `args`; `onStdout` sees all stdout so far each time
 * more arrives (for handshakes).
 */
export function start(
  file: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; onStdout?: (all: string) => void } = {},
): Started {
  const child = spawn(file, args, { cwd: options.cwd ?? repoRoot, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] })
  const done = new Promise<ChildResult>((resolve, reject) => {
    let stdout = ''
    let stderr = ''
    child.stdout?.setEncoding('utf8')
    child.stderr?.setEncoding('utf8')
    child.stdout?.on('data', (d: string) => {
      stdout += d
      options.onStdout?.(stdout)
    })
    child.stderr?.on('data', (d: string) => {
      stderr += d
    })
    child.on('error', reject)
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }))
  })
  return { child, done }
}

/**
 * Runs a child to its end, waiting a bounded number of polls (10 ms apart);
 * a child still running after that is killed and reported with
 * `signal: 'SIGKILL'` and `hung: true`.
 */
export async function run(
  file: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; onStdout?: (all: string) => void; polls?: number } = {},
): Promise<ChildResult & { hung: boolean }> {
  const s = start(file, args, options)
  const o = await outcome(s.done, options.polls ?? 3000, 10)
  if (o.settled) {
    if (o.value === undefined) throw o.error
    return { ...o.value, hung: false }
  }
  s.child.kill('SIGKILL')
  const r = await s.done
  return { ...r, hung: true }
}

/** Whether an executable is on PATH. */
export function which(cmd: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir === '') continue
    const p = path.join(dir, cmd)
    try {
      fs.accessSync(p, fs.constants.X_OK)
      return p
    } catch {
      // not here
    }
  }
  return null
}

/** Asserts two byte ranges are equal; on failure names the first differing index instead of dumping both. */
export function sameBytes(t: ExecutionContext, actual: ArrayBufferView, expected: ArrayBufferView, what = 'bytes'): boolean {
  const a = Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength)
  const b = Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength)
  if (a.equals(b)) return t.pass()
  let i = 0
  while (i < a.length && i < b.length && a[i] === b[i]) i++
  return t.fail(`${what}: lengths ${a.length} vs ${b.length}, first difference at index ${i} (${a[i]} vs ${b[i]})`)
}

export interface Outcome<T> {
  /** Whether the promise settled within the polls. */
  settled: boolean
  resolved: boolean
  value?: T
  error?: unknown
}

/**
 * Waits for `p` for at most `polls` event-loop polls (`ms` apart) and says
 * how it settled, or that it did not: a bounded wait-for-condition, so a
 * promise that never settles fails its test instead of hanging the file.
 */
export async function outcome<T>(p: Promise<T>, polls = 600, ms = 5): Promise<Outcome<T>> {
  const o: Outcome<T> = { settled: false, resolved: false }
  p.then(
    (v) => {
      o.settled = true
      o.resolved = true
      o.value = v
    },
    (e: unknown) => {
      o.settled = true
      o.error = e
    },
  )
  await waitFor(() => o.settled, polls, ms)
  return o
}

/** The ArrayBuffer behind a view (never a SharedArrayBuffer here). */
export function arrayBufferOf(view: ArrayBufferView): ArrayBuffer {
  const ab = view.buffer
  if (!(ab instanceof ArrayBuffer)) throw new TypeError('expected an ArrayBuffer')
  return ab
}

async function closeIfClosable(v: unknown): Promise<void> {
  if (v !== null && typeof v === 'object' && 'close' in v && typeof v.close === 'function') await (v as { close(): Promise<void> }).close()
}

/**
 * Calls one bad-input case the way a caller would and returns the error it
 * gave: `'async'` cases must return a rejected promise (a synchronous throw
 * is reported, as node:fs/promises never does it), `'sync'` cases must
 * throw. Anything else is reported through `bad` (and a handle it opened
 * anyway is closed), and `undefined` is returned.
 */
/**
 * Runs every case of a bad-input table through `errorOf` and, for the error
 * it raised, `check`; returns every deviation of every case ("name: what"),
 * so that one run shows them all.
 */
export async function problemsOf<C extends { name: string; mode: 'async' | 'sync'; call: () => unknown }>(
  cases: C[],
  check: (c: C, err: Error, bad: (what: string) => void) => void,
): Promise<string[]> {
  const problems: string[] = []
  for (const c of cases) {
    const bad = (what: string): void => {
      problems.push(`${c.name}: ${what}`)
    }
    const err = await errorOf(c.call, c.mode, bad)
    if (err !== undefined) check(c, err, bad)
  }
  return problems
}

export async function errorOf(call: () => unknown, mode: 'async' | 'sync', bad: (what: string) => void): Promise<Error | undefined> {
  let returned: unknown
  let thrown: unknown
  let threw = false
  try {
    returned = call()
  } catch (e) {
    threw = true
    thrown = e
  }
  let err: unknown
  if (mode === 'async') {
    if (threw) {
      bad(`threw synchronously (${String(thrown)}) instead of returning a rejected promise`)
      err = thrown
    } else if (!(returned instanceof Promise)) {
      bad('did not return a promise')
      return undefined
    } else {
      try {
        const v: unknown = await returned
        bad(`resolved with ${String(v)}`)
        await closeIfClosable(v)
        return undefined
      } catch (e) {
        err = e
      }
    }
  } else {
    if (!threw) {
      bad(`did not throw (returned ${String(returned)})`)
      await closeIfClosable(returned)
      return undefined
    }
    err = thrown
  }
  if (!(err instanceof Error)) {
    bad(`not an Error: ${String(err)}`)
    return undefined
  }
  return err
}
