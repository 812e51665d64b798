// Terminating worker_threads workers in the middle of ringline I/O must
// neither crash nor hang the process, nor disturb node:fs in other threads
// (the shape of Node's test-worker-fshandles-open-close-on-termination.js).
// Each test is one child process (fixtures/worker-termination.ts) that runs
// many rounds, so a race seen once in ten rounds is caught in one run; it
// must exit 0 and print its summary. A libuv abort shows up as a signal, a
// hang as the child's watchdog report. Nothing here measures time.
//
// The rounds come from RINGLINE_WT_ROUNDS / RINGLINE_WT_WRITE_ROUNDS when
// set (to hunt a race longer), the seed of the delays from
// RINGLINE_WT_SEED (else a fresh one, printed with the result).

import test, { type ExecutionContext } from 'ava'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { fixtures, makeTmpDir, removeTmpDir, repoRoot, run } from './helpers'
import { realKernelOnly } from './sim-setup'

const dir = makeTmpDir('worker-termination')
test.after.always(() => removeTmpDir(dir))

/** Rounds of 4 open/close workers terminated 5-20 ms into their loops. */
const OPEN_CLOSE_ROUNDS = Number(process.env.RINGLINE_WT_ROUNDS ?? 200)
/** Rounds of a worker terminated with 3,000 writes in flight. */
const WRITE_ROUNDS = Number(process.env.RINGLINE_WT_WRITE_ROUNDS ?? 200)

function seed(): number {
  const s = process.env.RINGLINE_WT_SEED
  return s === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(s)
}

async function child(t: ExecutionContext, mode: 'open-close' | 'writes', rounds: number): Promise<void> {
  const d = fs.mkdtempSync(path.join(dir, `${mode}-`))
  const s = seed()
  const r = await run(process.execPath, ['--import', 'tsx', path.join(fixtures, 'worker-termination.ts'), mode, String(rounds), d, String(s)], {
    cwd: repoRoot,
    // the child's own watchdog ends a hang (60 s without progress); this
    // only stops a child that cannot
    polls: 30000,
  })
  const cut = (x: string): string => (x.length > 12000 ? `${x.slice(0, 6000)}\n...\n${x.slice(-6000)}` : x)
  const what = `${mode}, ${rounds} rounds, seed ${s} (RINGLINE_WT_SEED=${s} repeats the delays): code ${String(r.code)}, signal ${String(r.signal)}, hung ${String(r.hung)}\nstdout: ${cut(r.stdout)}\nstderr: ${cut(r.stderr)}`
  t.false(r.hung, `the child did not end by itself: ${what}`)
  t.is(r.signal, null, `the child was killed (a libuv abort is SIGABRT): ${what}`)
  t.is(r.code, 0, what)
  const line = r.stdout.split('\n').find((l) => l.startsWith('@@summary '))
  t.not(line, undefined, `no summary: ${what}`)
  if (line === undefined) return
  const summary = JSON.parse(line.slice('@@summary '.length)) as { problems: string[]; rounds: number }
  t.deepEqual(summary.problems, [], what)
  t.is(summary.rounds, rounds, 'every round ran')
  t.log(line)
}

realKernelOnly('workers of a child process open files on the real disk, another reads them with node:fs', { serial: true })(`workers opening and closing files in loops, terminated ${OPEN_CLOSE_ROUNDS} times, while another worker reads with node:fs: the process exits 0`, async (t) => {
  await child(t, 'open-close', OPEN_CLOSE_ROUNDS)
})

realKernelOnly('workers of a child process write files on the real disk, checked with node:fs', { serial: true })(`a worker with 3,000 writes in flight, terminated ${WRITE_ROUNDS} times: the process exits 0`, async (t) => {
  await child(t, 'writes', WRITE_ROUNDS)
})
