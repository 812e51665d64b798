// The TCP workloads of net.ts, for ringline and for node:net. Each
// measurement runs in a child process of its own (net-child.ts) holding both
// ends, server and client, on one event loop; see net.ts for why.
//
// ringline is imported lazily (only by ringline jobs), so a node:net child
// never loads the native module.

import * as net from 'node:net'
import { callbackLoops, promiseLoops, runTimed, within, type Backend, type Callback, type Control, type Measurement, type TimedOptions } from './harness'
import type * as Ringline from '../index'

export const HOST = '127.0.0.1'

/**
 * 'ringline': the promise API; 'callback': the callback API (listen and
 * connect with socket handlers); 'net': node:net's own code over
 * ringline/net's sockets (the stream bridge); 'node': node:net (under Bun
 * too, when the child runs there); 'bun': Bun.listen and Bun.connect (a
 * child run by bun).
 */
export type NetEngine = 'ringline' | 'callback' | 'node' | 'net' | 'bun'

/** `conns` connections, each: send `size` bytes, await the whole echo, repeat. */
export interface PingPongJob {
  kind: 'pingpong'
  engine: NetEngine
  /** ringline's engine (the parent also sets RINGLINE_BACKEND to it); unset for node. */
  backend?: Backend
  conns: number
  size: number
}

/**
 * One connection; the client sends `size`-byte messages back to back (each
 * send awaited before the next), the server reads and counts bytes.
 * memory (ringline only): 'plain' = a Buffer.alloc buffer sent without
 * options (copied into library memory), 'zero-copy' = an allocAligned
 * buffer sent with { zeroCopy: true }.
 */
export interface BulkJob {
  kind: 'bulk'
  engine: NetEngine
  /** ringline's engine (the parent also sets RINGLINE_BACKEND to it); unset for node. */
  backend?: Backend
  size: number
  memory: 'plain' | 'zero-copy'
  /** Sends in flight on the connection (1: each awaited before the next). */
  depth: number
}

/** ringline ping-pong for a long time, process RSS sampled every `everyMs` after `warmupMs`. */
export interface SoakJob {
  kind: 'soak'
  backend?: Backend
  conns: number
  size: number
  warmupMs: number
  soakMs: number
  everyMs: number
}

export type NetJob = PingPongJob | BulkJob | SoakJob

export interface RssSample {
  /** Seconds since the end of the warm-up. */
  t: number
  rss: number
  heapUsed: number
  external: number
  arrayBuffers: number
  /** Round trips per second since the previous sample (or the start). */
  roundTripsPerSec: number
  ring?: Record<string, unknown>
}

export interface SoakResult {
  conns: number
  size: number
  warmupSeconds: number
  soakSeconds: number
  roundTrips: number
  samples: RssSample[]
  firstRss: number
  lastRss: number
  maxRss: number
  growthPercent: number
  gcExposed: boolean
  ring?: Record<string, unknown>
}

/** Lines a job may print while it runs (the soak's samples). */
export type Progress = (line: string) => void

const TEARDOWN_MS = 10_000
const MiB = 1 << 20

/** Latency is sampled for every round trip / every send. */
const SAMPLE_EVERY = 1

let rlModule: typeof Ringline | null = null

/**
 * ringline, its default ring (which every job uses) checked to run on
 * `backend`: a build that ignores RINGLINE_BACKEND must not pass for the
 * engine it was not asked for.
 */
async function ringline(backend: Backend | undefined): Promise<typeof Ringline> {
  rlModule ??= await import('../index')
  if (backend !== undefined) {
    const got = rlModule.defaultRing().backend
    if (got !== backend) {
      throw new Error(`asked for backend '${backend}' (RINGLINE_BACKEND=${process.env.RINGLINE_BACKEND ?? 'unset'}), the default ring runs on '${got}'`)
    }
  }
  return rlModule
}

