// Side-by-side runs of the ringline/net tests that put real clients and
// servers (node:http, http.Agent, undici, tls, https) on ringline sockets
// (not a spec file itself): each scenario runs once with every socket from
// node:net (the reference) and again with ringline/net on the server side,
// the client side, or both, and each result must equal node:net's.
//
// On sim, ringline's sockets live in the sim's own network, which node:net
// cannot reach: there the mixed pairs (one side node:net, the other
// ringline/net) are left out, and ringline/net runs on both sides.

import type { ExecutionContext } from 'ava'
import { once } from 'node:events'
import * as net from 'node:net'
import * as path from 'node:path'
import * as rnet from '../net'
import { SIM } from './test-disk'

export type Side = 'node' | 'ringline'

/** Whose sockets the server accepts and whose the client connects. */
export interface Sides {
  readonly server: Side
  readonly client: Side
}

/** node:net on both sides: what the other pairs must match. */
export const REFERENCE: Sides = { server: 'node', client: 'node' }

/** The pairs each scenario runs on, the reference first. */
export const SIDES: readonly Sides[] = SIM
  ? [REFERENCE, { server: 'ringline', client: 'ringline' }]
  : [REFERENCE, { server: 'ringline', client: 'node' }, { server: 'node', client: 'ringline' }, { server: 'ringline', client: 'ringline' }]

export function label(s: Sides): string {
  return `server ${s.server === 'node' ? 'node:net' : 'ringline/net'}, client ${s.client === 'node' ? 'node:net' : 'ringline/net'}`
}

export interface DialOptions {
  port: number
  host?: string
  allowHalfOpen?: boolean
}

/** The side's `createConnection`, typed as node:net's. */
/** The `require(...)` a child script uses for a side's net module (ringline's: the built dist/net.js). */
export function netRequire(side: Side): string {
  return side === 'node' ? "require('node:net')" : `require(${JSON.stringify(path.join(__dirname, '..', 'dist', 'net.js'))})`
}

export function connector(side: Side): (options: DialOptions) => net.Socket {
  if (side === 'node') return (o) => net.createConnection({ host: '127.0.0.1', ...o })
  return (o) => rnet.createConnection({ host: '127.0.0.1', ...o }) as unknown as net.Socket
}

/** A client socket of the side to 127.0.0.1:`port`, destroyed at teardown. */
export function dial(t: ExecutionContext, side: Side, port: number, options: Omit<DialOptions, 'port'> = {}): net.Socket {
  const s = connector(side)({ port, ...options })
  t.teardown(() => {
    s.destroy()
  })
  return s
}

export interface Listening {
  port: number
  close(): Promise<void>
}

/**
 * `server` (a node:http, https, tls or net server) listening on
 * 127.0.0.1:0 on the side: by itself (node:net), or fed by a ringline/net
 * server through `serveHttp`. Closed at teardown, its connections too.
 */
export async function listenOn(t: ExecutionContext, side: Side, server: net.Server): Promise<Listening> {
  const closeAll = (): void => {
    ;(server as { closeAllConnections?: () => void }).closeAllConnections?.()
  }
  let listening: { listening: boolean; close(cb: () => void): unknown }
  let port: number
  if (side === 'node') {
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    port = (server.address() as net.AddressInfo).port
    listening = server
  } else {
    const r = rnet.serveHttp(server)
    r.listen(0, '127.0.0.1')
    await once(r, 'listening')
    port = r.address()!.port
    listening = r
  }
  let closing: Promise<void> | null = null
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      closeAll()
      if (!listening.listening) resolve()
      else listening.close(() => resolve())
    })
    return closing
  }
  t.teardown(close)
  return { port, close }
}

/** A plain TCP server of the side on 127.0.0.1:0; closed at teardown (after its connections are destroyed). */
export async function tcpServer(t: ExecutionContext, side: Side, onConnection: (s: net.Socket) => void): Promise<Listening> {
  const sockets = new Set<net.Socket>()
  const listener = (s: net.Socket): void => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
    onConnection(s)
  }
  const server = side === 'node' ? net.createServer(listener) : (rnet.createServer(listener as unknown as (s: rnet.Socket) => void) as unknown as net.Server)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as net.AddressInfo).port
  let closing: Promise<void> | null = null
  const close = (): Promise<void> => {
    closing ??= new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy()
      server.close(() => resolve())
    })
    return closing
  }
  t.teardown(close)
  return { port, close }
}

/**
 * Runs `scenario` on every pair of `SIDES` (at once, or one after another
 * with `serial`), asserts that each result deep-equals node:net's, and
 * returns node:net's for the test's own assertions on what it must be.
 */
export async function sideBySide<T>(t: ExecutionContext, scenario: (sides: Sides) => Promise<T>, options: { serial?: boolean } = {}): Promise<T> {
  const run = (s: Sides): Promise<T> =>
    scenario(s).catch((e: unknown) => {
      throw new Error(`${label(s)}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`, { cause: e })
    })
  let results: T[]
  if (options.serial === true) {
    results = []
    for (const s of SIDES) results.push(await run(s))
  } else results = await Promise.all(SIDES.map(run))
  const reference = results[0]
  for (let i = 1; i < SIDES.length; i++) t.deepEqual(results[i], reference, `${label(SIDES[i])} differs from node:net`)
  return reference
}
