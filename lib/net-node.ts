// ringline/net: node:net's shape over ringline sockets, for code that takes
// a net.Socket or a net.Server (node:http's server and client, http.Agent,
// tls). `Socket` is a Duplex with net.Socket's members and semantics (see
// node's lib/net.js); `Server` an EventEmitter shaped like net.Server.
//
// What ringline takes from node (node:net's isIP, node:stream's Duplex,
// node:events' EventEmitter, the timer functions) it takes at load, so
// a program may patch node:net with these functions.

import * as nodeNet from 'node:net'
import * as nodeStream from 'node:stream'
import * as nodeEvents from 'node:events'
import { SENT_NOW } from './core'
import { defaultRing } from './default'
import { codedError, invalidArgType, systemError, withCode } from './errors'
import { validateBoolean, validateInteger, validateObject } from './validators'
import type { AddressInfo, Listener, Socket as RingSocket } from './net'
import type { Ring } from './ring'

export const isIP: (input: string) => number = nodeNet.isIP
export const isIPv4: (input: string) => boolean = nodeNet.isIPv4
export const isIPv6: (input: string) => boolean = nodeNet.isIPv6
const Duplex = nodeStream.Duplex
const EventEmitter = nodeEvents.EventEmitter
const setTimer = globalThis.setTimeout
const clearTimer = globalThis.clearTimeout
const nextTick = process.nextTick

/**
 * After `destroy()` (without an error), how long the socket waits for the
 * sends already under way before it closes anyway (a peer that does not
 * read would otherwise hold it open).
 */
const DESTROY_GRACE_MS = 2000

/** Options of `new Socket()`. */
export interface SocketOptions {
  /** Keep the writable side open after the peer ends (default false, as node:net). */
  allowHalfOpen?: boolean
  /** The ring to connect on; default this thread's default ring. */
  ring?: Ring
  /** Destroys the socket (with an AbortError) when it fires. */
  signal?: AbortSignal
}

/** Options of `connect()`, `createConnection()` and `socket.connect()`. */
export interface TcpConnectOptions {
  /** 1 to 65535. */
  port: number
  /** An IP address or a name; default `'localhost'`. */
  host?: string
  family?: 0 | 4 | 6
  /** `TCP_NODELAY`; default false, as node:net. */
  noDelay?: boolean
  keepAlive?: boolean
  keepAliveInitialDelay?: number
  /** Idle timeout in ms, as `socket.setTimeout()` (not a connect timeout). */
  timeout?: number
  /** Receive queue limit of the ringline socket, in bytes (see `ConnectOptions.highWaterMark`). */
  highWaterMark?: number
}

/** Options of `createServer()` and `new Server()`. */
export interface ServerOptions {
  allowHalfOpen?: boolean
  /** Accepted sockets start paused. */
  pauseOnConnect?: boolean
  /** `TCP_NODELAY` on accepted sockets; default false, as node:net. */
  noDelay?: boolean
  keepAlive?: boolean
  keepAliveInitialDelay?: number
  /** Receive queue limit of accepted ringline sockets, in bytes. */
  highWaterMark?: number
  /** The ring to listen on; default this thread's default ring. */
  ring?: Ring
}

/** Options of `server.listen(options)`. */
export interface ServerListenOptions {
  port?: number
  host?: string
  backlog?: number
  ipv6Only?: boolean
  reusePort?: boolean
  /** Accepted and ignored (no cluster here). */
  exclusive?: boolean
  /** Closes the server when it fires. */
  signal?: AbortSignal
}

type Callback = (err?: Error | null) => void

/** withCode already prints the code in the stack (it was added twice: "Error [X] [X]: ..."). */
const nodeError = codedError

function isTimer(t: unknown): t is NodeJS.Timeout {
  return typeof t === 'object' && t !== null
}

let attachTo!: (s: Socket, rs: RingSocket) => void
let flushSocket!: (s: Socket) => void

/** Sockets with writes of this tick not yet handed to the ring; one microtask flushes them all. */
let toFlush: Socket[] = []

function flushWrites(): void {
  const list = toFlush
  toFlush = []
  for (let i = 0; i < list.length; i++) flushSocket(list[i])
}

const RECV_OFF = 0
const RECV_ON = 1
const RECV_PAUSED = 2
const RECV_ENDED = 3

