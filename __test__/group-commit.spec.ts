// Group commit of synced appends (driver/group_commit.rs): appends to one
// handle in flight together share fsyncs, land in call order, and none
// resolves before its bytes are durable, which the sim engine checks on
// every crash state of a run.

import test from 'ava'
import * as path from 'node:path'
import { Ring, type FileHandle, type RingOptions } from '../index'
import { disk, testDir } from './sim-setup'

const REC = 64

/** Record `id`: REC bytes, the id in the first four. */
function record(id: number): Buffer {
  const b = Buffer.alloc(REC, id % 251)
  b.writeUInt32LE(id, 0)
  return b
}

function ids(data: Buffer): number[] {
  const out: number[] = []
  for (let at = 0; at + REC <= data.length; at += REC) out.push(data.readUInt32LE(at))
  return out
}

// On sim, each Ring below has a disk of its own: it is read back there.
const dir = testDir('group-commit')

test('32 appenders on one handle: every synced append lands whole, in call order', async (t) => {
  const ring = new Ring()
  t.teardown(() => ring.close())
  const file = path.join(dir, 'log')
  const fh = await ring.open(file, 'a')
  const called: number[] = []
  await Promise.all(
    Array.from({ length: 32 }, async (_, a) => {
      for (let i = 0; i < 20; i++) {
        const id = a * 1000 + i
        called.push(id)
        const r = await fh.append(record(id), { sync: i % 2 === 0 ? 'data' : true })
        t.is(r.bytesWritten, REC)
      }
    }),
  )
  await fh.close()
  t.deepEqual(ids(await disk(ring).readFile(file)), called)
})

test('close() with synced appends in flight waits for them: each resolves durable, none is lost', async (t) => {
  const ring = new Ring()
  t.teardown(() => ring.close())
  const file = path.join(dir, 'log-close')
  const fh = await ring.open(file, 'a')
  const appends = Array.from({ length: 64 }, (_, i) => fh.append(record(i), { sync: 'data' }))
  const closed = fh.close()
  t.deepEqual(
    (await Promise.all(appends)).map((r) => r.bytesWritten),
    appends.map(() => REC),
  )
  await closed
  t.deepEqual(ids(await disk(ring).readFile(file)), Array.from({ length: 64 }, (_, i) => i))
})

test('on sim: fsyncs are shared, and no append resolves before its bytes survive any crash', async (t) => {
  const ring = new Ring({ backend: 'sim', seed: 9 })
  t.teardown(() => ring.close())
  const sim = ring.sim
  if (sim === null) return t.fail('not a sim ring')
  const acked: Array<[number, number]> = []
  const appends = 8 * 6
  const report = await sim.explore({
    workload: async (r) => {
      const fh = await openLog(r)
      await Promise.all(
        Array.from({ length: 8 }, async (_, a) => {
          for (let i = 0; i < 6; i++) {
            const id = a * 100 + i
            await fh.append(record(id), { sync: 'data' })
            acked.push([id, sim.point()])
          }
        }),
      )
      await fh.close()
    },
    check: async (r, state) => {
      const have = new Set(await r.fs.readFile('/log').then(ids, () => []))
      const lost = acked.filter(([id, at]) => at <= state.point && !have.has(id))
      if (lost.length > 0) throw new Error(`${lost.length} acknowledged appends lost at point ${state.point} (first: ${lost[0][0]})`)
    },
    torn: 'sector',
  })
  t.is(acked.length, appends)
  t.true(report.states > appends, `${report.states} crash states`)
  t.deepEqual(report.failures, [])
  // How many fsyncs are shared depends on how long they take next to the
  // writes (the sim's take no time); some are, on this seed.
  const fsyncs = sim.trace().filter((l) => / fsync \/log /.test(l)).length
  t.true(fsyncs < appends, `${fsyncs} fsyncs for ${appends} appends`)
})

/**
 * A Ring made with RINGLINE_SYNC_APPEND set to `how` (how synced appends
 * become durable; read when a Ring is made).
 */
function ringWith(how: string, options: RingOptions): Ring {
  const before = process.env.RINGLINE_SYNC_APPEND
  process.env.RINGLINE_SYNC_APPEND = how
  try {
    return new Ring(options)
  } finally {
    if (before === undefined) delete process.env.RINGLINE_SYNC_APPEND
    else process.env.RINGLINE_SYNC_APPEND = before
  }
}