export async function runNetJob(job: NetJob, opts: TimedOptions, progress: Progress): Promise<Measurement | SoakResult> {
  switch (job.kind) {
    case 'pingpong':
      if (job.engine === 'ringline') return ringlinePingPong(job, opts)
      if (job.engine === 'callback') return callbackPingPong(job, opts)
      if (job.engine === 'bun') return bunPingPong(job, opts)
      return nodePingPong(job, opts, await netApi(job.engine))
    case 'bulk':
      if (job.engine === 'ringline') return ringlineBulk(job, opts)
      if (job.engine === 'callback' || job.engine === 'bun') throw new Error(`no bulk workload for '${job.engine}'`)
      return nodeBulk(job, opts, await netApi(job.engine))
    case 'soak':
      return ringlineSoak(job, progress)
  }
}

// ----- ringline ------------------------------------------------------------------

/** The default ring's counters, for the record and for diagnosing a hang. */
function ringStats(rl: typeof Ringline): Record<string, unknown> {
  try {
    const s = rl.defaultRing().stats() as unknown as Record<string, unknown>
    const keep = [
      'backend',
      'degradations',
      'submitted',
      'completed',
      'inFlight',
      'queued',
      'sockets',
      'sends',
      'zeroCopySends',
      'zeroCopySupported',
      'zeroCopyCopied',
      'recvBuffersInUse',
      'recvRearms',
      'registeredBuffers',
      'bounced',
    ]
    const out: Record<string, unknown> = { completion: process.env.RINGLINE_COMPLETION ?? 'thread (default)' }
    for (const k of keep) if (k in s) out[k] = s[k]
    return out
  } catch (e) {
    return { statsError: (e as Error).message }
  }
}

function ringDiag(rl: typeof Ringline): () => string {
  return () =>
    Object.entries(ringStats(rl))
      .map(([k, v]) => `${k} ${String(v)}`)
      .join(', ')
}

/**
 * A ringline listener on HOST with `handle` run for every accepted socket.
 * Errors of a handler before `stopping` is set fail the run (`onError`);
 * during teardown they are expected (the peer went away) and ignored.
 */
interface RlServer {
  listener: Ringline.Listener
  port: number
  /** Settles once the accept loop and every handler have ended. */
  stop: () => Promise<void>
}

async function rlServer(
  rl: typeof Ringline,
  handle: (s: Ringline.Socket) => Promise<void>,
  onError: (e: unknown) => void,
): Promise<RlServer> {
  const listener = await within(rl.listen({ host: HOST, port: 0 }), TEARDOWN_MS, 'listen', ringDiag(rl))
  let stopping = false
  const handlers: Promise<void>[] = []
  const accepted: Ringline.Socket[] = []
  const acceptLoop = (async () => {
    try {
      for await (const s of listener) {
        accepted.push(s)
        handlers.push(
          handle(s)
            .catch((e: unknown) => {
              if (!stopping) onError(e)
            })
            .finally(() => s.close()),
        )
      }
    } catch (e) {
      if (!stopping) onError(e)
    }
  })()
  return {
    listener,
    port: listener.address().port,
    stop: async () => {
      stopping = true
      await within(listener.close(), TEARDOWN_MS, 'Listener.close', ringDiag(rl))
      await within(acceptLoop, TEARDOWN_MS, 'the accept loop (for await of the listener) ending after Listener.close', ringDiag(rl))
      await within(Promise.all(handlers), TEARDOWN_MS, 'server sockets reading end of stream after the clients closed', ringDiag(rl))
      for (const s of accepted) if (!s.closed) throw new Error('a server socket is still open after close()')
    },
  }
}

async function rlConnect(rl: typeof Ringline, port: number, n: number): Promise<Ringline.Socket[]> {
  const out: Ringline.Socket[] = []
  for (let i = 0; i < n; i++) out.push(await within(rl.connect({ host: HOST, port }), TEARDOWN_MS, `connect #${i + 1}`, ringDiag(rl)))
  return out
}

/**
 * Runs `measure`, then closes everything. A failure to tear down (a close
 * that never settles, a handler that never ends) is reported in
 * `info.teardownError` and the measurement kept: it tells about the
 * implementation, not about the speed.
 */
