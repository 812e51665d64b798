// Runs the file-API fuzzer (__test__/fuzz.ts) over many seeds and prints
// every failing seed with its problems.
//
//   node --import tsx scripts/fuzz.ts --seeds 1000 --start 1
//   node --import tsx scripts/fuzz.ts --seed 42 --verbose     # one seed, a line per batch
//
// Options: --seeds N (default 100), --start S (default 1), --seed S (just
// that one), --batches B (per seed, default 40), --stop (stop at the first
// failing seed; by default every seed runs), --verbose (a line per batch),
// --trace (also a line per op and how it ended), --without
// abort,close,append,truncate,open-w (leave features out, to narrow a
// failure down). The engine and completion mode come from RINGLINE_BACKEND
// and RINGLINE_COMPLETION, as for every Ring.
//
// Exit code 0 when every seed passed; 1 when one failed, or when the event
// loop emptied with a seed unfinished (an op that will never settle); 2 for
// a bad flag. A seed that makes no progress for 60 s (a hang) gets the
// watchdog: it prints the seed and the ops still pending and kills the
// process (SIGKILL). The last line is a summary.

import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { runSeed } from '../__test__/fuzz'

interface Args {
  seeds: number
  start: number
  batches: number | undefined
  stop: boolean
  verbose: boolean
  trace: boolean
  without: string[]
}

function usage(): string {
  return 'usage: node --import tsx scripts/fuzz.ts [--seeds N] [--start S] [--seed S] [--batches B] [--stop] [--verbose] [--trace] [--without abort,close,append,truncate,open-w]'
}

function parse(argv: string[]): Args {
  const a: Args = { seeds: 100, start: 1, batches: undefined, stop: false, verbose: false, trace: false, without: [] }
  const num = (i: number, flag: string): number => {
    const v = Number(argv[i])
    if (argv[i] === undefined || !Number.isSafeInteger(v) || v < 0) {
      process.stderr.write(`${flag} needs a non-negative integer\n${usage()}\n`)
      process.exit(2)
    }
    return v
  }
  for (let i = 0; i < argv.length; i++) {
    const f = argv[i]
    if (f === '--seeds') a.seeds = num(++i, f)
    else if (f === '--start') a.start = num(++i, f)
    else if (f === '--seed') {
      a.start = num(++i, f)
      a.seeds = 1
    } else if (f === '--batches') a.batches = num(++i, f)
    else if (f === '--stop') a.stop = true
    else if (f === '--verbose') a.verbose = true
    else if (f === '--without') {
      const v = argv[++i]
      if (v === undefined) {
        process.stderr.write(`--without needs a list\n${usage()}\n`)
        process.exit(2)
      }
      a.without = v.split(',').filter((x) => x !== '')
    } else if (f === '--trace') {
      a.trace = true
      a.verbose = true
    }
    else if (f === '--help' || f === '-h') {
      process.stdout.write(`${usage()}\n`)
      process.exit(0)
    } else {
      process.stderr.write(`unknown flag ${f}\n${usage()}\n`)
      process.exit(2)
    }
  }
  return a
}

let finished = false
process.exitCode = 1

async function main(): Promise<void> {
  const args = parse(process.argv.slice(2))
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ringline-fuzz-'))
  let current = 'starting'
  let describePending: () => string = () => ''
  const watchdog = setTimeout(() => {
    process.stderr.write(`watchdog: no progress for 60 s in ${current}\n${describePending()}\n`)
    fs.rmSync(root, { recursive: true, force: true })
    // Not process.exit(): the cleanup at exit may wait for the stuck ops.
    process.kill(process.pid, 'SIGKILL')
  }, 60_000)
  // Unreferenced: it ends a run kept alive by a stuck op, and never keeps
  // a finished one alive.
  watchdog.unref()
  process.on('beforeExit', () => {
    if (finished) return
    finished = true
    process.stderr.write(`the event loop emptied in ${current}: an op never settled\n${describePending()}\n`)
    fs.rmSync(root, { recursive: true, force: true })
    process.exit(1)
  })
  const failed: number[] = []
  let ops = 0
  const env = `RINGLINE_BACKEND=${process.env.RINGLINE_BACKEND ?? 'auto'} RINGLINE_COMPLETION=${process.env.RINGLINE_COMPLETION ?? 'thread'}`
  for (let seed = args.start; seed < args.start + args.seeds; seed++) {
    current = `seed ${seed}`
    watchdog.refresh()
    const dir = path.join(root, `seed-${seed}`)
    const r = await runSeed(seed, {
      dir,
      batches: args.batches,
      without: args.without,
      log: (line) => {
        watchdog.refresh()
        if (args.verbose) process.stdout.write(`${line}\n`)
      },
      trace: args.trace ? (line) => process.stdout.write(`${line}\n`) : undefined,
      onPending: (d) => {
        describePending = d
      },
    })
    ops += r.ops
    fs.rmSync(dir, { recursive: true, force: true })
    if (r.problems.length > 0) {
      failed.push(seed)
      process.stdout.write(`FAIL seed ${seed} (${env}; repeat: node --import tsx scripts/fuzz.ts --seed ${seed}): ${r.problems.length} problem(s)\n`)
      for (const p of r.problems.slice(0, 20)) process.stdout.write(`  ${p}\n`)
      if (r.problems.length > 20) process.stdout.write(`  ... and ${r.problems.length - 20} more\n`)
      if (args.stop) break
    } else if (args.verbose) {
      process.stdout.write(`ok seed ${seed}: ${r.ops} ops ${JSON.stringify(r.outcomes)}\n`)
    }
  }
  finished = true
  clearTimeout(watchdog)
  fs.rmSync(root, { recursive: true, force: true })
  process.stdout.write(`fuzz: ${args.seeds} seeds from ${args.start}, ${ops} ops, ${failed.length} failed${failed.length > 0 ? ` (seeds ${failed.join(', ')})` : ''}\n`)
  process.exitCode = failed.length === 0 ? 0 : 1
}

main().catch((e: unknown) => {
  finished = true
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`)
  process.exit(1)
})
