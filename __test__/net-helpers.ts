// Helpers of the TCP test files (net.spec.ts, net-interop.spec.ts); not a
// spec file itself. Everything here uses 127.0.0.1 / ::1 only.

import type { ExecutionContext } from 'ava'
import { createCipheriv, createHash } from 'node:crypto'
import * as net from 'node:net'
import { getSystemErrorName } from 'node:util'
import type { Ring, Listener, Socket, ListenOptions, ConnectOptions } from '../index'
import { props, start, waitFor, type Started } from './helpers'

export const KiB = 1024
export const MiB = 1024 * 1024

/** `size` pseudo-random bytes, the same for the same seed (AES-CTR keystream). */
export function pattern(size: number, seed: number): Buffer {
  const key = createHash('sha256').update(`ringline-net-${seed}`).digest().subarray(0, 16)
  const c = createCipheriv('aes-128-ctr', key, Buffer.alloc(16))
  return Buffer.concat([c.update(Buffer.alloc(size)), c.final()])
}

export function sha256(data: ArrayBufferView | ArrayBufferView[]): string {
  const h = createHash('sha256')
  for (const v of Array.isArray(data) ? data : [data]) h.update(Buffer.from(v.buffer, v.byteOffset, v.byteLength))
  return h.digest('hex')
}

interface Closable {
  close(): unknown
}

/** Closes `x` when the test ends (teardowns run last-registered first), ignoring errors. */
export function closeLater<T extends Closable>(t: ExecutionContext, x: T): T {
  t.teardown(async () => {
    try {
      await x.close()
    } catch {
      // already closed, or its ring is
    }
  })
  return x
}

/** Destroys a node:net socket when the test ends. */
export function destroyLater(t: ExecutionContext, s: net.Socket): net.Socket {
  t.teardown(() => {
    s.destroy()
  })
  return s
}

/** All chunks until end of stream (recv() → null), concatenated only at the end. */
export async function readToEnd(s: Socket): Promise<Buffer> {
  const chunks: Buffer[] = []
  for (;;) {
    const c = await s.recv()
    if (c === null) break
    chunks.push(c)
  }
  return Buffer.concat(chunks)
}

/** Reads chunks until at least `n` bytes (or end of stream) and returns them all. */
export async function readAtLeast(s: Socket, n: number): Promise<Buffer> {
  const chunks: Buffer[] = []
  let got = 0
  while (got < n) {
    const c = await s.recv()
    if (c === null) break
    chunks.push(c)
    got += c.length
  }
  return Buffer.concat(chunks)
}

/** Echoes everything back, then half-closes once the peer has. Returns the byte count. */
export async function echo(s: Socket): Promise<number> {
  let n = 0
  for (;;) {
    const c = await s.recv()
    if (c === null) break
    n += c.length
    await s.send(c)
  }
  await s.shutdown()
  return n
}

export interface Pair {
  listener: Listener
  client: Socket
  server: Socket
  port: number
}

/** A listener on 127.0.0.1 (or `host`) of `ring` and one connected pair through it; all closed at teardown. */
export async function pair(t: ExecutionContext, ring: Ring, host = '127.0.0.1', connectExtra: Partial<ConnectOptions> = {}): Promise<Pair> {
  const listener = closeLater(t, await ring.listen({ host, port: 0 }))
  const port = listener.address().port
  const [client, server] = await Promise.all([ring.connect({ port, host, ...connectExtra }), listener.accept()])
  closeLater(t, client)
  if (server === null) throw new Error('accept() resolved null on an open listener')
  closeLater(t, server)
  return { listener, client, server, port }
}

/** A node:net server on `host`:0 that hands every connection to `onConnection`; closed (and its sockets destroyed) at teardown. */
export async function nodeServer(
  t: ExecutionContext,
  onConnection: (s: net.Socket) => void,
  host = '127.0.0.1',
  options: net.ServerOpts = {},
): Promise<{ server: net.Server; port: number; sockets: Set<net.Socket> }> {
  const sockets = new Set<net.Socket>()
  const server = net.createServer(options, (s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
    s.on('error', () => {
      // the test looks at what it cares about
    })
    onConnection(s)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen({ port: 0, host }, () => resolve())
  })
  t.teardown(async () => {
    for (const s of sockets) s.destroy()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  const addr = server.address()
  if (addr === null || typeof addr === 'string') throw new Error('no address')
  return { server, port: addr.port, sockets }
}

/** A connected node:net client, destroyed at teardown. */
export function nodeConnect(t: ExecutionContext, port: number, host = '127.0.0.1', options: Partial<net.TcpNetConnectOpts> = {}): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = destroyLater(t, net.connect({ port, host, ...options }))
    s.once('connect', () => {
      s.off('error', reject)
      resolve(s)
    })
    s.once('error', reject)
  })
}

/** Everything a node:net socket reads until 'end'; rejects on 'error'. */
export function nodeReadToEnd(s: net.Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    s.on('data', (c: Buffer) => chunks.push(c))
    s.once('end', () => resolve(Buffer.concat(chunks)))
    s.once('error', reject)
  })
}

/** Reads `n` bytes from a node:net socket (resolves with all bytes seen once ≥ n, or at 'end'). */
export function nodeReadAtLeast(s: net.Socket, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let got = 0
    const done = (): void => {
      s.off('data', onData)
      s.off('end', done)
      s.off('error', reject)
      resolve(Buffer.concat(chunks))
    }
    const onData = (c: Buffer): void => {
      chunks.push(c)
      got += c.length
      if (got >= n) done()
    }
    s.on('data', onData)
    s.once('end', done)
    s.once('error', reject)
  })
}