async function rlRun(
  rl: typeof Ringline,
  handle: (s: Ringline.Socket, ctl: () => Control | null) => Promise<void>,
  conns: number,
  measure: (clients: Ringline.Socket[], setCtl: (c: Control) => void) => Promise<Measurement>,
): Promise<Measurement> {
  let ctl: Control | null = null
  let early: unknown = null
  const onError = (e: unknown): void => {
    if (ctl !== null) ctl.fail(e)
    else early ??= e
  }
  const server = await rlServer(rl, (s) => handle(s, () => ctl), onError)
  const clients = await rlConnect(rl, server.port, conns)
  let m: Measurement | undefined
  let error: unknown = null
  try {
    if (early !== null) throw early
    m = await measure(clients, (c) => (ctl = c))
  } catch (e) {
    error = e
  }
  let teardownError: string | null = null
  try {
    await within(Promise.all(clients.map((c) => c.close())), TEARDOWN_MS, 'Socket.close of the clients', ringDiag(rl))
    await server.stop()
  } catch (e) {
    teardownError = (e as Error).message
  }
  if (error !== null) throw error
  m!.info = { ...m!.info, ring: ringStats(rl) }
  if (teardownError !== null) m!.info.teardownError = teardownError
  return m!
}

/** Reads exactly `n` bytes (the echo of one message) from `s`. */
async function recvExactly(s: Ringline.Socket, n: number): Promise<void> {
  let got = 0
  while (got < n) {
    const c = await s.recv()
    if (c === null) throw new Error(`end of stream after ${got} of ${n} echoed bytes`)
    got += c.length
  }
  if (got !== n) throw new Error(`echo of ${n} bytes came back as ${got}`)
}

const ignore = (): void => {}

/** One round trip: the send and the wait for the echo overlap (the echo cannot come before the send anyway). */
async function rlRoundTrip(s: Ringline.Socket, msg: Buffer): Promise<number> {
  const sent = s.send(msg)
  sent.catch(ignore) // awaited below; a rejection while the recv is pending is not unhandled
  await recvExactly(s, msg.length)
  const n = await sent
  return n === msg.length ? 1 : -1
}

/** Echo server: every chunk is sent back before the next is read. */
async function rlEcho(s: Ringline.Socket): Promise<void> {
  s.setNoDelay(true)
  for await (const chunk of s) await s.send(chunk)
}

async function ringlinePingPong(job: PingPongJob, opts: TimedOptions): Promise<Measurement> {
  const rl = await ringline(job.backend)
  const msg = Buffer.alloc(job.size, 0x61)
  return rlRun(rl, rlEcho, job.conns, async (clients, setCtl) => {
    const m = await runTimed(
      opts,
      SAMPLE_EVERY,
      (ctl) => {
        setCtl(ctl)
        return promiseLoops(ctl, job.conns, (slot) => rlRoundTrip(clients[slot], msg), (n) => n)
      },
      ringDiag(rl),
    )
    m.latency += ' (one round trip: send + whole echo received)'
    return m
  })
}

/**
 * The callback API: an echo server of socket handlers, clients whose `data`
 * handler counts the echo and calls the round trip's callback once all of
 * it came. No promise anywhere.
 */
