// Running a test scenario in a child process (not a spec file itself).
//
// Scenarios that can hang, crash, leak descriptors or grow the heap on a
// broken build run in a fresh `node --import tsx` child: the child runner
// (fixtures/scenario.ts) loads a scenario module, runs one named scenario,
// prints its summary as one JSON line and exits 0. A watchdog in the child
// only ends a run that hangs (it prints every op still pending and exits
// 1); nothing here measures speed.
//
// Scenario side: `Tracker` counts how every op settles and names those
// still pending; `fdCount()` counts this process's descriptors.

import type { ExecutionContext } from 'ava'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { fixtures, props, repoRoot, run, type ChildResult } from './helpers'

/** What a scenario returns: every deviation it found, plus whatever it reports. */
export interface Summary {
  problems: string[]
  [key: string]: unknown
}

export type Scenario = (arg: string) => Promise<Summary>

/** The runner's marker in front of the summary line. */
export const SUMMARY_MARK = '@@summary '

/** How long the child's watchdog waits before it declares the run hung. */
export const WATCHDOG_MS = 60_000

// ------------------------------------------------------------------ scenario side

/** How one tracked op ended. */
export interface Settled<T> {
  label: string
  resolved: boolean
  value?: T
  error?: unknown
}

const trackers = new Set<Tracker>()

/**
 * Counts the settlements of tracked promises and keeps the labels of those
 * still pending (the child's watchdog prints them).
 */
export class Tracker {
  readonly pending = new Map<number, string>()
  resolved = 0
  rejected = 0
  private next = 0
  private readonly all: Promise<unknown>[] = []

  constructor(readonly name: string) {
    trackers.add(this)
  }

  get settled(): number {
    return this.resolved + this.rejected
  }

  get tracked(): number {
    return this.next
  }

  /** Tracks `p`; the returned promise never rejects and says how `p` ended. */
  track<T>(label: string, p: Promise<T>): Promise<Settled<T>> {
    const id = this.next++
    this.pending.set(id, label)
    const s = p.then(
      (value): Settled<T> => {
        this.pending.delete(id)
        this.resolved++
        return { label, resolved: true, value }
      },
      (error: unknown): Settled<T> => {
        this.pending.delete(id)
        this.rejected++
        return { label, resolved: false, error }
      },
    )
    this.all.push(s)
    return s
  }

  /** Waits for every op tracked so far. */
  async settleAll(): Promise<void> {
    await Promise.all(this.all)
  }

  describePending(max = 20): string {
    const labels = [...this.pending.values()]
    const shown = labels.slice(0, max).join(', ')
    return `${this.name}: ${labels.length} of ${this.tracked} pending${labels.length > 0 ? ` (${shown}${labels.length > max ? ', ...' : ''})` : ''}`
  }

  /** Stops reporting this tracker's pending ops. */
  dispose(): void {
    trackers.delete(this)
  }
}

/** Every live tracker's pending ops, for the watchdog. */
export function pendingReport(): string {
  return [...trackers].map((t) => t.describePending()).join('\n') || 'no tracker'
}

/** Descriptors open in this process. */
export function fdCount(): number {
  return fs.readdirSync('/proc/self/fd').length
}

/** `code` of an error, or what it was if it has none. */
export function codeOf(e: unknown): string {
  const p = props(e)
  if (typeof p.code === 'string') return p.code
  if (e instanceof Error) return `${e.name} without code: ${e.message}`
  return `not an Error: ${String(e)}`
}

/** A tally like `{ ECANCELED: 3, ok: 5 }` of how ops ended. */
export function tally(results: Settled<unknown>[]): Record<string, number> {
  const out: Record<string, number> = {}
  for (const r of results) {
    const k = r.resolved ? 'resolved' : codeOf(r.error)
    out[k] = (out[k] ?? 0) + 1
  }
  return out
}

// ------------------------------------------------------------------ spec side

/**
 * Children of one spec file run two at a time (ava starts a file's tests
 * together; the machine may have two cores): a child's watchdog is for
 * hangs, and a crowd of children must not make a healthy run look hung.
 */
const CHILDREN_AT_ONCE = 2
let running = 0
const waiting: (() => void)[] = []

async function slot<T>(f: () => Promise<T>): Promise<T> {
  if (running >= CHILDREN_AT_ONCE) await new Promise<void>((resolve) => waiting.push(resolve))
  else running++
  try {
    return await f()
  } finally {
    const next = waiting.shift()
    if (next !== undefined) next()
    else running--
  }
}

export interface ScenarioRun {
  result: ChildResult & { hung: boolean }
  summary: Summary | undefined
}

function describe(r: ChildResult & { hung: boolean }): string {
  const cut = (s: string): string => (s.length > 4000 ? `${s.slice(0, 2000)}\n...\n${s.slice(-2000)}` : s)
  return `code ${String(r.code)}, signal ${String(r.signal)}, hung ${String(r.hung)}\nstdout: ${cut(r.stdout)}\nstderr: ${cut(r.stderr)}`
}

/**
 * Runs scenario `name` of `module` (a path relative to __test__) in a child
 * and asserts that the child finished by itself with code 0 and printed a
 * summary. Returns the summary (undefined when there is none: the test has
 * already failed then). `prefix` runs the child under another program
 * (e.g. `prlimit --nofile=...`).
 */
export async function scenario(
  t: ExecutionContext,
  module: string,
  name: string,
  arg = '',
  options: { env?: NodeJS.ProcessEnv; prefix?: string[]; nodeArgs?: string[] } = {},
): Promise<Summary | undefined> {
  const runner = path.join(fixtures, 'scenario.ts')
  const nodeArgs = ['--import', 'tsx', ...(options.nodeArgs ?? []), runner, path.join(__dirname, module), name, arg]
  const prefix = options.prefix ?? []
  const [file, ...args] = prefix.length > 0 ? [...prefix, process.execPath, ...nodeArgs] : [process.execPath, ...nodeArgs]
  // Polls well past the child's own watchdog: the child reports a hang
  // itself (with what is pending); this only stops a child that cannot.
  const r = await slot(() => run(file, args, { cwd: repoRoot, env: options.env ?? process.env, polls: Math.ceil((WATCHDOG_MS * 1.5) / 10) }))
  const what = `${name}${arg === '' ? '' : ` ${arg}`}`
  t.false(r.hung, `${what}: the child did not end by itself\n${describe(r)}`)
  t.is(r.signal, null, `${what}: ${describe(r)}`)
  t.is(r.code, 0, `${what}: ${describe(r)}`)
  const line = r.stdout.split('\n').find((l) => l.startsWith(SUMMARY_MARK))
  if (line === undefined) {
    t.fail(`${what}: no summary\n${describe(r)}`)
    return undefined
  }
  const summary = JSON.parse(line.slice(SUMMARY_MARK.length)) as Summary
  t.log(`${what}: ${line.slice(SUMMARY_MARK.length, SUMMARY_MARK.length + 600)}`)
  return summary
}

/** Runs a scenario and asserts it found no problem. */
export async function noProblems(t: ExecutionContext, module: string, name: string, arg = '', options: Parameters<typeof scenario>[4] = {}): Promise<Summary | undefined> {
  const s = await scenario(t, module, name, arg, options)
  if (s !== undefined) t.deepEqual(s.problems, [], `${name} ${arg}: problems`)
  return s
}
