// The sim engine through the public API: ringline/fs functions on an
// in-memory disk, what a crash keeps, the seed, and its option errors.

import test from 'ava'
import * as fs from 'node:fs'
import * as fsp from 'node:fs/promises'
import * as path from 'node:path'
import { Ring } from '../index'
import { makeTmpDir, removeTmpDir } from './helpers'

let root: string
test.before(() => {
  root = makeTmpDir('sim')
})
test.after.always(() => removeTmpDir(root))

/** The same steps on node:fs (under a real directory) and on a sim ring (under "/"); results compared. */
test('a sim ring gives the results and errors node:fs gives on a real disk', async (t) => {
  const ring = new Ring({ backend: 'sim', seed: 1 })
  const steps = (api: typeof fsp, base: string): Array<() => Promise<unknown>> => [
    () => api.mkdir(path.join(base, 'd')),
    () => api.mkdir(path.join(base, 'd')),
    () => api.writeFile(path.join(base, 'd', 'a'), 'hello'),
    () => api.appendFile(path.join(base, 'd', 'a'), ' world'),
    () => api.readFile(path.join(base, 'd', 'a'), 'utf8'),
    () => api.stat(path.join(base, 'd', 'a')).then((s) => [s.size, s.isFile(), s.isDirectory()]),
    () => api.rename(path.join(base, 'd', 'a'), path.join(base, 'd', 'b')),
    () => api.readdir(path.join(base, 'd')),
    () => api.readFile(path.join(base, 'd', 'a')),
    () => api.symlink('b', path.join(base, 'd', 'l')).then(() => api.readFile(path.join(base, 'd', 'l'), 'utf8')),
    () => api.rmdir(path.join(base, 'd')),
    () => api.unlink(path.join(base, 'd', 'l')).then(() => api.unlink(path.join(base, 'd', 'b'))),
    () => api.rmdir(path.join(base, 'd')),
    () => api.stat(path.join(base, 'd')),
  ]
  const outcome = async (f: () => Promise<unknown>): Promise<unknown> => {
    try {
      return { ok: await f() }
    } catch (e) {
      const err = e as NodeJS.ErrnoException
      return { code: err.code, syscall: err.syscall }
    }
  }
  const real = path.join(root, 'diff')
  fs.mkdirSync(real)
  const nodeSteps = steps(fsp, real)
  const simSteps = steps(ring.fs as unknown as typeof fsp, '/')
  for (let i = 0; i < nodeSteps.length; i++) {
    t.deepEqual(await outcome(simSteps[i]), await outcome(nodeSteps[i]), `step ${i}`)
  }
  t.false(fs.existsSync('/d'), 'nothing real was touched')
  await ring.close()
})

test('crash: synced bytes and names whose directory was synced survive; the rest as the mode says; old handles are stale', async (t) => {
  for (const [mode, data, names] of [
    ['pessimistic', 'durable', ['a']],
    ['optimistic', 'XXXXble', ['a', 'b']],
  ] as const) {
    const ring = new Ring({ backend: 'sim', seed: 5 })
    await ring.fs.mkdir('/data')
    const root = await ring.open('/', 'r')
    await root.sync()
    await root.close()
    const fh = await ring.open('/data/a', 'w+')
    await fh.write(Buffer.from('durable'), 0, 7, 0)
    await fh.datasync()
    const dir = await ring.open('/data', 'r')
    await dir.sync()
    await dir.close()
    await fh.write(Buffer.from('XXXX'), 0, 4, 0)
    await ring.fs.writeFile('/data/b', 'a name never synced', { flush: true })
    await ring.sim!.crash({ mode })
    t.is(await ring.fs.readFile('/data/a', 'utf8'), data, mode)
    t.deepEqual((await ring.fs.readdir('/data')).sort(), [...names], mode)
    const e = await t.throwsAsync(fh.read(Buffer.alloc(4), 0, 4, 0))
    t.is((e as NodeJS.ErrnoException).code, 'EBADF', 'a handle from before the crash')
    await fh.close().catch(() => undefined)
    await ring.close()
  }
})