/** A port on 127.0.0.1 that was listening a moment ago and no longer is. */
export async function closedPort(host = '127.0.0.1'): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen({ port: 0, host }, () => resolve())
  })
  const addr = server.address()
  if (addr === null || typeof addr === 'string') throw new Error('no address')
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return addr.port
}

/** The error node:net itself reports for connecting to `port` on `host`. */
export function nodeConnectError(port: number, host: string): Promise<NodeJS.ErrnoException> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host })
    s.once('connect', () => {
      s.destroy()
      reject(new Error(`node:net connected to ${host}:${port}`))
    })
    s.once('error', (e) => resolve(e))
  })
}

/** Whether node:net can listen on `host` (e.g. '::1'). */
export async function canListen(host: string): Promise<boolean> {
  const server = net.createServer()
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen({ port: 0, host }, () => resolve())
    })
    await new Promise<void>((resolve) => server.close(() => resolve()))
    return true
  } catch {
    return false
  }
}

/**
 * Asserts a Node-style system error of node:net's shape: plain Error, `code`,
 * negative `errno` that names `code`, `syscall`, and `address`/`port` when given.
 */
export function assertNetError(
  t: ExecutionContext,
  e: unknown,
  expected: { code: string | string[]; syscall: string; address?: string; port?: number },
  what = '',
): void {
  const label = what === '' ? '' : `${what}: `
  t.true(e instanceof Error, `${label}expected an Error, got ${String(e)}`)
  if (!(e instanceof Error)) return
  const p = props(e) as { code?: unknown; errno?: unknown; syscall?: unknown; address?: unknown; port?: unknown }
  const codes = Array.isArray(expected.code) ? expected.code : [expected.code]
  t.true(codes.includes(String(p.code)), `${label}code ${String(p.code)}, expected ${codes.join(' or ')} (${e.message})`)
  t.true(typeof p.errno === 'number' && p.errno < 0, `${label}errno is negative: ${String(p.errno)}`)
  if (typeof p.errno === 'number' && p.errno < 0) t.is(p.code, getSystemErrorName(p.errno), `${label}errno ${p.errno} names the code`)
  t.is(p.syscall, expected.syscall, `${label}syscall (${e.message})`)
  t.true(e.message.includes(String(p.code)), `${label}message names the code: ${e.message}`)
  if (expected.address !== undefined) t.is(p.address, expected.address, `${label}address`)
  if (expected.port !== undefined) t.is(p.port, expected.port, `${label}port`)
}

/** Asserts Node's AbortError shape. */
export function assertAbortError(t: ExecutionContext, e: unknown): void {
  t.true(e instanceof Error, `expected an AbortError, got ${String(e)}`)
  const p = props(e)
  t.is(p.name, 'AbortError', String(p.message))
  t.is(p.code, 'ABORT_ERR', String(p.message))
}

const hangScript = `
const net = require('node:net')
const fs = require('node:fs')
const server = net.createServer()
server.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
  fs.writeSync(1, 'port ' + server.address().port + '\\n')
  // Block the event loop: the server never accepts, so its queue stays full.
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 180000)
  process.exit(0)
})
`

export interface Hanging {
  port: number
  stop(): Promise<void>
}

/**
 * A port on 127.0.0.1 where connect() hangs: a child process listens with
 * backlog 1 and blocks its event loop (never accepts); two node:net
 * connections fill its accept queue, after which the kernel drops further
 * SYNs (ListenOverflows), so a connect stays in SYN-SENT for seconds.
 */
export async function hangingPort(): Promise<Hanging> {
  let port = 0
  const child: Started = start(process.execPath, ['-e', hangScript], {
    onStdout: (all) => {
      const m = /port (\d+)/.exec(all)
      if (m) port = Number(m[1])
    },
  })
  const fillers: net.Socket[] = []
  const stop = async (): Promise<void> => {
    for (const f of fillers) f.destroy()
    child.child.kill('SIGKILL')
    await child.done
  }
  if (!(await waitFor(() => port !== 0, 1000, 10))) {
    await stop()
    throw new Error('the hanging listener did not start')
  }
  let connected = 0
  for (let i = 0; i < 2; i++) {
    const s = net.connect({ port, host: '127.0.0.1' })
    s.on('error', () => {
      // destroyed at stop()
    })
    s.once('connect', () => {
      connected += 1
    })
    fillers.push(s)
  }
  if (!(await waitFor(() => connected === 2, 1000, 10))) {
    await stop()
    throw new Error(`only ${connected} of 2 filler connections completed`)
  }
  return { port, stop }
}

/**
 * Whether this run of the suite is on the sim engine: its sockets live in
 * the ring's own simulated network, which node:net and ss(8) cannot see.
 */
export { SIM } from './test-disk'

/**
 * hangingPort() inside a sim ring's network: a listener with backlog 0
 * whose queue one connection fills, so the next connect waits.
 */
export async function simHangingPort(ring: Ring): Promise<Hanging> {
  const listener = await ring.listen({ host: '127.0.0.1', port: 0, backlog: 0 })
  const filler = await ring.connect({ port: listener.address().port, host: '127.0.0.1' })
  return {
    port: listener.address().port,
    stop: async () => {
      await filler.close()
      await listener.close()
    },
  }
}

/** Options of `ring.listen` for 127.0.0.1 and an ephemeral port. */
export const LOCAL: ListenOptions = { host: '127.0.0.1', port: 0 }
