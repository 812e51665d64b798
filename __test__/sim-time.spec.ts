// Virtual time on a sim ring: ringline's own waits (rm's retryDelay) and
// ring.sim.advance() move the sim's clock, not the wall clock's.

import test from 'ava'
import { Ring } from '../index'
import { props } from './helpers'

/** The virtual time (µs) of the sim's last trace line. */
function now(ring: Ring): number {
  const lines = ring.sim?.trace() ?? []
  return Number(lines[lines.length - 1]?.split(' ')[0] ?? 0)
}

test("rm's retries wait retryDelay in virtual time on a sim ring", async (t) => {
  const ring = new Ring({ backend: 'sim', seed: 31 })
  t.teardown(() => ring.close())
  await ring.fs.writeFile('/busy', 'x')
  ring.sim?.fault({ op: 'unlink', path: '/busy', error: 'EBUSY', times: 2 })
  const before = now(ring)
  await ring.fs.rm('/busy', { maxRetries: 3, retryDelay: 10_000 })
  await t.throwsAsync(ring.fs.stat('/busy'), { code: 'ENOENT' })
  // Two retries: 10 s, then 20 s.
  t.true(now(ring) - before >= 30_000_000, `${now(ring) - before} µs passed in virtual time`)

  ring.sim?.fault({ op: 'unlink', error: 'EBUSY', times: 5 })
  await ring.fs.writeFile('/stuck', 'x')
  await t.throwsAsync(ring.fs.rm('/stuck', { maxRetries: 2, retryDelay: 10_000 }), { code: 'EBUSY' })
})

test('advance() moves virtual time on; its argument is checked', async (t) => {
  const ring = new Ring({ backend: 'sim', seed: 32 })
  t.teardown(() => ring.close())
  await ring.fs.writeFile('/a', 'x')
  const before = now(ring)
  await ring.sim?.advance(3_600_000)
  await ring.fs.writeFile('/b', 'x')
  t.true(now(ring) - before >= 3_600_000_000, 'an hour later')
  const a = await ring.fs.stat('/a')
  const b = await ring.fs.stat('/b')
  t.true(b.mtimeMs - a.mtimeMs >= 3_600_000, 'file times follow the virtual clock')
  for (const bad of [-1, Number.NaN, '5', 1e13]) {
    const e = await ring.sim?.advance(bad as number).then(
      () => null,
      (err: unknown) => err,
    )
    t.is(props(e).code, 'ERR_INVALID_ARG_VALUE', String(bad))
  }
})
