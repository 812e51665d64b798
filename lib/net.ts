// TCP: Listener (what listen() resolves to) and Socket (what connect() and
// accepting resolve to). Their shape follows node:net where it can; reads
// are pulled (`recv()`, `for await`), sends are promises.
//
// Receiving: the first read starts the socket's receive stream (a multishot
// recv in the kernel). Chunks that arrive before anyone reads are queued
// here; past `highWaterMark` bytes the stream pauses (the kernel stops
// taking data, the peer's window closes) and resumes once the queue is
// below half of it. So a slow reader holds at most about highWaterMark
// bytes, whatever the peer sends.

import { lookup } from 'node:dns/promises'
import { isIP } from 'node:net'
import { Kinds, type RingCore, type StreamSink } from './core'
import { invalidArgType, systemError, withCode, AbortError, type SystemError } from './errors'
import { validateBoolean, validateInteger, validateObject, validateSignal } from './validators'
import type { Ring } from './ring'
import { Socket as NetSocket, wrapSocket } from './net-node'
import { CallbackSocket, callbackSettings, type CallbackSettings, type CallbackSocketOptions, type SocketHandlers } from './net-callback'

const { K_VOID, K_SOCKET } = Kinds

/** Options of `listen()`. */
export interface ListenOptions {
  /** 0 to 65535; default 0 (the system picks a free port). */
  port?: number
  /** An IP address or a name; default `'::'` (IPv6 and IPv4), or `'0.0.0.0'` where IPv6 is missing. */
  host?: string
  /** Length of the queue of connections not yet accepted; default 511. */
  backlog?: number
  /** Accept only IPv6 on an IPv6 address; default false. */
  ipv6Only?: boolean
  /** `SO_REUSEPORT`; default false. */
  reusePort?: boolean
  /** `TCP_NODELAY` on accepted sockets; default true. */
  noDelay?: boolean
  /** Receive queue limit of accepted sockets, in bytes (see `ConnectOptions.highWaterMark`). */
  highWaterMark?: number
}

/**
 * `listen()` options of the callback API: accepted connections go to the
 * `socket` handlers (their `open`, then `data` per chunk, ...) as
 * CallbackSockets, instead of to `accept()` and iteration.
 */
export interface CallbackListenOptions extends ListenOptions {
  socket: SocketHandlers & CallbackSocketOptions
}

/** Options of `connect()`. */
export interface ConnectOptions {
  /** 1 to 65535. */
  port: number
  /** An IP address or a name; default `'localhost'`. */
  host?: string
  /** Address family for name lookup: 0 (any), 4 or 6. */
  family?: 0 | 4 | 6
  /** `TCP_NODELAY`; default true. */
  noDelay?: boolean
  /** `SO_KEEPALIVE`; default false. */
  keepAlive?: boolean
  /**
   * Idle time before the first keep-alive probe, in ms; default 0 (the
   * system's). Longer than the kernel allows (32767 s on Linux): clamped.
   */
  keepAliveInitialDelay?: number
  /** Give up connecting after this many ms (`ETIMEDOUT`). */
  timeout?: number
  signal?: AbortSignal
  /**
   * Bytes received but not yet read before receiving pauses; default 1 MiB.
   * Unread data then waits in the kernel and the peer.
   */
  highWaterMark?: number
}

/**
 * `connect()` options of the callback API: the connection's chunks go to
 * the `socket` handlers, and connect() resolves to a CallbackSocket.
 */
export interface CallbackConnectOptions extends ConnectOptions {
  socket: SocketHandlers & CallbackSocketOptions
}

/** Options of `Socket.send()`. */
export interface SendOptions {
  /**
   * Send with `SENDMSG_ZC`: the kernel reads the memory while sending
   * instead of copying it first, and the promise resolves only after its
   * notification. Zero-copy end to end with `allocAligned` memory; other
   * Buffers are copied into library memory first.
   */
  zeroCopy?: boolean
}

/** An address as node:net's `address()` gives it. */
export interface AddressInfo {
  address: string
  family: 'IPv4' | 'IPv6'
  port: number
}

/** A system error of a socket call, with node:net's `address` and `port`. */
export interface NetError extends SystemError {
  address?: string
  port?: number
}

const DEFAULT_HWM = 1 << 20