async function callbackPingPong(job: PingPongJob, opts: TimedOptions): Promise<Measurement> {
  const rl = await ringline(job.backend)
  const msg = Buffer.alloc(job.size, 0x61)
  let ctl: Control | null = null
  const fail = (e: unknown): void => ctl?.fail(e)
  const closed = (_s: unknown, e: Error | null): void => {
    if (e !== null && ctl !== null && ctl.state !== 2) fail(e)
  }
  const server = await within(
    rl.listen({ host: HOST, port: 0, socket: { data: (s, c) => void s.write(c), close: closed } }),
    TEARDOWN_MS,
    'listen',
    ringDiag(rl),
  )
  const got = new Array<number>(job.conns).fill(0)
  const waiting: (Callback | null)[] = new Array(job.conns).fill(null)
  const clients: Ringline.CallbackSocket[] = []
  for (let i = 0; i < job.conns; i++) {
    const slot = i
    const data = (_s: unknown, c: Buffer): void => {
      got[slot] += c.length
      const cb = waiting[slot]
      if (cb !== null && got[slot] >= job.size) {
        waiting[slot] = null
        cb(null, got[slot])
      }
    }
    clients.push(await within(rl.connect({ host: HOST, port: server.address().port, socket: { data, close: closed } }), TEARDOWN_MS, `connect #${i + 1}`, ringDiag(rl)))
  }
  try {
    const m = await runTimed(
      opts,
      SAMPLE_EVERY,
      (c) => {
        ctl = c
        return callbackLoops(c, job.conns, job.size, (slot, cb) => {
          got[slot] = 0
          waiting[slot] = cb
          clients[slot].write(msg)
        })
      },
      ringDiag(rl),
    )
    m.latency += ' (one round trip: write + whole echo received)'
    m.info = { ...m.info, ring: ringStats(rl) }
    return m
  } finally {
    for (const c of clients) c.close()
    await within(server.close(), TEARDOWN_MS, 'Listener.close', ringDiag(rl))
  }
}

/** What the Bun child uses of Bun's TCP API. */
interface BunSocket {
  write(data: Uint8Array): number
  end(): void
  setNoDelay?(on: boolean): void
}
interface BunApi {
  listen(o: { hostname: string; port: number; socket: BunHandlers }): { port: number; stop(closeActive?: boolean): void }
  connect(o: { hostname: string; port: number; socket: BunHandlers }): Promise<BunSocket>
}
interface BunHandlers {
  data(s: BunSocket, d: Uint8Array): void
  open?(s: BunSocket): void
  error?(s: BunSocket, e: Error): void
}

/**
 * Bun's own TCP API (Bun.listen, Bun.connect), in a child run by bun: the
 * same echo and the same counting as callbackPingPong. A write that takes
 * less than the 64 B fails the run (it never happened here).
 */
async function bunPingPong(job: PingPongJob, opts: TimedOptions): Promise<Measurement> {
  const bun = (globalThis as unknown as { Bun?: BunApi }).Bun
  if (bun === undefined) throw new Error("engine 'bun' runs only under bun")
  const msg = Buffer.alloc(job.size, 0x61)
  let ctl: Control | null = null
  const short = (n: number, of: number): void => {
    if (n !== of) ctl?.fail(new Error(`Bun socket.write took ${n} of ${of} bytes`))
  }
  const server = bun.listen({
    hostname: HOST,
    port: 0,
    socket: {
      open: (s) => s.setNoDelay?.(true),
      data: (s, d) => short(s.write(d), d.length),
      error: (_s, e) => ctl?.fail(e),
    },
  })
  const got = new Array<number>(job.conns).fill(0)
  const waiting: (Callback | null)[] = new Array(job.conns).fill(null)
  const clients: BunSocket[] = []
  for (let i = 0; i < job.conns; i++) {
    const slot = i
    clients.push(
      await within(
        bun.connect({
          hostname: HOST,
          port: server.port,
          socket: {
            open: (s) => s.setNoDelay?.(true),
            data: (_s, d) => {
              got[slot] += d.length
              const cb = waiting[slot]
              if (cb !== null && got[slot] >= job.size) {
                waiting[slot] = null
                cb(null, got[slot])
              }
            },
            error: (_s, e) => ctl?.fail(e),
          },
        }),
        TEARDOWN_MS,
        `Bun.connect #${i + 1}`,
      ),
    )
  }
  try {
    const m = await runTimed(opts, SAMPLE_EVERY, (c) => {
      ctl = c
      return callbackLoops(c, job.conns, job.size, (slot, cb) => {
        got[slot] = 0
        waiting[slot] = cb
        short(clients[slot].write(msg), msg.length)
      })
    })
    m.latency += ' (one round trip: write + whole echo received)'
    return m
  } finally {
    for (const c of clients) c.end()
    server.stop(true)
  }
}