/** A TCP socket shaped like node:net's Socket (a Duplex), over a ringline socket. */
export class Socket extends Duplex {
  /** The server that accepted it (node:http sets it too). */
  server: unknown = null
  #rs: RingSocket | null = null
  readonly #ring: Ring | undefined
  #connecting = false
  #readWanted = false
  /** The receive stream: RECV_OFF (not started), _ON, _PAUSED, _ENDED. */
  #receiving = RECV_OFF
  #refed = true
  #reset = false
  #noDelay: boolean | undefined
  #keepAlive: [boolean, number] | undefined
  /** A write and the end that came before the connection did. */
  #heldWrite: { chunk: Buffer | null; chunks: { chunk: Buffer }[] | null; cb: Callback } | null = null
  #heldFinal: Callback | null = null
  #dispatched = 0
  /** Bytes handed to the ring whose write callback waits for them. */
  #waiting = 0
  #inflight = 0
  #sending = 0
  #drained: (() => void) | null = null
  #bytesRead = 0
  #timeoutMs = 0
  #timer: NodeJS.Timeout | null = null
  /** The delay #timer was made with. */
  #timerMs = 0

  static {
    attachTo = (s, rs) => s.#attach(rs)
    flushSocket = (s) => s.#flush()
  }

  constructor(options?: SocketOptions) {
    const o = options === undefined ? {} : validateObject(options, 'options')
    const allowHalfOpen = o.allowHalfOpen === undefined ? false : validateBoolean(o.allowHalfOpen, 'options.allowHalfOpen')
    // 'close' is emitted here, with node's hadError argument (see _destroy).
    super({ allowHalfOpen, decodeStrings: true, emitClose: false })
    this.#ring = o.ring as Ring | undefined
    const signal = o.signal as AbortSignal | undefined
    if (signal !== undefined) {
      const onAbort = (): void => {
        const e = withCode(new Error('The operation was aborted', { cause: signal.reason }), 'ABORT_ERR')
        e.name = 'AbortError'
        this.destroy(e)
      }
      if (signal.aborted) nextTick(onAbort)
      else {
        signal.addEventListener('abort', onAbort, { once: true })
        this.once('close', () => signal.removeEventListener('abort', onAbort))
      }
    }
  }

