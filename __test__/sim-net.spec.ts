// TCP in the sim engine's own network: partitions and heal, connect
// timeouts in virtual time, injected resets and short sends and receives,
// backpressure, and the seed's determinism for a client/server program.
// Runs on every pass of the suite (each test makes its own sim ring).

import test, { type ExecutionContext } from 'ava'
import { Ring, type Socket } from '../index'
import { outcome, props, rejection } from './helpers'
import { assertNetError, closeLater, echo, pattern, readAtLeast, readToEnd } from './net-helpers'

function simRing(t: ExecutionContext, seed: number): Ring {
  return closeLater(t, new Ring({ backend: 'sim', seed }))
}

async function pair(t: ExecutionContext, ring: Ring): Promise<{ client: Socket; server: Socket; port: number }> {
  const listener = closeLater(t, await ring.listen({ host: '127.0.0.1', port: 0 }))
  const port = listener.address().port
  const [client, server] = await Promise.all([ring.connect({ port, host: '127.0.0.1' }), listener.accept()])
  if (server === null) throw new Error('no connection accepted')
  return { client: closeLater(t, client), server: closeLater(t, server), port }
}

/** The virtual time (µs) of the last trace line that has `text`. */
function lastTime(ring: Ring, text: string): number {
  const lines = ring.sim?.trace().filter((l) => l.includes(text)) ?? []
  return Number(lines[lines.length - 1]?.split(' ')[0] ?? NaN)
}

test('a partition holds the bytes sent across it until heal(); they then arrive whole and in order', async (t) => {
  const ring = simRing(t, 11)
  const { client, server, port } = await pair(t, ring)
  ring.sim?.partition(port)
  const data = pattern(100_000, 1)
  t.is(await client.send(data), data.length, 'a send completes into the window while the path is cut')
  const arriving = readAtLeast(server, data.length)
  t.false((await outcome(arriving, 20, 5)).settled, 'nothing arrives across the partition')
  ring.sim?.heal()
  t.true((await arriving).equals(data))
})

test('a partition on one port leaves other connections alone', async (t) => {
  const ring = simRing(t, 12)
  const cut = await pair(t, ring)
  const other = await pair(t, ring)
  ring.sim?.partition(cut.port)
  await other.client.send('through')
  t.is((await readAtLeast(other.server, 7)).toString(), 'through')
  await cut.client.send('held')
  const held = readAtLeast(cut.server, 4)
  t.false((await outcome(held, 10, 5)).settled)
  ring.sim?.heal()
  t.is((await held).toString(), 'held')
})

test('a connect across a partition fails with its timeout in virtual time; without one it waits for heal()', async (t) => {
  const ring = simRing(t, 13)
  const listener = closeLater(t, await ring.listen({ host: '127.0.0.1', port: 0 }))
  const port = listener.address().port
  ring.sim?.partition()
  const before = lastTime(ring, '') || 0
  const e = await rejection(t, ring.connect({ port, host: '127.0.0.1', timeout: 30_000 }))
  assertNetError(t, e, { code: 'ETIMEDOUT', syscall: 'connect', address: '127.0.0.1', port })
  t.true(lastTime(ring, 'timeout') - before >= 30_000_000, 'the 30 s passed in virtual time')

  const waiting = ring.connect({ port, host: '127.0.0.1' })
  t.false((await outcome(waiting, 20, 5)).settled, 'a connect without a timeout waits')
  ring.sim?.heal()
  const [client, server] = await Promise.all([waiting, listener.accept()])
  closeLater(t, client)
  if (server === null) return t.fail('not accepted')
  closeLater(t, server)
  await client.send('healed')
  t.is((await readAtLeast(server, 6)).toString(), 'healed')
})

test('partition() rejects a port out of range', (t) => {
  const ring = simRing(t, 14)
  t.is(props(t.throws(() => ring.sim?.partition(0))).code, 'ERR_OUT_OF_RANGE')
  t.is(props(t.throws(() => ring.sim?.partition(65536))).code, 'ERR_OUT_OF_RANGE')
  t.is(props(t.throws(() => ring.sim?.partition(1.5))).code, 'ERR_OUT_OF_RANGE')
})

