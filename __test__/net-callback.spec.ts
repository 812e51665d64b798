// The callback API of TCP (issue 13, part 3): listen() and connect() with
// `socket` handlers. Chunks go to `data` in order and stay valid; write()
// takes what fits under writeHighWaterMark and `drain` says when to write
// the rest; end() half-closes and both sides' close handlers run once;
// errors (a reset, bad input, writes after end or close) are reported as
// documented. Runs on every engine (the sim's network included); the
// node:net pairings need a real kernel.

import test, { type ExecutionContext } from 'ava'
import * as net from 'node:net'
import { Ring, type CallbackSocket, type SocketHandlers } from '../index'
import { props, rejection, sameBytes, tick, waitFor } from './helpers'
import { MiB, KiB, closeLater, nodeConnect, nodeReadToEnd, nodeServer, pattern } from './net-helpers'
import { realKernelOnly } from './sim-setup'

const HOST = '127.0.0.1'

function ringFor(t: ExecutionContext): Ring {
  return closeLater(t, new Ring())
}

/** What a callback socket saw: its chunks, ends, drains and its close. */
class Seen {
  chunks: Buffer[] = []
  ends = 0
  drains = 0
  closes: (Error | null)[] = []
  opened = 0
  get bytes(): number {
    return this.chunks.reduce((a, c) => a + c.length, 0)
  }
  all(): Buffer {
    return Buffer.concat(this.chunks)
  }
  handlers(extra: Partial<SocketHandlers> = {}): SocketHandlers {
    return {
      open: () => void this.opened++,
      data: (_s, c) => void this.chunks.push(c),
      end: () => void this.ends++,
      drain: () => void this.drains++,
      close: (_s, e) => void this.closes.push(e),
      ...extra,
    }
  }
}

/** A callback listener whose accepted sockets are recorded (each with its own Seen). */
async function cbServer(
  t: ExecutionContext,
  ring: Ring,
  make: (seen: Seen) => Partial<SocketHandlers> = () => ({}),
  options: { writeHighWaterMark?: number; allowHalfOpen?: boolean } = {},
): Promise<{ port: number; accepted: { sock: CallbackSocket; seen: Seen }[] }> {
  const accepted: { sock: CallbackSocket; seen: Seen }[] = []
  const listener = closeLater(
    t,
    await ring.listen({
      host: HOST,
      port: 0,
      socket: {
        ...options,
        open: (sock) => {
          const seen = new Seen()
          seen.opened++
          accepted.push({ sock, seen })
          handlers.set(sock, seen.handlers(make(seen)))
        },
        data: (sock, c) => handlersOf(sock).data(sock, c),
        end: (sock) => handlersOf(sock).end?.(sock),
        drain: (sock) => handlersOf(sock).drain?.(sock),
        close: (sock, e) => handlersOf(sock).close?.(sock, e),
      },
    }),
  )
  t.teardown(() => {
    for (const a of accepted) a.sock.close()
  })
  return { port: listener.address().port, accepted }
}

const handlers = new WeakMap<CallbackSocket, SocketHandlers>()

function handlersOf(sock: CallbackSocket): SocketHandlers {
  const h = handlers.get(sock)
  if (h === undefined) throw new Error('a socket the server did not open')
  return h
}

test('echo: every chunk arrives in order and stays valid after its call; 4 MiB through', async (t) => {
  const ring = ringFor(t)
  // The echo keeps to write()'s contract: what a write did not take waits,
  // with receiving paused, for drain. (A large write of the client may go
  // to the kernel at once, so more than writeHighWaterMark can come in
  // before the echo's own sends complete.)
  const { port } = await cbServer(t, ring, () => {
    const held: Buffer[] = []
    const flush = (s: CallbackSocket): void => {
      while (held.length > 0) {
        const c = held[0]
        const n = s.write(c)
        if (n < c.length) {
          held[0] = c.subarray(n)
          s.pause()
          return
        }
        held.shift()
      }
      s.resume()
    }
    return {
      data: (s, c) => {
        held.push(c)
        if (held.length === 1) flush(s)
      },
      drain: (s) => flush(s),
    }
  })
  const seen = new Seen()
  const data = pattern(4 * MiB, 1)
  let off = 0
  // Writes of 100 KiB, each whole (under the 1 MiB default mark) or
  // continued after drain.
  const pump = (): void => {
    while (off < data.length) {
      const n = client.write(data, off, Math.min(100 * KiB, data.length - off))
      off += n
      if (n === 0) return
    }
  }
  const client: CallbackSocket = await ring.connect({ host: HOST, port, socket: seen.handlers({ drain: () => pump() }) })
  t.teardown(() => client.close())
  t.is(seen.opened, 1, 'open ran before connect resolved')
  pump()
  t.true(await waitFor(() => seen.bytes >= data.length, 4000, 5), `echoed ${seen.bytes} of ${data.length}`)
  sameBytes(t, seen.all(), data, 'echo')
  t.deepEqual(seen.closes, [], 'no close yet')
})