function badPort(name: string, value: unknown, allowZero: boolean): RangeError & { code: string } {
  const shown = typeof value === 'number' ? `type number (${value})` : typeof value === 'string' ? `type string ('${value}')` : String(value)
  const e = new RangeError(`${name} should be ${allowZero ? '>=' : '>'} 0 and < 65536. Received ${shown}.`) as RangeError & {
    code: string
  }
  e.code = 'ERR_SOCKET_BAD_PORT'
  // Node prints "RangeError [ERR_SOCKET_BAD_PORT]: ..." from the stack.
  e.stack = e.stack?.replace(/^RangeError/, 'RangeError [ERR_SOCKET_BAD_PORT]')
  return e
}

function validatePort(value: unknown, name: string, allowZero: boolean): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < (allowZero ? 0 : 1) || value > 65535) {
    throw badPort(name, value, allowZero)
  }
  return value
}

function validateHost(value: unknown, name: string, def: string): string {
  if (value === undefined) return def
  if (typeof value !== 'string') throw invalidArgType(name, 'of type string', value)
  return value
}

/** The address to use for `host`: itself if it is an IP, else its lookup. */
async function resolve(host: string, family: 0 | 4 | 6): Promise<string> {
  if (isIP(host) !== 0) return host
  const r = await lookup(host, { family })
  return r.address
}

/** Adds node:net's `address` and `port` to a system error, and its message form. */
function withHostPort(e: unknown, syscall: string, address: string, port: number): unknown {
  const err = e as NetError
  if (e instanceof AbortError || typeof err.errno !== 'number') return e
  err.address = address
  err.port = port
  err.message = `${syscall} ${err.code} ${address}:${port}`
  return err
}

function netError(errno: number, syscall: string, address: string, port: number): NetError {
  return withHostPort(systemError(errno, syscall), syscall, address, port) as NetError
}

function family(f: number): 'IPv4' | 'IPv6' {
  return f === 6 ? 'IPv6' : 'IPv4'
}

/** Bytes of a send: a view, a string (UTF-8), or an array of views. */
function sendData(data: unknown): [ArrayBufferView | ArrayBufferView[], number] {
  if (typeof data === 'string') {
    const b = Buffer.from(data, 'utf8')
    return [b, b.length]
  }
  if (ArrayBuffer.isView(data)) return [data, data.byteLength]
  if (Array.isArray(data)) {
    let total = 0
    for (let i = 0; i < data.length; i++) {
      const v: unknown = data[i]
      if (!ArrayBuffer.isView(v)) {
        throw invalidArgType(`data[${i}]`, 'an instance of Buffer, TypedArray, or DataView', v)
      }
      total += v.byteLength
    }
    return [data as ArrayBufferView[], total]
  }
  throw invalidArgType('data', 'of type string or an instance of Buffer, TypedArray, DataView, or Array', data)
}

/** A pending read: a `recv()` (resolves with the chunk) or an iterator's `next()` (with a result). */
interface Reader {
  iter: boolean
  resolve: (v: never) => void
  reject: (e: Error) => void
}

function settleReader(r: Reader, chunk: Buffer | null): void {
  const resolve = r.resolve as (v: unknown) => void
  if (!r.iter) resolve(chunk)
  else resolve(chunk === null ? { value: undefined, done: true } : { value: chunk, done: false })
}

/**
 * Where a socket in push mode (`Socket._listen`) sends what it receives:
 * each chunk as it arrives, then the end (0 at the peer's end of stream,
 * else -errno).
 */
export interface PushSink {
  data(chunk: Buffer): void
  end(result: number): void
}

/** Settings a Socket is made with. */
interface SocketSettings {
  highWaterMark: number
}

/**
 * Whether a socket's or a listener's stream keeps the process alive
 * (`ref()`/`unref()`), applied to the stream whenever one runs.
 */
class StreamLiveness {
  readonly #core: RingCore
  /** The stream's token while it runs, else -1. */
  #token = -1
  #refed = true

  constructor(core: RingCore) {
    this.#core = core
  }

