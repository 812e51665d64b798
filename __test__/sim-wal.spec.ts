// examples/wal.ts on the sim engine under seeded power loss: every record
// the log acknowledged survives every crash, on every seed; the two broken
// variants (acknowledging before the fdatasync; creating the log without
// fsyncing its directory) lose acknowledged records, and the failing seed
// replays the failure.

import test from 'ava'
import { Ring, type CrashMode } from '../index'
import { appendRecords, openLog, recover, type AppendOptions, type LogOptions } from '../examples/wal'

const RECORDS = 100

interface Run {
  seed: number
  acked: number
  recovered: number
  lost: bigint[]
}

/**
 * One seeded run: opens a log under /db, appends RECORDS records and
 * crashes (`mode`) once `crashAfter` were acknowledged, then recovers on
 * the same ring and lists the acknowledged seqs that did not survive.
 */
async function crashRun(seed: number, mode: CrashMode, crashAfter: number, log: LogOptions = {}, append: AppendOptions = {}): Promise<Run> {
  const ring = new Ring({ backend: 'sim', seed })
  try {
    await ring.fs.mkdir('/db')
    const root = await ring.open('/', 'r')
    await root.sync()
    await root.close()
    const fh = await openLog(ring, '/db/wal', log)
    const acked: bigint[] = []
    let ackedAtCrash: bigint[] | undefined
    // The power goes out right as the crashAfter-th record is acknowledged:
    // what the log had been told was durable by then must survive.
    const work = appendRecords(fh, RECORDS, 0n, (seq) => {
      acked.push(seq)
      if (acked.length === crashAfter) {
        ackedAtCrash = [...acked]
        void ring.sim!.crash({ mode })
      }
    }, append).catch(() => undefined) // after the crash, its handle is stale
    await work
    if (ackedAtCrash === undefined) throw new Error('no crash')
    const after = await openLog(ring, '/db/wal')
    const { seqs } = await recover(after, true)
    await after.close()
    const have = new Set(seqs)
    return { seed, acked: ackedAtCrash.length, recovered: seqs.length, lost: ackedAtCrash.filter((s) => !have.has(s)) }
  } finally {
    await ring.close()
  }
}

test('the WAL keeps every acknowledged record through 200 seeded crashes (random and pessimistic, at any point)', async (t) => {
  let acked = 0
  for (let seed = 1; seed <= 200; seed++) {
    const mode: CrashMode = seed % 2 ? 'random' : 'pessimistic'
    const r = await crashRun(seed, mode, 1 + (seed * 37) % RECORDS)
    t.deepEqual(r.lost, [], `seed ${seed} (${mode}): acknowledged records lost`)
    t.true(r.recovered >= r.acked, `seed ${seed}`)
    acked += r.acked
  }
  t.log(`200 crash states, ${acked} acknowledged records checked`)
})

for (const [name, log, append] of [
  ['acknowledges a record before its fdatasync', {}, { ackBeforeSync: true }],
  ['creates the log without fsyncing its directory', { skipDirSync: true }, {}],
] as const) {
  test(`a broken WAL that ${name} loses acknowledged records, and its seed replays it`, async (t) => {
    let failing: Run | undefined
    for (let seed = 1; seed <= 200 && failing === undefined; seed++) {
      const r = await crashRun(seed, 'pessimistic', 1 + (seed * 37) % RECORDS, log, append)
      if (r.lost.length > 0) failing = r
    }
    t.truthy(failing, 'some seed loses an acknowledged record')
    if (failing === undefined) return
    t.log(`seed ${failing.seed}: ${failing.lost.length} of ${failing.acked} acknowledged records lost`)
    const again = await crashRun(failing.seed, 'pessimistic', 1 + (failing.seed * 37) % RECORDS, log, append)
    t.deepEqual(again, failing, 'the same seed, the same loss')
  })
}

/**
 * explore() over the WAL with 100 appends: the run recorded once, every
 * distinct crash state checked: what was acknowledged before the state's
 * point is there after recovery.
 */
async function exploreWal(log: LogOptions, append: AppendOptions) {
  const ring = new Ring({ backend: 'sim', seed: 1 })
  const acked: Array<[bigint, number]> = []
  const report = await ring.sim!.explore({
    workload: async (ring) => {
      await ring.fs.mkdir('/db')
      const root = await ring.open('/', 'r')
      await root.sync()
      await root.close()
      const fh = await openLog(ring, '/db/wal', log)
      await appendRecords(fh, RECORDS, 0n, (seq) => acked.push([seq, ring.sim!.point()]), append)
      await fh.close()
    },
    check: async (ring, state) => {
      // A crash before the workload made /db leaves nothing to recover.
      await ring.fs.mkdir('/db', { recursive: true })
      const fh = await openLog(ring, '/db/wal')
      const { seqs } = await recover(fh, true)
      await fh.close()
      const have = new Set(seqs)
      const lost = acked.filter(([seq, at]) => at <= state.point && !have.has(seq))
      if (lost.length > 0) throw new Error(`${lost.length} acknowledged records lost (first: seq ${lost[0][0]})`)
    },
    torn: 'sector',
  })
  return { ring, report }
}

test('explore(): every crash state of 100 WAL appends keeps what was acknowledged', async (t) => {
  const t0 = performance.now()
  const { ring, report } = await exploreWal({}, {})
  t.log(`${report.states} crash states in ${(performance.now() - t0).toFixed(0)} ms${report.truncated ? ' (limit reached)' : ''}`)
  t.true(report.states > 100)
  t.false(report.truncated)
  t.deepEqual(report.failures, [])
  await ring.close()
})

for (const [name, log, append] of [
  ['acknowledges a record before its fdatasync', {}, { ackBeforeSync: true }],
  ['creates the log without fsyncing its directory', { skipDirSync: true }, {}],
] as const) {
  test(`explore(): a WAL that ${name} fails on a crash state that replay() rebuilds`, async (t) => {
    const { ring, report } = await exploreWal(log, append)
    t.true(report.failures.length > 0)
    const first = report.failures[0]
    t.log(`${report.failures.length} of ${report.states} states fail; first: state ${first.state.index} at point ${first.state.point}: ${(first.error as Error).message}`)
    await ring.sim!.replay(first.state)
    await ring.fs.mkdir('/db', { recursive: true })
    const fh = await openLog(ring, '/db/wal')
    const { records } = await recover(fh, true)
    await fh.close()
    t.true(records < RECORDS, 'the replayed state lacks records')
    await t.throwsAsync(ring.sim!.replay(1e9), { code: 'ERR_INVALID_ARG_VALUE' })
    await ring.close()
  })
}