test('write() takes what fits under writeHighWaterMark, drain comes when all is sent, and every byte arrives once', async (t) => {
  const ring = ringFor(t)
  const { port, accepted } = await cbServer(t, ring)
  const seen = new Seen()
  const data = pattern(2 * MiB, 2)
  let off = 0
  let shortWrites = 0
  const takes: number[] = []
  let client!: CallbackSocket
  const pump = (): void => {
    while (off < data.length) {
      const n = client.write(data.subarray(off))
      t.true(n >= 0 && n <= 64 * KiB, `took ${n}`)
      t.true(client.bufferedAmount <= 64 * KiB, `under way: ${client.bufferedAmount}`)
      takes.push(n)
      off += n
      if (n < data.length - off + n) {
        shortWrites++
        return
      }
    }
  }
  const drain = (): void => {
    seen.drains++
    pump()
  }
  client = await ring.connect({ host: HOST, port, socket: { ...seen.handlers({ drain }), writeHighWaterMark: 64 * KiB } })
  t.teardown(() => client.close())
  pump()
  t.is(takes[0], 64 * KiB, 'the first write took exactly the mark')
  // (All of it may already be sent: the socket took it during the call.)
  t.true(await waitFor(() => accepted.length === 1 && accepted[0].seen.bytes >= data.length, 4000, 5))
  sameBytes(t, accepted[0].seen.all(), data, 'received')
  t.true(shortWrites > 1, `short writes: ${shortWrites}`)
  t.is(seen.drains, shortWrites, 'one drain per short write')
  t.is(client.bufferedAmount, 0)
  // A write when nothing is under way takes all that fits.
  t.is(client.write('abc'), 3)
  t.is(client.write(new Uint8Array(0)), 0)
})

test('end(): the peer sees end, ends too (allowHalfOpen false), and both close handlers run once with no error', async (t) => {
  const ring = ringFor(t)
  const { port, accepted } = await cbServer(t, ring)
  const seen = new Seen()
  const client = await ring.connect({ host: HOST, port, socket: seen.handlers() })
  client.end('last words')
  t.throws(() => client.write('more'), { code: 'ERR_STREAM_WRITE_AFTER_END' })
  client.end() // again: nothing
  t.true(await waitFor(() => seen.closes.length === 1 && accepted.length === 1 && accepted[0].seen.closes.length === 1, 4000, 5))
  const server = accepted[0]
  t.is(server.seen.all().toString(), 'last words')
  t.is(server.seen.ends, 1)
  t.is(seen.ends, 1, "the server's automatic end reached the client")
  t.deepEqual(seen.closes, [null])
  t.deepEqual(server.seen.closes, [null])
  t.true(client.closed)
  t.throws(() => client.write('x'), { code: 'ERR_SOCKET_CLOSED' })
  await tick(20)
  t.is(seen.closes.length, 1, 'close ran once')
})

test('allowHalfOpen: after the peer ends, this side still writes, then ends; then both close', async (t) => {
  const ring = ringFor(t)
  const { port, accepted } = await cbServer(t, ring, () => ({}), { allowHalfOpen: true })
  const seen = new Seen()
  const client = await ring.connect({ host: HOST, port, socket: seen.handlers() })
  client.end()
  t.true(await waitFor(() => accepted.length === 1 && accepted[0].seen.ends === 1, 4000, 5))
  const server = accepted[0]
  t.false(server.sock.closed)
  t.is(server.sock.write('after your end'), 14)
  t.true(await waitFor(() => seen.bytes === 14, 4000, 5))
  t.deepEqual(seen.closes, [], 'the client waits for the server to end')
  server.sock.end()
  t.true(await waitFor(() => seen.closes.length === 1 && server.seen.closes.length === 1, 4000, 5))
  t.is(seen.all().toString(), 'after your end')
  t.deepEqual([seen.closes, server.seen.closes], [[null], [null]])
})

test('close(): close runs once with no error, later writes throw ERR_SOCKET_CLOSED, and the peer sees the end', async (t) => {
  const ring = ringFor(t)
  const { port, accepted } = await cbServer(t, ring)
  const seen = new Seen()
  const client = await ring.connect({ host: HOST, port, socket: seen.handlers() })
  t.is(client.write('hello'), 5)
  t.true(await waitFor(() => accepted.length === 1 && accepted[0].seen.bytes === 5, 4000, 5))
  client.close()
  client.close()
  t.deepEqual(seen.closes, [null])
  t.true(client.closed)
  const thrown = t.throws(() => client.write('x'))
  t.is(props(thrown).code, 'ERR_SOCKET_CLOSED')
  // As node prints it, the code once.
  t.is(thrown?.stack?.split('\n')[0], 'Error [ERR_SOCKET_CLOSED]: Socket is closed')
  t.true(await waitFor(() => accepted[0].seen.closes.length === 1, 4000, 5))
  t.is(accepted[0].seen.ends, 1)
  t.deepEqual(accepted[0].seen.closes, [null])
})