async function ringlineBulk(job: BulkJob, opts: TimedOptions): Promise<Measurement> {
  const rl = await ringline(job.backend)
  const zc = job.memory === 'zero-copy'
  let bytes = 0
  let chunks = 0
  // Counts what arrives while the window is open (the client's loop moves the phase).
  const sink = async (s: Ringline.Socket, ctl: () => Control | null): Promise<void> => {
    for await (const c of s) {
      if (ctl()?.state === 1) {
        bytes += c.length
        chunks++
      }
    }
  }
  let buf: Buffer
  if (zc) {
    buf = rl.allocAligned(job.size)
    buf.fill(0x62)
  } else {
    buf = Buffer.alloc(job.size, 0x62)
  }
  const sendOptions = zc ? { zeroCopy: true } : undefined
  const before = ringStats(rl)
  return rlRun(rl, sink, 1, async ([client], setCtl) => {
    const m = await runTimed(
      opts,
      SAMPLE_EVERY,
      (ctl) => {
        setCtl(ctl)
        return promiseLoops(
          ctl,
          job.depth,
          () => client.send(buf, sendOptions),
          (n) => (n === job.size ? 1 : -1),
        )
      },
      ringDiag(rl),
    )
    bulkInfo(m, job.size, bytes, chunks)
    m.latency += ' (one send: call to resolution)'
    const after = ringStats(rl)
    const delta = (k: string): number | undefined =>
      typeof after[k] === 'number' && typeof before[k] === 'number' ? (after[k] as number) - (before[k] as number) : undefined
    m.info = {
      ...m.info,
      zeroCopySupported: after.zeroCopySupported,
      zeroCopySendsDelta: delta('zeroCopySends'),
      zeroCopyCopiedDelta: delta('zeroCopyCopied'),
      sendsDelta: delta('sends'),
    }
    if (zc && after.zeroCopySupported === false) m.info.note = '(SENDMSG_ZC not supported here)'
    return m
  })
}

/** GB/s from what the receiver counted inside the window. */
function bulkInfo(m: Measurement, size: number, bytes: number, chunks: number): void {
  m.info = {
    ...m.info,
    messageBytes: size,
    receivedBytes: bytes,
    receivedChunks: chunks,
    meanChunkBytes: chunks > 0 ? Math.round(bytes / chunks) : 0,
    gbps: bytes / m.seconds / 1e9,
    sentGbps: (m.ops * size) / m.seconds / 1e9,
  }
}

