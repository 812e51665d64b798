// Group commit of synced appends (driver/group_commit.rs): appends to one
// handle in flight together share fsyncs, land in call order, and none
// resolves before its bytes are durable, which the sim engine checks on
// every crash state of a run.

import test from 'ava'
import * as path from 'node:path'
import { Ring } from '../index'
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
      const root = await r.open('/', 'r')
      const fh = await r.open('/log', 'a')
      await root.sync()
      await root.close()
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