  /** A stream started under `token`. */
  started(token: number): void {
    this.#token = token
    if (!this.#refed) this.#core.streamRef(token, false)
  }

  /** The stream ended. */
  ended(): void {
    this.#token = -1
  }

  set(refed: boolean): void {
    if (this.#refed === refed) return
    this.#refed = refed
    if (this.#token >= 0) this.#core.streamRef(this.#token, refed)
  }
}

/** A TCP connection. */
export class Socket implements AsyncIterable<Buffer> {
  readonly ring: Ring
  readonly #core: RingCore
  readonly #id: number
  readonly #hwm: number
  #chunks: Buffer[] = []
  #head = 0
  #queued = 0
  /** Pending reads: `recv()` callers and iterator `next()` calls (`iter`). */
  #readers: Reader[] = []
  #streaming = false
  #paused = false
  #ended = false
  #error: Error | null = null
  #closing: Promise<void> | null = null
  #closed = false
  #remote: AddressInfo | undefined
  #local: AddressInfo | undefined
  readonly #live: StreamLiveness
  readonly #sink: StreamSink

  /** @internal Sockets come from `connect()` and `Listener.accept()`. */
  constructor(ring: Ring, core: RingCore, id: number, settings: SocketSettings) {
    this.ring = ring
    this.#core = core
    this.#id = id
    this.#hwm = settings.highWaterMark
    this.#live = new StreamLiveness(core)
    this.#sink = {
      event: (_n, chunk) => this.#onChunk(chunk),
      end: (result) => this.#onEnd(result),
    }
  }

  #onChunk(chunk: Buffer | undefined): void {
    if (chunk === undefined) return
    if (this.#push !== null) {
      this.#push.data(chunk)
      return
    }
    const r = this.#readers.shift()
    if (r !== undefined) {
      settleReader(r, chunk)
      return
    }
    this.#chunks.push(chunk)
    this.#queued += chunk.length
    if (this.#queued >= this.#hwm && !this.#paused && !this.#closed) {
      this.#paused = true
      this.#core.native.recvPause(this.#id, true)
      this.#core.kick()
    }
  }

  #onEnd(result: number): void {
    this.#streaming = false
    this.#live.ended()
    if (this.#push !== null) {
      this.#push.end(result)
      return
    }
    const readers = this.#readers
    this.#readers = []
    if (this.#closed) {
      // Closed by this side: pending reads reject with ECANCELED.
      for (const r of readers) {
        // An iterator just ends when its own side closed.
        if (r.iter) settleReader(r, null)
        else r.reject(systemError(result < 0 ? result : -125, 'recv'))
      }
      return
    }
    if (result === 0) this.#ended = true
    else this.#error = systemError(result, 'recv')
    for (const r of readers) {
      if (this.#error !== null) r.reject(this.#error)
      else settleReader(r, null)
    }
  }

  #take(): Buffer {
    const c = this.#chunks[this.#head]
    this.#chunks[this.#head++] = undefined as unknown as Buffer
    if (this.#head === this.#chunks.length) {
      this.#chunks = []
      this.#head = 0
    }
    this.#queued -= c.length
    if (this.#paused && this.#queued <= this.#hwm >> 1 && !this.#closed) {
      this.#paused = false
      this.#core.native.recvPause(this.#id, false)
      this.#core.kick()
    }
    return c
  }

  /**
   * The next chunk of received bytes (any length from 1), or `null` at the
   * end of the stream (the peer shut down or closed its side).
   */
  recv(): Promise<Buffer | null> {
    return this.#read(false)
  }

  /** Push mode (see PushSink): set by `_listen`. */
  #push: PushSink | null = null