async function ringlineSoak(job: SoakJob, progress: Progress): Promise<SoakResult> {
  const rl = await ringline(job.backend)
  const gc = (globalThis as { gc?: () => void }).gc
  const msg = Buffer.alloc(job.size, 0x61)
  let failure: unknown = null
  const server = await rlServer(rl, rlEcho, (e) => (failure ??= e))
  const clients = await rlConnect(rl, server.port, job.conns)
  const samples: RssSample[] = []
  const start = performance.now()
  const warmEnd = start + job.warmupMs
  const end = warmEnd + job.soakMs
  let nextSample = warmEnd
  let roundTrips = 0
  let sinceSample = 0
  let lastSampleAt = start
  let stop = false
  const take = (now: number): void => {
    gc?.()
    const u = process.memoryUsage()
    const s: RssSample = {
      t: Math.round((now - warmEnd) / 1000),
      rss: u.rss,
      heapUsed: u.heapUsed,
      external: u.external,
      arrayBuffers: u.arrayBuffers,
      roundTripsPerSec: Math.round(sinceSample / ((now - lastSampleAt) / 1000)),
      ring: ringStats(rl),
    }
    samples.push(s)
    sinceSample = 0
    lastSampleAt = performance.now()
    const r = s.ring ?? {}
    progress(
      `t=${String(s.t).padStart(4)} s  rss ${(s.rss / MiB).toFixed(1)} MiB  heapUsed ${(s.heapUsed / MiB).toFixed(1)} MiB  ` +
        `external ${(s.external / MiB).toFixed(1)} MiB  ${Math.round(s.roundTripsPerSec)} round trips/s` +
        (r.sockets !== undefined ? `  sockets ${String(r.sockets)}` : '') +
        (r.recvBuffersInUse !== undefined ? `  recvBuffersInUse ${String(r.recvBuffersInUse)}` : ''),
    )
  }
  // The loops poll the clock (timers may not fire while promises settle
  // inline); whichever loop sees a sample due takes it.
  const loop = async (slot: number): Promise<void> => {
    let seq = 0
    while (!stop && failure === null) {
      if ((await rlRoundTrip(clients[slot], msg)) !== 1) throw new Error('short send')
      roundTrips++
      sinceSample++
      if ((++seq & 7) === 0) {
        const now = performance.now()
        if (now >= nextSample) {
          if (nextSample === warmEnd) roundTrips = 0 // counted from the end of the warm-up
          take(now)
          nextSample += job.everyMs
          if (now >= end) stop = true
        }
      }
    }
  }
  progress(`warm-up ${job.warmupMs / 1000} s, then ${job.soakMs / 1000} s sampled every ${job.everyMs / 1000} s`)
  const loops = clients.map((_, i) =>
    loop(i).catch((e: unknown) => {
      failure ??= e
    }),
  )
  // Only fires if the loops stall with the event loop idle (a lost completion).
  let watchdog: NodeJS.Timeout | undefined
  const hung = new Promise<void>((_, reject) => {
    watchdog = setInterval(() => {
      if (performance.now() > end + 30_000) reject(new Error(`soak hung: round trips stopped (${ringDiag(rl)()})`))
    }, 5_000)
  })
  try {
    await Promise.race([Promise.all(loops), hung])
  } finally {
    clearInterval(watchdog)
  }
  if (failure !== null) throw failure
  let teardownError: string | null = null
  try {
    await within(Promise.all(clients.map((c) => c.close())), TEARDOWN_MS, 'Socket.close of the clients', ringDiag(rl))
    await server.stop()
  } catch (e) {
    teardownError = (e as Error).message
  }
  const first = samples[0].rss
  const last = samples[samples.length - 1].rss
  const result: SoakResult = {
    conns: job.conns,
    size: job.size,
    warmupSeconds: job.warmupMs / 1000,
    soakSeconds: job.soakMs / 1000,
    roundTrips,
    samples,
    firstRss: first,
    lastRss: last,
    maxRss: Math.max(...samples.map((s) => s.rss)),
    growthPercent: ((last - first) / first) * 100,
    gcExposed: gc !== undefined,
    ring: ringStats(rl),
  }
  if (teardownError !== null) (result as SoakResult & { teardownError?: string }).teardownError = teardownError
  return result
}

// ----- node:net --------------------------------------------------------------------

/** What the node:net workloads use of a net module: node:net's, or ringline/net's. */
interface NetApi {
  createServer(options: { noDelay: boolean }, onSocket: (s: net.Socket) => void): net.Server
  createConnection(options: { host: string; port: number; noDelay: boolean }, onConnect: () => void): net.Socket
}

/** node:net, or (`'net'`) ringline/net, loaded only by its own jobs. */
async function netApi(engine: NetEngine): Promise<NetApi> {
  if (engine !== 'net') return net
  return (await import('../net')) as unknown as NetApi
}

interface NodeServer {
  port: number
  stop: () => Promise<void>
}

function nodeServer(api: NetApi, onSocket: (s: net.Socket) => void, onError: (e: unknown) => void): Promise<NodeServer> {
  const sockets = new Set<net.Socket>()
  let stopping = false
  const server = api.createServer({ noDelay: true }, (s) => {
    sockets.add(s)
    s.on('error', (e) => {
      if (!stopping) onError(e)
    })
    s.on('close', () => sockets.delete(s))
    onSocket(s)
  })
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, HOST, () => {
      server.off('error', reject)
      const port = (server.address() as net.AddressInfo).port
      resolve({
        port,
        stop: () =>
          within(
            new Promise<void>((res) => {
              stopping = true
              for (const s of sockets) s.destroy()
              server.close(() => res())
            }),
            TEARDOWN_MS,
            'net.Server.close',
          ),
      })
    })
  })
}