test('a reset: closing with unread bytes resets the connection, and the peer gets close(sock, ECONNRESET)', async (t) => {
  const ring = ringFor(t)
  // The server stops receiving at once, so what the client sends stays unread.
  const { port, accepted } = await cbServer(t, ring)
  const seen = new Seen()
  const client = await ring.connect({ host: HOST, port, socket: seen.handlers() })
  t.true(await waitFor(() => accepted.length === 1, 4000, 5))
  accepted[0].sock.pause()
  t.is(client.write(pattern(64 * KiB, 3)), 64 * KiB)
  t.true(await waitFor(() => client.bufferedAmount === 0, 4000, 5))
  await tick(20)
  accepted[0].sock.close()
  t.true(await waitFor(() => seen.closes.length === 1, 4000, 5))
  const err = seen.closes[0]
  t.truthy(err)
  t.is(props(err).code, 'ECONNRESET')
  t.is(props(err).syscall, 'recv')
})

test('pause() stops data until resume(); nothing is lost', async (t) => {
  const ring = ringFor(t)
  const { port, accepted } = await cbServer(t, ring)
  const client = await ring.connect({ host: HOST, port, socket: new Seen().handlers() })
  t.teardown(() => client.close())
  t.true(await waitFor(() => accepted.length === 1, 4000, 5))
  const server = accepted[0]
  server.sock.pause()
  await tick(20)
  const data = pattern(256 * KiB, 4)
  t.is(client.write(data), data.length)
  await tick(100)
  const whilePaused = server.seen.bytes
  t.true(whilePaused < data.length, `paused, yet ${whilePaused} bytes came`)
  server.sock.resume()
  t.true(await waitFor(() => server.seen.bytes >= data.length, 4000, 5))
  sameBytes(t, server.seen.all(), data)
})

test('addresses, options and the listener: accept() rejects on a listener with handlers', async (t) => {
  const ring = ringFor(t)
  const listener = closeLater(t, await ring.listen({ host: HOST, port: 0, socket: { data() {} } }))
  const port = listener.address().port
  const client = await ring.connect({ host: HOST, port, socket: { data() {} } })
  t.teardown(() => client.close())
  t.is(client.remotePort, port)
  t.is(client.remoteAddress, HOST)
  t.is(client.remoteFamily, 'IPv4')
  t.is(client.localAddress, HOST)
  t.is(typeof client.localPort, 'number')
  t.deepEqual(client.address(), { address: HOST, family: 'IPv4', port: client.localPort })
  t.is(client.setNoDelay(false), client)
  t.is(client.setKeepAlive(true, 1000), client)
  t.is(client.unref().ref(), client)
  t.is(client.ring, ring)
  t.is(props(await rejection(t, listener.accept())).code, 'ERR_INVALID_STATE')
})

test('bad input: handlers and options are checked before anything is opened; write() checks its data', async (t) => {
  const ring = ringFor(t)
  const listener = closeLater(t, await ring.listen({ host: HOST, port: 0 }))
  const port = listener.address().port
  const bad: [string, unknown][] = [
    ['socket: null', null],
    ['no data', {}],
    ['data not a function', { data: 1 }],
    ['close not a function', { data() {}, close: 'x' }],
    ['writeHighWaterMark 0', { data() {}, writeHighWaterMark: 0 }],
    ['allowHalfOpen not boolean', { data() {}, allowHalfOpen: 1 }],
  ]
  for (const [what, socket] of bad) {
    const e = props(await rejection(t, ring.connect({ host: HOST, port, socket } as never)))
    t.true(['ERR_INVALID_ARG_TYPE', 'ERR_OUT_OF_RANGE'].includes(String(e.code)), `${what}: ${String(e.code)}`)
    const l = props(await rejection(t, ring.listen({ host: HOST, port: 0, socket } as never)))
    t.true(['ERR_INVALID_ARG_TYPE', 'ERR_OUT_OF_RANGE'].includes(String(l.code)), `listen ${what}: ${String(l.code)}`)
  }
  await tick(20)
  t.is(ring.stats().sockets, 1, 'only the listener: no connection was opened for bad options')
  const client = await ring.connect({ host: HOST, port, socket: { data() {} } })
  t.teardown(() => client.close())
  t.is(props(t.throws(() => client.write(42 as never))).code, 'ERR_INVALID_ARG_TYPE')
  t.is(props(t.throws(() => client.write(Buffer.alloc(4), 5))).code, 'ERR_OUT_OF_RANGE')
  t.is(props(t.throws(() => client.write(Buffer.alloc(4), 1, 4))).code, 'ERR_OUT_OF_RANGE')
  t.is(client.write(Buffer.from('abcd'), 1, 2), 2)
})