  /**
   * @internal Push mode, for the callback API and ringline/net: receiving
   * starts, and every chunk goes to `sink.data` as it arrives (no queue, no
   * promise), the end to `sink.end`. Not with `recv()` or iteration: a
   * socket that has received that way already gets -EINVAL. Returns 0 or
   * -errno.
   */
  _listen(sink: PushSink): number {
    if (this.#closed) return -9
    if (this.#push !== null || this.#streaming || this.#chunks.length > 0 || this.#ended || this.#error !== null) return -22
    const st = this.#core.stream(this.#sink, (t) => this.#core.native.recvStart(t, this.#id))
    if (st < 0) return st
    this.#push = sink
    this.#streaming = true
    this.#live.started(st)
    return 0
  }

  /** @internal Push mode: stops (true) or resumes (false) receiving. */
  _pause(paused: boolean): void {
    if (this.#closed || this.#push === null || paused === this.#paused) return
    this.#paused = paused
    this.#core.native.recvPause(this.#id, paused)
    this.#core.kick()
  }

  /**
   * @internal A send without a promise: `done(result)` gets the byte count
   * or -errno. The bytes are sent or copied into library memory before
   * this returns, so `data` may be reused at once (except `allocAligned` memory,
   * which is sent in place: reuse it after `done`). Returns 0; or SENT_NOW
   * when the socket took it whole during the call (only with `mayFinishNow`,
   * which says no earlier send of this socket is unsettled; `done` is then
   * never called); or -errno when nothing was sent (`done` is never called).
   */
  _write(data: ArrayBufferView | ArrayBufferView[], done: (result: number) => void, mayFinishNow: boolean): number {
    if (this.#closed) return -9
    return this.#core.sendCb(this.#id, data, done, mayFinishNow)
  }

  #read<T>(iter: boolean): Promise<T> {
    if (this.#push !== null) return Promise.reject(withCode(new Error('recv() on a socket that delivers to callbacks'), 'ERR_INVALID_STATE'))
    if (this.#closed) {
      if (iter) return Promise.resolve({ value: undefined, done: true } as T)
      return Promise.reject(systemError(-9, 'recv'))
    }
    if (this.#head < this.#chunks.length) {
      const c = this.#take()
      return Promise.resolve((iter ? { value: c, done: false } : c) as T)
    }
    if (this.#error !== null) return Promise.reject(this.#error)
    if (this.#ended) return Promise.resolve((iter ? { value: undefined, done: true } : null) as T)
    if (!this.#streaming) {
      const st = this.#core.stream(this.#sink, (t) => this.#core.native.recvStart(t, this.#id))
      if (st < 0) return Promise.reject(systemError(st, 'recv'))
      this.#streaming = true
      this.#live.started(st)
    }
    return new Promise<T>((resolve, reject) => {
      this.#readers.push({ iter, resolve: resolve as (v: never) => void, reject })
    })
  }

  /**
   * Chunks until the end of the stream (or until this side closes the
   * socket); throws on a receive error such as `ECONNRESET`.
   */
  [Symbol.asyncIterator](): AsyncIterator<Buffer> {
    // Hand-written rather than an async generator: one promise per chunk.
    return {
      next: () => this.#read<IteratorResult<Buffer>>(true),
      return: (): Promise<IteratorResult<Buffer>> => Promise.resolve({ value: undefined, done: true }),
    }
  }

  /**
   * Sends `data` (a view, a UTF-8 string, or an array of views sent as one
   * message). Sends of one socket go out whole and in call order. Resolves
   * with the byte count once the kernel has the bytes; `data` may be reused
   * then (with `zeroCopy`, once the kernel's notification said so).
   */
  send(data: ArrayBufferView | string | ArrayBufferView[], options?: SendOptions): Promise<number> {
    try {
      const [bytes, total] = sendData(data)
      let zeroCopy = false
      if (options !== undefined) {
        const o = validateObject(options, 'options')
        if (o.zeroCopy !== undefined) zeroCopy = validateBoolean(o.zeroCopy, 'options.zeroCopy')
      }
      if (this.#closed) return Promise.reject(systemError(-9, 'send'))
      if (total === 0) return Promise.resolve(0)
      return this.#core.send(this.#id, bytes, zeroCopy)
    } catch (e) {
      return Promise.reject(e)
    }
  }

  /**
   * Half-closes the connection (`SHUT_WR`) after every send queued before
   * it: the peer reads the end of the stream; this side can still receive.
   */
  shutdown(): Promise<void> {
    if (this.#closed) return Promise.reject(systemError(-9, 'shutdown'))
    const core = this.#core
    const id = this.#id
    return core.begin<void>(K_VOID, 'shutdown', undefined, undefined, undefined, (t) => core.native.shutdown(t, id))
  }

  /**
   * Closes the socket. Sends and receives still pending reject with
   * `ECANCELED`; later calls reject with `EBADF`. Calling it again returns
   * the same promise.
   */
  close(): Promise<void> {
    if (this.#closing !== null) return this.#closing
    // Addresses stay readable after close.
    this.#remote ??= this.#addr(true)
    this.#local ??= this.#addr(false)
    this.#closed = true
    const core = this.#core
    const id = this.#id
    this.#chunks = []
    this.#head = 0
    this.#queued = 0
    this.#closing = core.begin<void>(K_VOID, 'close', undefined, undefined, undefined, (t) => core.native.closeFile(t, id))
    return this.#closing
  }

  /** Whether `close()` was called. */
  get closed(): boolean {
    return this.#closed
  }

  /**
   * Like node:net `socket.unref()`: this socket's receiving no longer keeps
   * the process alive (it still receives while something else does). Sends,
   * a pending connect and a pending shutdown or close still do.
   */
  unref(): this {
    this.#live.set(false)
    return this
  }

  /** Undoes `unref()` (the default): receiving keeps the process alive. */
  ref(): this {
    this.#live.set(true)
    return this
  }

  #addr(peer: boolean): AddressInfo | undefined {
    if (this.#closed) return undefined
    const a = this.#core.native.sockAddr(this.#id, peer)
    return a === null ? undefined : { address: a.address, family: family(a.family), port: a.port }
  }

  get remoteAddress(): string | undefined {
    return (this.#remote ??= this.#addr(true))?.address
  }

  get remotePort(): number | undefined {
    return (this.#remote ??= this.#addr(true))?.port
  }

  get remoteFamily(): 'IPv4' | 'IPv6' | undefined {
    return (this.#remote ??= this.#addr(true))?.family
  }

  get localAddress(): string | undefined {
    return (this.#local ??= this.#addr(false))?.address
  }

  get localPort(): number | undefined {
    return (this.#local ??= this.#addr(false))?.port
  }

  /** Like node:net `socket.address()`: the local address. */
  address(): AddressInfo | Record<string, never> {
    return (this.#local ??= this.#addr(false)) ?? {}
  }

  /** `TCP_NODELAY` (default true): send small segments at once. */
  setNoDelay(noDelay = true): this {
    this.#option(this.#core.native.setNoDelay(this.#id, validateBoolean(noDelay, 'noDelay')), 'setsockopt')
    return this
  }

  /**
   * `SO_KEEPALIVE`, with the idle time before the first probe in ms (whole
   * seconds count; 0: the system's). A time longer than the kernel allows
   * (32767 s on Linux) is clamped to it, where node:net leaves the system's.
   */
  setKeepAlive(enable = false, initialDelay = 0): this {
    const on = validateBoolean(enable, 'enable')
    const ms = validateInteger(initialDelay, 'initialDelay', 0)
    this.#option(this.#core.native.setKeepAlive(this.#id, on, Math.floor(ms / 1000)), 'setsockopt')
    return this
  }

  #option(status: number, syscall: string): void {
    // Like node:net, options on a closed socket are ignored.
    if (status < 0 && !this.#closed) throw systemError(status, syscall)
  }

  /**
   * A `node:stream` Duplex over this socket that is also shaped like a
   * node:net Socket (see `ringline/net`), for code written for node:net
   * streams (`pipeline`, node:http, tls, http.Agent). Ending it half-closes
   * the socket; destroying it closes the socket once the bytes written
   * before have gone out. `allowHalfOpen` defaults to true here (the
   * readable side ending leaves the writable side open), to false in
   * `ringline/net` as in node:net. One Duplex per socket: calling it again
   * returns the same one.
   */
  stream(options?: { allowHalfOpen?: boolean }): NetSocket {
    if (this.#duplex === undefined) {
      const o = options === undefined ? {} : validateObject(options, 'options')
      const allowHalfOpen = o.allowHalfOpen === undefined ? true : validateBoolean(o.allowHalfOpen, 'options.allowHalfOpen')
      this.#duplex = wrapSocket(this, { allowHalfOpen })
    }
    return this.#duplex
  }

  #duplex: NetSocket | undefined
}

/** A listening TCP socket. Iterate it (or call `accept()`) for connections. */
export class Listener implements AsyncIterable<Socket> {
  readonly ring: Ring
  readonly #core: RingCore
  readonly #id: number
  readonly #noDelay: boolean
  readonly #settings: SocketSettings
  #queue: Socket[] = []
  #waiters: { resolve: (s: Socket | null) => void; reject: (e: Error) => void }[] = []
  #streaming = false
  readonly #live: StreamLiveness
  #closing: Promise<void> | null = null
  #closed = false
  readonly #address: AddressInfo
  readonly #sink: StreamSink
  /** The callback API's handlers: accepted sockets go to them. */
  readonly #callbacks: CallbackSettings | null

  /** @internal Listeners come from `listen()`. */
  constructor(
    ring: Ring,
    core: RingCore,
    id: number,
    address: AddressInfo,
    noDelay: boolean,
    settings: SocketSettings,
    callbacks: CallbackSettings | null,
  ) {
    this.ring = ring
    this.#callbacks = callbacks
    this.#core = core
    this.#live = new StreamLiveness(core)
    this.#id = id
    this.#address = address
    this.#noDelay = noDelay
    this.#settings = settings
    this.#sink = {
      event: (handle) => this.#onAccepted(handle),
      end: (result) => this.#onEnd(result),
    }
  }

  #onAccepted(handle: number): void {
    const s = new Socket(this.ring, this.#core, handle, this.#settings)
    if (this.#noDelay) this.#core.native.setNoDelay(handle, true)
    if (this.#closed) {
      void s.close()
      return
    }
    if (this.#callbacks !== null) {
      new CallbackSocket(s, this.#callbacks)._start()
      return
    }
    const w = this.#waiters.shift()
    if (w !== undefined) w.resolve(s)
    else this.#queue.push(s)
  }

  #onEnd(result: number): void {
    this.#streaming = false
    this.#live.ended()
    const waiters = this.#waiters
    this.#waiters = []
    const err = !this.#closed && result < 0 ? netError(result, 'accept', this.#address.address, this.#address.port) : null
    if (err !== null && this.#callbacks !== null) {
      // Nobody awaits an accept here: like a net.Server 'error' with no
      // listener, it surfaces as an uncaught exception.
      queueMicrotask(() => {
        throw err
      })
      return
    }
    for (const w of waiters) {
      if (err !== null) w.reject(err)
      else w.resolve(null)
    }
  }

  /** The address listened on, like node:net `server.address()`. */
  address(): AddressInfo {
    return { ...this.#address }
  }

  /** The next connection, or `null` once the listener is closed. */
  accept(): Promise<Socket | null> {
    if (this.#callbacks !== null) {
      return Promise.reject(withCode(new Error('accept() on a listener whose connections go to socket handlers'), 'ERR_INVALID_STATE'))
    }
    return this.#accept()
  }

  #accept(): Promise<Socket | null> {
    const s = this.#queue.shift()
    if (s !== undefined) return Promise.resolve(s)
    if (this.#closed) return Promise.resolve(null)
    if (!this.#streaming) {
      const st = this.#core.stream(this.#sink, (t) => this.#core.native.acceptStart(t, this.#id))
      if (st < 0) return Promise.reject(netError(st, 'accept', this.#address.address, this.#address.port))
      this.#streaming = true
      this.#live.started(st)
    }
    return new Promise((resolve, reject) => {
      this.#waiters.push({ resolve, reject })
    })
  }

  /**
   * @internal The callback API: accepts from now on, each connection to
   * the handlers. Returns 0 or -errno.
   */
  _acceptToHandlers(): number {
    const st = this.#core.stream(this.#sink, (t) => this.#core.native.acceptStart(t, this.#id))
    if (st < 0) return st
    this.#streaming = true
    this.#live.started(st)
    return 0
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Socket> {
    for (;;) {
      const s = await this.accept()
      if (s === null) return
      yield s
    }
  }

  /**
   * Stops listening. Pending `accept()` calls resolve with `null` and
   * iteration ends; sockets accepted before stay open, except those nobody
   * took yet, which are closed.
   */
  close(): Promise<void> {
    if (this.#closing !== null) return this.#closing
    this.#closed = true
    const core = this.#core
    const id = this.#id
    this.#closing = core.begin<void>(K_VOID, 'close', undefined, undefined, undefined, (t) => core.native.closeFile(t, id))
    const waiters = this.#waiters
    this.#waiters = []
    for (const w of waiters) w.resolve(null)
    const unclaimed = this.#queue
    this.#queue = []
    for (const s of unclaimed) void s.close()
    return this.#closing
  }

  /** Whether `close()` was called. */
  get closed(): boolean {
    return this.#closed
  }

  /** Like node:net `server.unref()`: accepting no longer keeps the process alive. */
  unref(): this {
    this.#live.set(false)
    return this
  }

  /** Undoes `unref()` (the default). */
  ref(): this {
    this.#live.set(true)
    return this
  }
}

function hwmOption(o: Record<string, unknown>): number {
  return o.highWaterMark === undefined ? DEFAULT_HWM : validateInteger(o.highWaterMark, 'options.highWaterMark', 1, 2 ** 31 - 1)
}

/** `ring.listen()`: see `Ring.listen`. */
export async function listenOn(ring: Ring, core: RingCore, options: ListenOptions | CallbackListenOptions | undefined): Promise<Listener> {
  const o = options === undefined ? {} : validateObject(options, 'options')
  const port = o.port === undefined ? 0 : validatePort(o.port, 'options.port', true)
  const host = validateHost(o.host, 'options.host', '')
  const backlog = o.backlog === undefined ? 511 : validateInteger(o.backlog, 'options.backlog', 0, 2 ** 31 - 1)
  const ipv6Only = o.ipv6Only === undefined ? false : validateBoolean(o.ipv6Only, 'options.ipv6Only')
  const reusePort = o.reusePort === undefined ? false : validateBoolean(o.reusePort, 'options.reusePort')
  const noDelay = o.noDelay === undefined ? true : validateBoolean(o.noDelay, 'options.noDelay')
  const settings = { highWaterMark: hwmOption(o) }
  const callbacks = o.socket === undefined ? null : callbackSettings(o.socket, 'options.socket')
  if (core.closed) throw systemError(-125, 'listen')
  let address = host === '' ? '::' : await resolve(host, 0)
  let id = core.native.listen(address, port, backlog, ipv6Only, reusePort)
  if (id < 0 && host === '' && (id === -97 || id === -99)) {
    // No IPv6 here (EAFNOSUPPORT, EADDRNOTAVAIL): IPv4 only.
    address = '0.0.0.0'
    id = core.native.listen(address, port, backlog, ipv6Only, reusePort)
  }
  if (id < 0) throw netError(id, 'listen', address, port)
  const a = core.native.sockAddr(id, false)
  const info: AddressInfo = a === null ? { address, family: isIP(address) === 6 ? 'IPv6' : 'IPv4', port } : { address: a.address, family: family(a.family), port: a.port }
  const listener = new Listener(ring, core, id, info, noDelay, settings, callbacks)
  if (callbacks !== null) {
    const st = listener._acceptToHandlers()
    if (st < 0) {
      await listener.close().catch(() => undefined)
      throw netError(st, 'accept', info.address, info.port)
    }
  }
  return listener
}

/** `ring.connect()`: see `Ring.connect`. */
export async function connectOn(ring: Ring, core: RingCore, options: ConnectOptions | CallbackConnectOptions): Promise<Socket | CallbackSocket> {
  const o = validateObject(options, 'options')
  const port = validatePort(o.port, 'options.port', false)
  const host = validateHost(o.host, 'options.host', 'localhost')
  const fam = o.family === undefined ? 0 : o.family
  if (fam !== 0 && fam !== 4 && fam !== 6) throw invalidArgType('options.family', 'one of 0, 4, 6', fam)
  const noDelay = o.noDelay === undefined ? true : validateBoolean(o.noDelay, 'options.noDelay')
  const keepAlive = o.keepAlive === undefined ? false : validateBoolean(o.keepAlive, 'options.keepAlive')
  const keepAliveDelay = o.keepAliveInitialDelay === undefined ? 0 : validateInteger(o.keepAliveInitialDelay, 'options.keepAliveInitialDelay', 0)
  const timeout = o.timeout === undefined ? -1 : validateInteger(o.timeout, 'options.timeout', 0)
  const signal = validateSignal(o.signal)
  const settings = { highWaterMark: hwmOption(o) }
  const callbacks = o.socket === undefined ? null : callbackSettings(o.socket, 'options.socket')
  if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason })
  const address = await resolve(host, fam)
  const make = (id: number): Socket => new Socket(ring, core, id, settings)
  let sock: Socket
  try {
    sock = await core.begin<Socket>(K_SOCKET, 'connect', make, undefined, signal, (t) => core.native.connect(t, address, port, timeout))
  } catch (e) {
    throw withHostPort(e, 'connect', address, port)
  }
  // From here on the socket exists: whatever fails closes it before the
  // promise rejects, so a rejected connect() never leaves a connection open.
  try {
    if (noDelay) sock.setNoDelay(true)
    if (keepAlive) sock.setKeepAlive(true, keepAliveDelay)
  } catch (e) {
    await sock.close().catch(() => undefined)
    throw e
  }
  if (callbacks === null) return sock
  const cs = new CallbackSocket(sock, callbacks)
  cs._start()
  return cs
}