function nodeConnect(api: NetApi, port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = api.createConnection({ host: HOST, port, noDelay: true }, () => {
      s.off('error', reject)
      resolve(s)
    })
    s.once('error', reject)
  })
}

async function nodeRun(
  api: NetApi,
  onSocket: (s: net.Socket, ctl: () => Control | null) => void,
  conns: number,
  measure: (clients: net.Socket[], setCtl: (c: Control) => void) => Promise<Measurement>,
): Promise<Measurement> {
  let ctl: Control | null = null
  let early: unknown = null
  const onError = (e: unknown): void => {
    if (ctl !== null) ctl.fail(e)
    else early ??= e
  }
  const server = await nodeServer(api, (s) => onSocket(s, () => ctl), onError)
  const clients: net.Socket[] = []
  for (let i = 0; i < conns; i++) clients.push(await nodeConnect(api, server.port))
  let stopping = false
  for (const c of clients)
    c.on('error', (e) => {
      if (!stopping) onError(e)
    })
  let m: Measurement | undefined
  let error: unknown = null
  try {
    if (early !== null) throw early
    m = await measure(clients, (c) => (ctl = c))
  } catch (e) {
    error = e
  }
  stopping = true
  for (const c of clients) c.destroy()
  let teardownError: string | null = null
  try {
    await server.stop()
  } catch (e) {
    teardownError = (e as Error).message
  }
  if (error !== null) throw error
  if (teardownError !== null) m!.info = { ...m!.info, teardownError }
  return m!
}

async function nodePingPong(job: PingPongJob, opts: TimedOptions, api: NetApi): Promise<Measurement> {
  const msg = Buffer.alloc(job.size, 0x61)
  const echo = (s: net.Socket): void => {
    s.on('data', (d: Buffer) => s.write(d))
  }
  return nodeRun(api, echo, job.conns, async (clients, setCtl) => {
    // Per connection: bytes of the echo received so far and the callback
    // waiting for the whole of it.
    const got = new Array<number>(job.conns).fill(0)
    const waiting: ((err: Error | null, bytes: number) => void)[] = new Array(job.conns).fill(null)
    clients.forEach((c, slot) =>
      c.on('data', (d: Buffer) => {
        got[slot] += d.length
        const cb = waiting[slot]
        if (cb === null) return
        if (got[slot] >= job.size) {
          waiting[slot] = null as unknown as (err: Error | null, bytes: number) => void
          cb(null, got[slot])
        }
      }),
    )
    const m = await runTimed(opts, SAMPLE_EVERY, (ctl) => {
      setCtl(ctl)
      return callbackLoops(ctl, job.conns, job.size, (slot, cb) => {
        got[slot] = 0
        waiting[slot] = cb
        clients[slot].write(msg)
      })
    })
    m.latency += ' (one round trip: write + whole echo received)'
    return m
  })
}

async function nodeBulk(job: BulkJob, opts: TimedOptions, api: NetApi): Promise<Measurement> {
  let bytes = 0
  let chunks = 0
  const sink = (s: net.Socket, ctl: () => Control | null): void => {
    s.on('data', (d: Buffer) => {
      if (ctl()?.state === 1) {
        bytes += d.length
        chunks++
      }
    })
  }
  const buf = Buffer.alloc(job.size, 0x62)
  return nodeRun(api, sink, 1, async ([client], setCtl) => {
    // The write callback runs once libuv has handed every byte to the
    // kernel: the same point at which ringline's send resolves.
    const m = await runTimed(opts, SAMPLE_EVERY, (ctl) => {
      setCtl(ctl)
      return callbackLoops(ctl, job.depth, job.size, (_slot, cb) => {
        client.write(buf, (err) => cb(err ?? null, job.size))
      })
    })
    bulkInfo(m, job.size, bytes, chunks)
    m.latency += ' (one write: call to callback)'
    return m
  })
}