/** /log opened for appending on `ring`, with its directory entry durable (a crash keeps the file). */
async function openLog(ring: Ring): Promise<FileHandle> {
  const root = await ring.open('/', 'r')
  const fh = await ring.open('/log', 'a')
  await root.sync()
  await root.close()
  return fh
}

/**
 * A sim ring appending with `how`, and its /log (see openLog).
 */
async function simLog(how: string, seed: number): Promise<{ ring: Ring; sim: NonNullable<Ring['sim']>; fh: FileHandle }> {
  const ring = ringWith(how, { backend: 'sim', seed })
  const sim = ring.sim
  if (sim === null) throw new Error('not a sim ring')
  return { ring, sim, fh: await openLog(ring) }
}

test('every way of making appends durable (RINGLINE_SYNC_APPEND) lands them whole, in call order; a bad value is refused', async (t) => {
  for (const how of ['linked', 'dsync', 'group+linked', 'group+dsync']) {
    const ring = ringWith(how, {})
    const file = path.join(dir, `log-${how}`)
    const fh = await ring.open(file, 'a')
    const called: number[] = []
    await Promise.all(
      Array.from({ length: 8 }, async (_, a) => {
        for (let i = 0; i < 5; i++) {
          const id = a * 1000 + i
          called.push(id)
          t.is((await fh.append(record(id), { sync: i % 2 === 0 ? 'data' : true })).bytesWritten, REC)
        }
      }),
    )
    for (let i = 0; i < 3; i++) {
      called.push(9000 + i)
      t.is((await fh.append(record(9000 + i), { sync: 'data' })).bytesWritten, REC)
    }
    await fh.close()
    t.deepEqual(ids(await disk(ring).readFile(file)), called, how)
    await ring.close()
  }
  t.throws(() => ringWith('sometimes', {}), { code: 'ERR_INVALID_ARG_VALUE', message: /RINGLINE_SYNC_APPEND/ })
})

test('on sim, RWF_DSYNC: a lone append is one write, and the power going out as it resolves keeps its bytes', async (t) => {
  for (const [how, seed] of [['dsync', 21], ['group+dsync', 22]] as const) {
    for (const mode of ['pessimistic', 'random'] as const) {
      const { ring, sim, fh } = await simLog(how, seed)
      const from = sim.trace().length
      for (let i = 0; i < 4; i++) t.is((await fh.append(record(i), { sync: i % 2 === 0 ? 'data' : true })).bytesWritten, REC)
      const lines = sim.trace().slice(from)
      t.deepEqual(lines.map((l) => l.split(' ')[1]), ['write', 'write', 'write', 'write'], `${how}: one write per append, no fsync`)
      // Not synced: a crash may lose it (pessimistic: does, leaving a
      // hole of zeros: the synced append after it syncs its own bytes).
      await fh.append(record(50))
      // The power goes out in the append's resolution, before anything else runs.
      await fh.append(record(4), { sync: 'data' }).then(() => sim.crash({ mode }))
      const got = ids(await ring.fs.readFile('/log'))
      t.deepEqual([...got.slice(0, 4), got[5]], [0, 1, 2, 3, 4], `${how} ${mode}: ${got}`)
      t.true(mode === 'pessimistic' ? got[4] === 0 : got[4] === 0 || got[4] === 50, `${how} ${mode}: ${got}`)
      t.is(got.length, 6)
      await ring.close()
    }
  }
})

test('on sim, group commit: a lone append is one durable write while its file has one appender, a linked write and fsync after appends came together', async (t) => {
  const { ring, sim, fh } = await simLog('group+dsync', 23)
  t.teardown(() => ring.close())
  /** What the engine did for `run`, the op of each trace line. */
  const opsOf = async (run: () => Promise<unknown>): Promise<string[]> => {
    const from = sim.trace().length
    await run()
    return sim.trace().slice(from).map((l) => l.split(' ')[1])
  }
  const one = (id: number) => () => fh.append(record(id), { sync: 'data' })
  t.deepEqual(await opsOf(one(0)), ['write'], 'one appender: one durable write')
  t.deepEqual(await opsOf(one(1)), ['write'])
  // Four at once: the first goes alone, the rest come while it syncs.
  const together = await opsOf(() => Promise.all([2, 3, 4, 5].map((id) => one(id)())))
  t.true(together.includes('fsync'), `appends together share an fsync: ${together}`)
  // The file had more than one appender: its next lone append is linked,
  // so appends coming behind it need not wait for its device flush.
  t.deepEqual(await opsOf(one(6)), ['write', 'fsync'], 'after appends came together: write linked to fsync')
  // That one saw nobody come: the next is one durable write again.
  t.deepEqual(await opsOf(one(7)), ['write'], 'one appender again: one durable write')
  await fh.close()
  t.deepEqual(ids(await ring.fs.readFile('/log')), [0, 1, 2, 3, 4, 5, 6, 7])
})