  #attach(rs: RingSocket): void {
    this.#rs = rs
    if (!this.#refed) rs.unref()
    if (this.#noDelay !== undefined) rs.setNoDelay(this.#noDelay)
    if (this.#keepAlive !== undefined) rs.setKeepAlive(this.#keepAlive[0], this.#keepAlive[1])
  }

  /**
   * Connects (like node:net `socket.connect()`): `(port[, host][, listener])`
   * or `(options[, listener])`. Returns at once; writes made before the
   * connection is up are sent once it is, 'connect' and 'ready' follow it,
   * and a failure destroys the socket with the error ('error', 'close').
   */
  connect(options: TcpConnectOptions, connectListener?: () => void): this
  connect(port: number, host?: string, connectListener?: () => void): this
  connect(port: number, connectListener?: () => void): this
  connect(...args: unknown[]): this {
    const [o, cb] = normalizeConnectArgs(args)
    if (this.#rs !== null || this.#connecting) throw nodeError('ERR_SOCKET_CONNECTING', 'Socket is already connected or connecting')
    if (this.destroyed) throw nodeError('ERR_SOCKET_CLOSED', 'Socket is closed')
    if (cb !== undefined) this.once('connect', cb)
    if (o.timeout !== undefined) this.setTimeout(o.timeout)
    if (o.noDelay !== undefined) this.#noDelay = o.noDelay
    if (o.keepAlive) this.#keepAlive = [true, o.keepAliveInitialDelay ?? 0]
    this.#connecting = true
    const ring = this.#ring ?? defaultRing()
    ring
      .connect({
        port: o.port,
        host: o.host,
        family: o.family,
        noDelay: this.#noDelay ?? false,
        highWaterMark: o.highWaterMark,
      })
      .then(
        (rs) => {
          this.#connecting = false
          if (this.destroyed) {
            void rs.close()
            return
          }
          this.#attach(rs)
          this.#active()
          this.emit('connect')
          this.emit('ready')
          const w = this.#heldWrite
          this.#heldWrite = null
          if (w !== null) this.#send(w.chunk, w.chunks, w.cb)
          const f = this.#heldFinal
          this.#heldFinal = null
          if (f !== null) this._final(f)
          // As node's: start reading at once, so the peer's end is seen. A
          // read asked for before the connection was up is still owed: the
          // stream does not ask again (it waits for a push), so start it.
          if (this.#readWanted) {
            this.#readWanted = false
            this._read()
          } else if (!this.isPaused()) this.read(0)
        },
        (e: Error) => {
          this.#connecting = false
          this.destroy(e)
        },
      )
    return this
  }

  override _read(): void {
    const rs = this.#rs
    if (rs === null) {
      this.#readWanted = true
      return
    }
    if (this.#receiving === RECV_PAUSED) {
      this.#receiving = RECV_ON
      rs._pause(false)
      return
    }
    if (this.#receiving !== RECV_OFF) return
    // Push mode: every chunk comes to #onData as it arrives (no promise per
    // chunk); past the readable highWaterMark receiving pauses until the
    // stream asks again (as libuv's readStop/readStart).
    this.#receiving = RECV_ON
    const st = rs._listen(this.#sink)
    if (st < 0) {
      this.#receiving = RECV_OFF
      if (!this.destroyed) this.destroy(systemError(st, 'recv'))
    }
  }

  readonly #sink = {
    data: (c: Buffer): void => this.#onData(c),
    end: (result: number): void => this.#onEnd(result),
  }

  #onData(c: Buffer): void {
    if (this.destroyed) return
    this.#bytesRead += c.length
    this.#active()
    if (!this.push(c) && this.#receiving === RECV_ON && !this.destroyed) {
      this.#receiving = RECV_PAUSED
      this.#rs!._pause(true)
    }
  }

  #onEnd(result: number): void {
    this.#receiving = RECV_ENDED
    if (this.destroyed) return
    if (result < 0) {
      this.destroy(systemError(result, 'recv'))
      return
    }
    this.push(null)
    // As node's: 'end' comes even if nobody reads (nothing is buffered).
    this.read(0)
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, cb: Callback): void {
    this.#send(chunk, null, cb)
  }

  override _writev(chunks: { chunk: Buffer }[], cb: Callback): void {
    this.#send(null, chunks, cb)
  }

  /**
   * Takes the bytes as libuv takes a write: the callback waits for the
   * send only past the writable highWaterMark of bytes under way. The
   * writes of one tick go to the ring together, as one send per socket, at
   * its end (flushWrites; node:http writes a response per tick, ten of them
   * for ten pipelined requests): sends of a socket go out one after
   * another, each a segment and a wakeup of the peer. _final and _destroy
   * flush first.
   */
  #send(chunk: Buffer | null, chunks: { chunk: Buffer }[] | null, cb: Callback): void {
    if (this.#rs === null) {
      this.#heldWrite = { chunk, chunks, cb }
      return
    }
    let len = 0
    if (chunk !== null) {
      len = chunk.length
      if (len > 0) this.#batch.push(chunk)
    } else {
      for (let i = 0; i < chunks!.length; i++) {
        const b = chunks![i].chunk
        if (b.length === 0) continue
        this.#batch.push(b)
        len += b.length
      }
    }
    if (len === 0) {
      cb()
      return
    }
    this.#dispatched += len
    this.#active()
    const wait = this.#inflight + len > this.writableHighWaterMark
    this.#inflight += len
    this.#batchLen += len
    if (wait) {
      this.#waiting += len
      this.#batchWaitLen += len
      ;(this.#batchCbs ??= []).push(cb)
    }
    if (!this.#flushQueued) {
      this.#flushQueued = true
      toFlush.push(this)
      if (toFlush.length === 1) queueMicrotask(flushWrites)
    }
    if (!wait) cb()
  }

  /** This tick's writes, handed to the ring as one send by #flush. */
  #batch: Buffer[] = []
  #batchLen = 0
  /** Bytes of the batch whose callbacks wait for its send, and those callbacks. */
  #batchWaitLen = 0
  #batchCbs: Callback[] | null = null
  #flushQueued = false
  /**
   * The sends under way, oldest first (a socket's sends complete in
   * order): their bytes, the bytes whose callbacks wait for them, and
   * those callbacks.
   */
  #sentLen: number[] = []
  #sentWait: number[] = []
  #sentCbs: (Callback[] | null)[] = []
  #sentHead = 0
  readonly #onSent = (result: number): void => this.#sent(result)

  #flush(): void {
    this.#flushQueued = false
    const len = this.#batchLen
    const rs = this.#rs
    if (len === 0 || rs === null) return
    const bufs = this.#batch
    const waitLen = this.#batchWaitLen
    const cbs = this.#batchCbs
    this.#batch = []
    this.#batchLen = 0
    this.#batchWaitLen = 0
    this.#batchCbs = null
    // No promise per send: the ring calls #onSent with the byte count or
    // -errno, unless the socket took it whole during the call.
    const st = rs._write(bufs.length === 1 ? bufs[0] : bufs, this.#onSent, this.#sending === 0)
    if (st === SENT_NOW || st < 0) {
      this.#settle(len, waitLen, cbs, st < 0 ? st : len)
      return
    }
    this.#sentLen.push(len)
    this.#sentWait.push(waitLen)
    this.#sentCbs.push(cbs)
    this.#sending++
  }

  /** The oldest send under way completed. */
  #sent(result: number): void {
    const i = this.#sentHead++
    const len = this.#sentLen[i]
    const waitLen = this.#sentWait[i]
    const cbs = this.#sentCbs[i]
    if (this.#sentHead === this.#sentLen.length) {
      this.#sentLen.length = 0
      this.#sentWait.length = 0
      this.#sentCbs.length = 0
      this.#sentHead = 0
    }
    this.#sending--
    this.#settle(len, waitLen, cbs, result)
  }

  /** A send of `len` bytes is over (`result`: its byte count, or -errno). */
  #settle(len: number, waitLen: number, cbs: Callback[] | null, result: number): void {
    this.#inflight -= len
    this.#waiting -= waitLen
    if (this.#sending === 0 && this.#drained !== null) this.#drained()
    const e = result < 0 ? systemError(result, 'send') : null
    if (e === null) this.#active()
    if (cbs !== null) for (const cb of cbs) cb(e)
    if (e !== null && !this.destroyed) this.destroy(e)
  }

  override _final(cb: Callback): void {
    const rs = this.#rs
    if (rs === null) {
      this.#heldFinal = cb
      return
    }
    this.#flush()
    rs.shutdown().then(
      () => cb(),
      (e: Error & { code?: string }) => cb(e.code === 'ENOTCONN' ? null : e),
    )
  }

  override _destroy(err: Error | null, cb: Callback): void {
    this.#clearTimer()
    this.#connecting = false
    const rs = this.#rs
    // As node:net: 'close' after the socket is closed (and after 'error',
    // which the stream emits on the next tick), saying whether an error
    // closed it.
    const done = (): void => {
      cb(err)
      nextTick(() => this.emit('close', err != null))
    }
    if (rs === null) {
      // A connect still under way closes its socket when it arrives.
      done()
      return
    }
    this.#flush()
    let closed = false
    const close = (): void => {
      if (closed) return
      closed = true
      this.#drained = null
      rs.close().then(done, done)
    }
    // Bytes written before destroy() go out first, also when destroyed
    // with an error (node:http answers 400/408 with write() then
    // destroy(err)), unless reset.
    if (this.#reset || this.#sending === 0) {
      close()
      return
    }
    this.#drained = close
    setTimer(close, DESTROY_GRACE_MS).unref()
  }

  /** Ends the writable side, then destroys the socket once it finished. */
  destroySoon(): void {
    if (this.writable) this.end()
    if (this.writableFinished) this.destroy()
    else this.once('finish', () => this.destroy())
  }

  /**
   * Destroys the socket without waiting for the bytes under way. (node:net
   * sends a RST; ringline has no SO_LINGER: the peer sees a RST only if
   * received bytes were left unread, else a FIN.)
   */
  resetAndDestroy(): this {
    if (this.#rs === null && !this.#connecting) {
      this.destroy(nodeError('ERR_SOCKET_CLOSED', 'Socket is closed'))
      return this
    }
    if (this.#connecting) {
      this.once('connect', () => this.resetAndDestroy())
      return this
    }
    this.#reset = true
    this.destroy()
    return this
  }

  /**
   * Emits 'timeout' after `msecs` ms without activity (bytes received or
   * sent); 0 turns it off. Like node's, the timer does not keep the process
   * alive and the socket stays open (close it in a 'timeout' listener).
   */
  setTimeout(msecs: number, callback?: () => void): this {
    if (typeof msecs !== 'number' || !Number.isFinite(msecs) || msecs < 0) throw invalidArgType('msecs', 'a non-negative number', msecs)
    this.#timeoutMs = msecs
    if (msecs === 0) {
      // The timer stays (it does nothing when it fires now) for the next
      // setTimeout() to re-arm: node:http turns the keep-alive timeout off
      // when a request comes and on again when its response is done.
      if (callback !== undefined) this.removeListener('timeout', callback)
      return this
    }
    if (callback !== undefined) this.once('timeout', callback)
    if (this.destroyed) return this
    const t = this.#timer
    if (t !== null && this.#timerMs === msecs && isTimer(t)) t.refresh()
    else {
      this.#clearTimer()
      this.#timer = setTimer(this.#onTimeout, msecs).unref()
      this.#timerMs = msecs
    }
    return this
  }

  readonly #onTimeout = (): void => {
    if (this.#timeoutMs !== 0) this.emit('timeout')
  }

  /** The idle timeout in ms (0: none). */
  get timeout(): number {
    return this.#timeoutMs
  }

  #active(): void {
    if (this.#timeoutMs !== 0 && isTimer(this.#timer)) this.#timer.refresh()
  }

  #clearTimer(): void {
    if (this.#timer !== null) clearTimer(this.#timer)
    this.#timer = null
  }

  /** Receiving on this socket no longer keeps the process alive. */
  ref(): this {
    this.#refed = true
    this.#rs?.ref()
    return this
  }

  /** Receiving keeps the process alive again (the default). */
  unref(): this {
    this.#refed = false
    this.#rs?.unref()
    return this
  }

  setNoDelay(noDelay = true): this {
    this.#noDelay = validateBoolean(noDelay, 'noDelay')
    if (this.#rs !== null && !this.destroyed) this.#rs.setNoDelay(this.#noDelay)
    return this
  }

  setKeepAlive(enable = false, initialDelay = 0): this {
    this.#keepAlive = [validateBoolean(enable, 'enable'), validateInteger(initialDelay, 'initialDelay', 0)]
    if (this.#rs !== null && !this.destroyed) this.#rs.setKeepAlive(this.#keepAlive[0], this.#keepAlive[1])
    return this
  }

  /** Bytes received. */
  get bytesRead(): number {
    return this.#bytesRead
  }

  /** Bytes handed to the socket to send, and those written but still buffered. */
  get bytesWritten(): number {
    return this.#dispatched + (this.destroyed ? 0 : this.writableLength - this.#waiting)
  }

  /** Whether a connect is under way. */
  get connecting(): boolean {
    return this.#connecting
  }

  /** Not connected yet (or never). */
  get pending(): boolean {
    return this.#rs === null || this.#connecting
  }

  get readyState(): 'opening' | 'open' | 'readOnly' | 'writeOnly' | 'closed' {
    if (this.#connecting) return 'opening'
    if (this.readable && this.writable) return 'open'
    if (this.readable && !this.writable) return 'readOnly'
    if (!this.readable && this.writable) return 'writeOnly'
    return 'closed'
  }

  get remoteAddress(): string | undefined {
    return this.#rs?.remoteAddress
  }

  get remotePort(): number | undefined {
    return this.#rs?.remotePort
  }

  get remoteFamily(): 'IPv4' | 'IPv6' | undefined {
    return this.#rs?.remoteFamily
  }

  get localAddress(): string | undefined {
    return this.#rs?.localAddress
  }

  get localPort(): number | undefined {
    return this.#rs?.localPort
  }

  get localFamily(): 'IPv4' | 'IPv6' | undefined {
    const a = this.#rs?.address()
    return a === undefined || !('family' in a) ? undefined : a.family
  }

  /** The local address, or `{}` before the connection is up. */
  address(): AddressInfo | Record<string, never> {
    return this.#rs?.address() ?? {}
  }

  /** The ringline socket under it (null while connecting). */
  get ringSocket(): RingSocket | null {
    return this.#rs
  }
}

/** @internal A Socket over an existing ringline socket (`stream()`, accepting). */
export function wrapSocket(rs: RingSocket, options: { allowHalfOpen: boolean }): Socket {
  const s = new Socket({ allowHalfOpen: options.allowHalfOpen })
  attachTo(s, rs)
  return s
}

function validatePortArg(port: unknown, name: string, allowZero: boolean): number {
  const n = typeof port === 'string' && port.trim() !== '' ? Number(port) : port
  if (typeof n !== 'number' || !Number.isInteger(n) || n < (allowZero ? 0 : 1) || n > 65535) {
    const e = new RangeError(`${name} should be >${allowZero ? '=' : ''} 0 and < 65536. Received ${typeof port === 'string' ? `type string ('${port}')` : String(port)}.`)
    withCode(e, 'ERR_SOCKET_BAD_PORT')
    throw e
  }
  return n
}

function normalizeConnectArgs(args: unknown[]): [TcpConnectOptions, (() => void) | undefined] {
  const last = args[args.length - 1]
  const cb = typeof last === 'function' ? (last as () => void) : undefined
  const a = cb === undefined ? args : args.slice(0, -1)
  let o: TcpConnectOptions
  if (typeof a[0] === 'object' && a[0] !== null) {
    const raw = a[0] as Record<string, unknown>
    if (raw.path !== undefined) throw invalidArgType('options.path', 'undefined (ringline/net has TCP only)', raw.path)
    o = { ...(raw as unknown as TcpConnectOptions) }
  } else {
    o = { port: a[0] as number }
    if (a[1] !== undefined) o.host = a[1] as string
  }
  o.port = validatePortArg(o.port, 'Port', false)
  if (o.host !== undefined && typeof o.host !== 'string') throw invalidArgType('options.host', 'of type string', o.host)
  if (o.noDelay !== undefined) validateBoolean(o.noDelay, 'options.noDelay')
  if (o.keepAlive !== undefined) validateBoolean(o.keepAlive, 'options.keepAlive')
  return [o, cb]
}

/** Like node:net `createConnection()`: a Socket, connecting, returned at once. */
export function createConnection(options: TcpConnectOptions & SocketOptions, connectListener?: () => void): Socket
export function createConnection(port: number, host?: string, connectListener?: () => void): Socket
export function createConnection(port: number, connectListener?: () => void): Socket
export function createConnection(...args: unknown[]): Socket {
  const first = args[0]
  const so: SocketOptions = {}
  if (typeof first === 'object' && first !== null) {
    const f = first as SocketOptions
    if (f.allowHalfOpen !== undefined) so.allowHalfOpen = f.allowHalfOpen
    if (f.ring !== undefined) so.ring = f.ring
    if (f.signal !== undefined) so.signal = f.signal
  }
  const s = new Socket(so)
  return (s.connect as (...a: unknown[]) => Socket)(...args)
}

/** Same as `createConnection()`. */
export const connect = createConnection

/** A TCP server shaped like node:net's Server. */
export class Server extends EventEmitter {
  /** Connections past this many are closed as they come (as node's). */
  maxConnections: number | undefined = undefined
  readonly #options: Required<Omit<ServerOptions, 'ring' | 'highWaterMark'>> & { ring: Ring | undefined; highWaterMark: number | undefined }
  #listener: Listener | null = null
  #starting = false
  #closing: Promise<void> | null = null
  #closeRequested = false
  readonly #connections = new Set<Socket>()
  #refed = true

  constructor(options?: ServerOptions | ((socket: Socket) => void), connectionListener?: (socket: Socket) => void) {
    super()
    let o: ServerOptions = {}
    if (typeof options === 'function') connectionListener = options
    else if (options !== undefined && options !== null) o = validateObject(options, 'options') as ServerOptions
    this.#options = {
      allowHalfOpen: o.allowHalfOpen ?? false,
      pauseOnConnect: o.pauseOnConnect ?? false,
      noDelay: o.noDelay ?? false,
      keepAlive: o.keepAlive ?? false,
      keepAliveInitialDelay: o.keepAliveInitialDelay ?? 0,
      highWaterMark: o.highWaterMark,
      ring: o.ring,
    }
    if (connectionListener !== undefined) this.on('connection', connectionListener)
  }

  /**
   * Like node:net `server.listen()`: `(port[, host][, backlog][, callback])`
   * or `(options[, callback])`. 'listening' follows once it listens; a
   * failure ('EADDRINUSE', ...) is emitted as 'error'.
   */
  listen(options: ServerListenOptions, listeningListener?: () => void): this
  listen(port?: number, host?: string, backlog?: number, listeningListener?: () => void): this
  listen(port?: number, host?: string, listeningListener?: () => void): this
  listen(port?: number, backlog?: number, listeningListener?: () => void): this
  listen(port?: number, listeningListener?: () => void): this
  listen(listeningListener?: () => void): this
  listen(...args: unknown[]): this {
    const last = args[args.length - 1]
    const cb = typeof last === 'function' ? (last as () => void) : undefined
    const a = cb === undefined ? args : args.slice(0, -1)
    let o: ServerListenOptions
    if (typeof a[0] === 'object' && a[0] !== null) {
      const raw = a[0] as Record<string, unknown>
      if (raw.path !== undefined) throw invalidArgType('options.path', 'undefined (ringline/net has TCP only)', raw.path)
      o = { ...(raw as ServerListenOptions) }
    } else {
      o = {}
      if (a[0] !== undefined && a[0] !== null) o.port = a[0] as number
      if (typeof a[1] === 'string') {
        o.host = a[1]
        if (typeof a[2] === 'number') o.backlog = a[2]
      } else if (typeof a[1] === 'number') o.backlog = a[1]
    }
    if (o.port !== undefined) o.port = validatePortArg(o.port, 'options.port', true)
    if (this.#listener !== null || this.#starting) throw nodeError('ERR_SERVER_ALREADY_LISTEN', 'Listen method has been called more than once without closing.')
    if (cb !== undefined) this.once('listening', cb)
    const signal = o.signal
    if (signal?.aborted) {
      nextTick(() => this.close())
      return this
    }
    this.#starting = true
    this.#closeRequested = false
    const ring = this.#options.ring ?? defaultRing()
    ring
      .listen({
        port: o.port,
        host: o.host,
        backlog: o.backlog,
        ipv6Only: o.ipv6Only,
        reusePort: o.reusePort,
        noDelay: this.#options.noDelay,
        highWaterMark: this.#options.highWaterMark,
      })
      .then(
        (l) => {
          this.#starting = false
          if (this.#closeRequested) {
            this.#closeListener(l)
            return
          }
          this.#listener = l
          if (!this.#refed) l.unref()
          signal?.addEventListener('abort', () => this.close(), { once: true })
          this.emit('listening')
          void this.#acceptLoop(l)
        },
        (e: Error) => {
          this.#starting = false
          this.emit('error', e)
        },
      )
    return this
  }

  async #acceptLoop(l: Listener): Promise<void> {
    for (;;) {
      let rs: RingSocket | null
      try {
        rs = await l.accept()
      } catch (e) {
        if (this.#listener === l) this.emit('error', e)
        return
      }
      if (rs === null) return
      if (this.maxConnections !== undefined && this.#connections.size >= this.maxConnections) {
        void rs.close()
        continue
      }
      const s = wrapSocket(rs, { allowHalfOpen: this.#options.allowHalfOpen })
      if (this.#options.keepAlive) s.setKeepAlive(true, this.#options.keepAliveInitialDelay)
      s.server = this
      this.#connections.add(s)
      s.once('close', () => {
        this.#connections.delete(s)
        this.#emitCloseIfDrained()
      })
      if (this.#options.pauseOnConnect) s.pause()
      else s.read(0)
      this.emit('connection', s)
    }
  }

  /** The address listened on, or null when not listening. */
  address(): AddressInfo | null {
    return this.#listener?.address() ?? null
  }

  get listening(): boolean {
    return this.#listener !== null
  }

  /**
   * Stops accepting; 'close' follows once every connection accepted has
   * closed (as node's). `callback` gets ERR_SERVER_NOT_RUNNING if the
   * server was not listening.
   */
  close(callback?: (err?: Error) => void): this {
    const running = this.#listener !== null || this.#starting
    if (callback !== undefined) {
      if (running) this.once('close', () => callback())
      else this.once('close', () => callback(nodeError('ERR_SERVER_NOT_RUNNING', 'Server is not running.')))
    }
    this.#closeRequested = true
    if (this.#starting) return this
    const l = this.#listener
    this.#listener = null
    if (l !== null) this.#closeListener(l)
    else this.#emitCloseIfDrained()
    return this
  }

  #closeListener(l: Listener): void {
    const closing = l.close().then(
      () => undefined,
      () => undefined,
    )
    this.#closing = closing
    void closing.then(() => {
      if (this.#closing === closing) this.#closing = null
      this.#emitCloseIfDrained()
    })
  }

  #emitCloseIfDrained(): void {
    if (!this.#closeRequested) return
    if (this.#listener !== null || this.#starting || this.#closing !== null || this.#connections.size > 0) return
    this.#closeRequested = false
    nextTick(() => this.emit('close'))
  }

  /** Calls back with the number of open connections. */
  getConnections(callback: (err: Error | null, count: number) => void): this {
    const n = this.#connections.size
    nextTick(() => callback(null, n))
    return this
  }

  /** Accepting no longer keeps the process alive. */
  unref(): this {
    this.#refed = false
    this.#listener?.unref()
    return this
  }

  ref(): this {
    this.#refed = true
    this.#listener?.ref()
    return this
  }
}

/** Like node:net `createServer()`. */
export function createServer(options?: ServerOptions | ((socket: Socket) => void), connectionListener?: (socket: Socket) => void): Server {
  return new Server(options, connectionListener)
}

/** What `serveHttp` needs of a node:http or node:https server (a net.Server). */
export interface HttpLikeServer {
  emit(event: string | symbol, ...args: unknown[]): boolean
  on(event: 'close', listener: () => void): unknown
  closeIdleConnections?(): void
  allowHalfOpen?: boolean
  noDelay?: boolean
  keepAlive?: boolean
  /** In seconds, as node:net keeps it. */
  keepAliveInitialDelay?: number
  highWaterMark?: number
}

/**
 * Serves a node:http (or https, or tls) server from ringline sockets:
 * returns a ringline Server (call its `listen()`) whose connections go to
 * `httpServer` through its 'connection' event, and whose 'listening' is
 * also emitted on `httpServer` (node:http starts the checks of
 * `headersTimeout` and `requestTimeout` on its 'listening'). Close it with
 * the returned server's `close()` (which also closes the idle keep-alive
 * connections, as `httpServer.close()` does), or `httpServer.close()`.
 * Options default to those `httpServer` was made with.
 */
export function serveHttp(httpServer: HttpLikeServer, options?: ServerOptions): Server {
  const o: ServerOptions = {
    allowHalfOpen: httpServer.allowHalfOpen,
    noDelay: httpServer.noDelay,
    keepAlive: httpServer.keepAlive,
    keepAliveInitialDelay: httpServer.keepAliveInitialDelay === undefined ? undefined : httpServer.keepAliveInitialDelay * 1000,
    ...options,
  }
  const server = new Server(o)
  // node's tls (https, http2's secure server) runs on a ringline socket as
  // on any Duplex, through a JSStreamSocket, not on its handle as over
  // node:net, and its TLSSocket takes allowHalfOpen from the socket. Once
  // wrapped, the socket's own half-close must not end its writable side
  // when the peer's FIN comes (a node:net socket under tls never sees that
  // FIN): what tls still writes (the rest of a response, its close_notify)
  // would be cut. tls ends the socket itself when it ends.
  // (node:tls is loaded only for a server that may be one of its own.)
  const tlsServer =
    typeof (httpServer as { setSecureContext?: unknown }).setSecureContext === 'function' && httpServer instanceof (require('node:tls') as typeof import('node:tls')).Server
  server.on('connection', (s: Socket) => {
    httpServer.emit('connection', s)
    if (tlsServer) s.allowHalfOpen = true
  })
  server.on('listening', () => {
    httpServer.emit('listening')
  })
  server.on('error', (e: Error) => {
    httpServer.emit('error', e)
  })
  let closing = false
  const close = server.close.bind(server)
  server.close = (callback?: (err?: Error) => void): Server => {
    if (!closing) {
      closing = true
      httpServer.closeIdleConnections?.()
    }
    return close(callback)
  }
  // httpServer.close() (it emits 'close' at once: it has no handle of its own).
  httpServer.on('close', () => {
    if (server.listening) server.close()
  })
  return server
}