realKernelOnly('node:net peers reach only the real kernel')('interop: node:net client against a callback server, a callback client against a node:net server', async (t) => {
  const ring = ringFor(t)
  const { port } = await cbServer(t, ring, () => ({ data: (s, c) => void s.write(c) }))
  const ns = await nodeConnect(t, port)
  const data = pattern(1 * MiB, 5)
  const got = new Promise<Buffer>((resolve) => {
    const parts: Buffer[] = []
    let n = 0
    ns.on('data', (c: Buffer) => {
      parts.push(c)
      n += c.length
      if (n >= data.length) resolve(Buffer.concat(parts))
    })
  })
  ns.write(data)
  sameBytes(t, await got, data, 'node:net client echo')

  const received: Buffer[] = []
  const { port: nport } = await nodeServer(t, (s: net.Socket) => {
    void nodeReadToEnd(s).then((b) => {
      received.push(b)
      s.end('bye')
    })
  }, HOST, { allowHalfOpen: true })
  const seen = new Seen()
  const client = await ring.connect({ host: HOST, port: nport, socket: seen.handlers() })
  t.is(client.write(data), data.length)
  client.end()
  t.true(await waitFor(() => seen.closes.length === 1, 4000, 5))
  sameBytes(t, received[0], data, 'node:net server received')
  t.is(seen.all().toString(), 'bye')
  t.deepEqual(seen.closes, [null])
})

test('small writes on a ring with one connection: every byte arrives in order, and on io_uring a lone one goes out during write(), with no kernel op (stats().sentAtOnce)', async (t) => {
  const ring = ringFor(t)
  // An echo server on the same ring: 3 streams (the listener's accept and
  // both ends' receives), few enough for a lone send to go at once.
  const { port } = await cbServer(t, ring, () => ({ data: (s, c) => void s.write(c) }))
  let got = Buffer.alloc(0)
  let want = 0
  let arrived: () => void = () => undefined
  const seen = new Seen()
  const client = await ring.connect({
    host: HOST,
    port,
    socket: seen.handlers({
      data: (_s, c) => {
        got = Buffer.concat([got, c])
        if (got.length >= want) arrived()
      },
    }),
  })
  t.teardown(() => client.close())
  const echoed = (n: number): Promise<void> => {
    want = n
    return got.length >= n ? Promise.resolve() : new Promise<void>((resolve) => (arrived = resolve))
  }
  const sent: Buffer[] = []
  // Warm-up: the connection's first exchanges (and the accept) are done.
  for (let i = 0; i < 5; i++) {
    const m = Buffer.alloc(64, i)
    sent.push(m)
    t.is(client.write(m), 64)
    await echoed(64 * sent.length)
  }
  const before = ring.stats()
  const rounds = 200
  for (let i = 0; i < rounds; i++) {
    const m = Buffer.alloc(64, (i * 7 + 3) & 0xff)
    m.writeUInt32LE(i, 0)
    sent.push(Buffer.from(m))
    t.is(client.write(m), 64)
    // The caller's memory is free again at once, whichever way it went.
    m.fill(0xee, 8, 16)
    await echoed(64 * sent.length)
  }
  const after = ring.stats()
  // A burst: the first write may go at once, the rest queue behind it.
  const burst = Array.from({ length: 20 }, (_, i) => Buffer.alloc(100 + i, 0x40 + i))
  for (const b of burst) {
    t.is(client.write(b), b.length)
    sent.push(Buffer.from(b))
    b.fill(0)
  }
  await echoed(sent.reduce((a, b) => a + b.length, 0))
  // What each write had when it was called (not what its memory held after).
  sameBytes(t, got, Buffer.concat(sent), 'echo, in order')
  t.is(after.sends - before.sends, 2 * rounds, 'both ends sent every round')
  const atOnce = after.sentAtOnce - before.sentAtOnce
  if (ring.backend === 'io_uring') {
    // Each send was the only op of its flush.
    t.true(atOnce > rounds, `${atOnce} of ${2 * rounds} sends done during write()`)
  } else if (ring.backend === 'sim') {
    t.is(atOnce, 0, 'the sim engine sends every byte through its network')
  }
  t.deepEqual(seen.closes, [], 'no close')
})