test('on sim, RWF_DSYNC: no append resolves before its bytes survive any crash (alone and with group commit)', async (t) => {
  for (const [how, seed] of [['dsync', 31], ['group+dsync', 32]] as const) {
    const ring = ringWith(how, { backend: 'sim', seed })
    const sim = ring.sim
    if (sim === null) return t.fail('not a sim ring')
    const acked: Array<[number, number]> = []
    const report = await sim.explore({
      workload: async (r) => {
        const fh = await openLog(r)
        await Promise.all(
          Array.from({ length: 4 }, async (_, a) => {
            for (let i = 0; i < 4; i++) {
              // From 1: a hole of zeros reads as id 0.
              const id = 1 + a * 100 + i
              await fh.append(record(id), { sync: 'data' })
              acked.push([id, sim.point()])
            }
          }),
        )
        for (let i = 0; i < 4; i++) {
          await fh.append(record(900 + i), { sync: true })
          acked.push([900 + i, sim.point()])
        }
        await fh.close()
      },
      check: async (r, state) => {
        const have = new Set(await r.fs.readFile('/log').then(ids, () => []))
        const lost = acked.filter(([id, at]) => at <= state.point && !have.has(id))
        if (lost.length > 0) throw new Error(`${lost.length} acknowledged appends lost at point ${state.point} (first: ${lost[0][0]})`)
      },
      torn: 'sector',
    })
    t.is(acked.length, 20, how)
    t.true(report.states > 20, `${how}: ${report.states} crash states`)
    t.deepEqual(report.failures, [], how)
    await ring.close()
  }
})

test('on sim, RWF_DSYNC: a failed write rejects with its error and leaves nothing; a short one is finished, durable', async (t) => {
  const { ring, sim, fh } = await simLog('dsync', 41)
  sim.fault({ op: 'write', path: '/log', error: 'EIO', times: 1 })
  await t.throwsAsync(fh.append(record(1), { sync: 'data' }), { code: 'EIO' })
  sim.fault({ op: 'write', path: '/log', error: 'ENOSPC', times: 1 })
  await t.throwsAsync(fh.append(record(2), { sync: true }), { code: 'ENOSPC' })
  sim.fault({ op: 'write', path: '/log', kind: 'short', times: 1 })
  const from = sim.trace().length
  t.is((await fh.append(record(3), { sync: 'data' })).bytesWritten, REC)
  const lines = sim.trace().slice(from)
  t.is(lines.length, 2, lines.join('\n'))
  t.regex(lines[0], / write \/log -> 32 \[fault Short\]$/)
  t.regex(lines[1], / write \/log -> 32$/)
  await sim.crash({ mode: 'pessimistic' })
  t.deepEqual(ids(await ring.fs.readFile('/log')), [3])
  await ring.close()
})

test('on sim, RWF_DSYNC: a fault on fsync hits the durable write of an append; a crash then loses it', async (t) => {
  const { ring, sim, fh } = await simLog('dsync', 43)
  sim.fault({ op: 'fsync', path: '/log', error: 'EIO', after: 1, times: 1 })
  t.is((await fh.append(record(1), { sync: 'data' })).bytesWritten, REC)
  await t.throwsAsync(fh.append(record(2), { sync: 'data' }), { code: 'EIO' })
  t.true(sim.trace().some((l) => / write \/log -> -5 \[fsync fault Error\(5\)\]$/.test(l)))
  t.deepEqual(ids(await ring.fs.readFile('/log')), [1, 2], 'still readable')
  t.is((await fh.append(record(3), { sync: true })).bytesWritten, REC)
  await sim.crash({ mode: 'pessimistic' })
  t.deepEqual(ids(await ring.fs.readFile('/log')), [1, 0, 3], 'the failed one is a hole')
  await ring.close()
})