test('an injected reset: recv() rejects ECONNRESET on the end it hits, and the peer sees the reset too', async (t) => {
  const ring = simRing(t, 15)
  const { client, server, port } = await pair(t, ring)
  ring.sim?.fault({ op: 'recv', path: `:${port}>`, error: 'ECONNRESET', after: 1, times: 1 })
  await client.send('one')
  t.is((await readAtLeast(server, 3)).toString(), 'one', 'the first receive goes through')
  await client.send('two')
  assertNetError(t, await rejection(t, server.recv()), { code: 'ECONNRESET', syscall: 'recv' })
  assertNetError(t, await rejection(t, client.recv()), { code: 'ECONNRESET', syscall: 'recv' })
})

test('short sends and receives (injected and seeded) still carry every byte in order', async (t) => {
  const ring = simRing(t, 16)
  const { client, server } = await pair(t, ring)
  ring.sim?.fault({ op: 'send', kind: 'short', probability: 0.5 })
  ring.sim?.fault({ op: 'recv', kind: 'short', probability: 0.5 })
  const data = pattern(1 << 20, 2)
  const served = echo(server)
  const back = readToEnd(client)
  await client.send(data)
  await client.shutdown()
  t.true((await back).equals(data))
  t.is(await served, data.length)
  const sends = ring.sim?.trace().filter((l) => / send .* -> \d+$/.test(l)).length ?? 0
  t.true(sends > 4, `the sends went out in pieces (${sends})`)
})

test('a reader that does not read holds the sender back at the window, then gets every byte', async (t) => {
  const ring = simRing(t, 17)
  const { client, server } = await pair(t, ring)
  const data = pattern(4 << 20, 3)
  const sending = client.send(data)
  t.false((await outcome(sending, 20, 5)).settled, 'the send waits for the reader')
  t.true((await readAtLeast(server, data.length)).equals(data))
  t.is(await sending, data.length)
})

/** A small client/server program: three clients echo through one listener at once; returns the trace. */
async function program(seed: number): Promise<string[]> {
  const ring = new Ring({ backend: 'sim', seed })
  try {
    const listener = await ring.listen({ host: '127.0.0.1', port: 0 })
    const port = listener.address().port
    const serving = (async () => {
      const all: Promise<number>[] = []
      for (let i = 0; i < 3; i++) {
        const s = await listener.accept()
        if (s !== null) all.push(echo(s).finally(() => s.close()))
      }
      return Promise.all(all)
    })()
    await Promise.all(
      [0, 1, 2].map(async (i) => {
        const c = await ring.connect({ port, host: '127.0.0.1' })
        const back = readToEnd(c)
        await c.send(pattern(50_000 + i, i))
        await c.shutdown()
        await back
        await c.close()
      }),
    )
    await serving
    await listener.close()
    return ring.sim?.trace() ?? []
  } finally {
    await ring.close()
  }
}

test('the same seed runs a client/server program the same way, byte for byte; another seed schedules it differently', async (t) => {
  const a = await program(21)
  const b = await program(21)
  t.true(a.length > 20)
  t.deepEqual(a, b)
  const c = await program(22)
  t.notDeepEqual(a, c)
})

test("a 'delay' fault makes a send's bytes arrive that much later in virtual time; its options are checked", async (t) => {
  const ring = simRing(t, 18)
  const { client, server, port } = await pair(t, ring)
  const sim = ring.sim
  if (sim === null) return t.fail('not a sim ring')
  sim.fault({ op: 'send', path: `>127.0.0.1:${port}`, kind: 'delay', delayMs: 2000, times: 1 })
  const start = lastTime(ring, '')
  await client.send('late')
  t.is((await readAtLeast(server, 4)).toString(), 'late')
  t.true(lastTime(ring, ' recv ') - start >= 2_000_000, 'received 2 s of virtual time after the send')
  for (const bad of [{ kind: 'delay' }, { kind: 'delay', delayMs: -1 }, { kind: 'delay', delayMs: '5' }, { kind: 'lost', delayMs: 5 }]) {
    t.is(props(t.throws(() => sim.fault(bad as never))).code, 'ERR_INVALID_ARG_VALUE', JSON.stringify(bad))
  }
  t.is(props(t.throws(() => sim.fault({ kind: 'melted' as never }))).code, 'ERR_INVALID_ARG_VALUE')
  t.notThrows(() => sim.fault({ op: 'write', kind: 'torn', times: 1 }))
  t.notThrows(() => sim.fault({ op: 'write', kind: 'misdirected', times: 1 }))
})