test('the seed: given, from RINGLINE_SIM_SEED, or drawn and told; bad options and other engines', async (t) => {
  const a = new Ring({ backend: 'sim', seed: 123 })
  t.is(a.sim?.seed, 123)
  t.is(a.backend, 'sim')
  await a.close()
  const saved = process.env.RINGLINE_SIM_SEED
  process.env.RINGLINE_SIM_SEED = '77'
  try {
    const b = new Ring({ backend: 'sim' })
    t.is(b.sim?.seed, 77)
    await b.close()
  } finally {
    if (saved === undefined) delete process.env.RINGLINE_SIM_SEED
    else process.env.RINGLINE_SIM_SEED = saved
  }
  if (saved === undefined) {
    const c = new Ring({ backend: 'sim' })
    t.true(Number.isInteger(c.sim?.seed))
    await c.close()
  }
  t.throws(() => new Ring({ backend: 'sim', seed: -1 }), { code: 'ERR_OUT_OF_RANGE' })
  t.throws(() => new Ring({ backend: 'sim', seed: 1.5 }), { code: 'ERR_OUT_OF_RANGE' })
  const d = new Ring({ backend: 'sim', seed: 1 })
  await t.throwsAsync(d.sim!.crash({ mode: 'sometimes' as 'random' }), { code: 'ERR_INVALID_ARG_VALUE' })
  await d.close()
  const real = new Ring({ backend: 'mio' })
  t.is(real.sim, null)
  await real.close()
})

test('faults: an EIO on the second fsync of one path, a lost write, bad rules refused; the trace shows them and follows the seed', async (t) => {
  const run = async (seed: number): Promise<string[]> => {
    const ring = new Ring({ backend: 'sim', seed })
    const sim = ring.sim!
    sim.fault({ op: 'fsync', path: /wal/, error: 'EIO', after: 1, times: 1 })
    sim.fault({ op: 'write', path: '/lost', kind: 'lost' })
    const wal = await ring.open('/wal', 'w+')
    const other = await ring.open('/other', 'w+')
    const results: string[] = []
    for (const fh of [wal, wal, wal, other]) {
      results.push(await fh.sync().then(() => 'ok', (e: NodeJS.ErrnoException) => `${e.code} ${e.syscall}`))
    }
    t.deepEqual(results, ['ok', 'EIO fsync', 'ok', 'ok'])
    await ring.fs.writeFile('/lost', 'acknowledged, never stored')
    t.is(await ring.fs.readFile('/lost', 'utf8'), '')
    await Promise.all([wal.close(), other.close()])
    const trace = sim.trace()
    t.true(trace.some((l) => /fsync \/wal -> -5 \[fault Error\(5\)\]/.test(l)), trace.join('\n'))
    t.throws(() => sim.fault({ op: 'frobnicate' as 'read', error: 'EIO' }), { code: 'ERR_INVALID_ARG_VALUE' })
    t.throws(() => sim.fault({ op: 'read', error: 'ENOTANERROR' }), { code: 'ERR_INVALID_ARG_VALUE' })
    t.throws(() => sim.fault({ op: 'read', path: /wa.l/, error: 'EIO' }), { code: 'ERR_INVALID_ARG_VALUE' })
    t.throws(() => sim.fault({ op: 'read', error: 'EIO', probability: 2 }), { code: 'ERR_INVALID_ARG_VALUE' })
    t.throws(() => sim.fault({ op: 'read' }), { code: 'ERR_INVALID_ARG_VALUE' })
    t.throws(() => sim.fault({ op: 'read', error: 'EIO', after: -1 }), { code: 'ERR_OUT_OF_RANGE' })
    await ring.close()
    return trace
  }
  t.deepEqual(await run(9), await run(9), 'the same seed, the same trace')
})

test('explore(): bad options are refused before anything runs; a limit cuts the states short and says so', async (t) => {
  const ring = new Ring({ backend: 'sim', seed: 2 })
  const sim = ring.sim!
  await t.throwsAsync(sim.explore({ workload: 'x' as unknown as () => void, check: () => undefined }), { code: 'ERR_INVALID_ARG_TYPE' })
  await t.throwsAsync(sim.explore({ workload: () => undefined, check: 1 as unknown as () => void }), { code: 'ERR_INVALID_ARG_TYPE' })
  await t.throwsAsync(sim.explore({ workload: () => undefined, check: () => undefined, limit: 0 }), { code: 'ERR_OUT_OF_RANGE' })
  await t.throwsAsync(sim.explore({ workload: () => undefined, check: () => undefined, torn: 'yes' as unknown as boolean }), { code: 'ERR_INVALID_ARG_TYPE' })
  const seen: number[] = []
  const report = await sim.explore({
    workload: async (r) => {
      for (let i = 0; i < 5; i++) await r.fs.writeFile(`/f${i}`, `file ${i}`)
    },
    check: (_r, state) => {
      seen.push(state.index)
    },
    limit: 3,
  })
  t.deepEqual(report, { states: 3, truncated: true, failures: [] })
  t.deepEqual(seen, [0, 1, 2])
  await ring.close()
})
