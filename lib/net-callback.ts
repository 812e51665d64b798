// The callback API of TCP: `listen({ socket: handlers })` and
// `connect({ socket: handlers })`. No promise per chunk or per send:
// received chunks go to `handlers.data` as they arrive, and
// `CallbackSocket.write()` queues at once and says how much it took.
//
// Built on a ringline Socket in push mode (Socket._listen / _write).

import { SENT_NOW } from './core'
import { codedError, invalidArgType, systemError } from './errors'
import { validateBoolean, validateInteger, validateObject } from './validators'
import type { AddressInfo, Socket } from './net'
import type { Ring } from './ring'

/**
 * What a callback socket calls. Every handler runs on the JS thread, from
 * the ring's batch of completions; an exception thrown by one surfaces as
 * an uncaught exception once the batch is settled (as from a node:net
 * 'data' listener).
 */
export interface SocketHandlers {
  /**
   * Received bytes, in order. The chunk is the caller's to keep: it stays
   * valid after the call (it is not reused by ringline).
   */
  data(socket: CallbackSocket, chunk: Buffer): void
  /** The socket is connected (a client) or accepted (a server's). Before `data`. */
  open?(socket: CallbackSocket): void
  /** After a `write()` took less than it was given: everything queued has been sent. */
  drain?(socket: CallbackSocket): void
  /**
   * The peer ended its side (end of stream). Unless `allowHalfOpen`, this
   * side then ends too, once its queued writes are sent.
   */
  end?(socket: CallbackSocket): void
  /**
   * The socket is closed, once: both sides ended, or `close()`, or an error
   * (`error` is then set: a receive or send error, e.g. `ECONNRESET`).
   */
  close?(socket: CallbackSocket, error: Error | null): void
}

/** Options of a callback socket (under `socket` in listen and connect options). */
export interface CallbackSocketOptions {
  /**
   * Bytes `write()` queues (sent, not yet completed) before it takes less
   * than it is given; default 1 MiB.
   */
  writeHighWaterMark?: number
  /** Keep this side open after the peer ends; default false (as node:net). */
  allowHalfOpen?: boolean
}

const DEFAULT_WRITE_HWM = 1 << 20

/** The handlers and settings of callback sockets, checked once per listen or connect. */
export interface CallbackSettings {
  handlers: SocketHandlers
  writeHighWaterMark: number
  allowHalfOpen: boolean
}

const HANDLERS = ['data', 'open', 'drain', 'end', 'close'] as const

/** Checks `options.socket` (handlers, with the options beside them). */
export function callbackSettings(value: unknown, name: string): CallbackSettings {
  const o = validateObject(value, name)
  for (const h of HANDLERS) {
    const f = o[h]
    if (f === undefined && h !== 'data') continue
    if (typeof f !== 'function') throw invalidArgType(`${name}.${h}`, 'of type function', f)
  }
  const handlers = {} as Record<string, unknown>
  for (const h of HANDLERS) if (o[h] !== undefined) handlers[h] = o[h]
  return {
    handlers: handlers as unknown as SocketHandlers,
    writeHighWaterMark:
      o.writeHighWaterMark === undefined ? DEFAULT_WRITE_HWM : validateInteger(o.writeHighWaterMark, `${name}.writeHighWaterMark`, 1, 2 ** 31 - 1),
    allowHalfOpen: o.allowHalfOpen === undefined ? false : validateBoolean(o.allowHalfOpen, `${name}.allowHalfOpen`),
  }
}

/** Bytes of a write: a view (with an optional range), or a string (UTF-8). */
function writeView(data: unknown, byteOffset: unknown, byteLength: unknown): Uint8Array {
  let v: Uint8Array
  if (typeof data === 'string') v = Buffer.from(data, 'utf8')
  // A Uint8Array (a Buffer) as it is: a new view costs a C++ call for
  // `.buffer` and an allocation, per write.
  else if (data instanceof Uint8Array) v = data
  else if (ArrayBuffer.isView(data)) v = new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
  else throw invalidArgType('data', 'of type string or an instance of Buffer, TypedArray, or DataView', data)
  if (byteOffset === undefined && byteLength === undefined) return v
  const off = byteOffset === undefined ? 0 : validateInteger(byteOffset, 'byteOffset', 0, v.byteLength)
  const len = byteLength === undefined ? v.byteLength - off : validateInteger(byteLength, 'byteLength', 0, v.byteLength - off)
  return v.subarray(off, off + len)
}

/**
 * A TCP connection of the callback API (`listen` and `connect` with
 * `socket` handlers). Received bytes go to `handlers.data`; `write()`
 * sends without a promise.
 */
export class CallbackSocket {
  readonly #rs: Socket
  readonly #h: SocketHandlers
  readonly #hwm: number
  readonly #halfOpen: boolean
  /** Bytes of the writes under way, in order (sends of a socket complete in order). */
  /**
   * Byte counts of the writes under way, oldest at #sizesHead, next free
   * slot at #sizesTail; both go back to 0 when it empties, and the array
   * keeps its length (a fresh array per drained queue grew per write).
   */
  #sizes: number[] = []
  #sizesHead = 0
  #sizesTail = 0
  #buffered = 0
  #needDrain = false
  /** This side ended (end() called); `#shut` once its shutdown went out. */
  #ended = false
  #shut = false
  #peerEnded = false
  #closed = false
  readonly #onSent = (result: number): void => this.#sent(result)

  /** @internal Made by listen and connect with `socket` handlers. */
  constructor(rs: Socket, settings: CallbackSettings) {
    this.#rs = rs
    this.#h = settings.handlers
    this.#hwm = settings.writeHighWaterMark
    this.#halfOpen = settings.allowHalfOpen
  }

  /** @internal Calls `open` and starts receiving. */
  _start(): void {
    this.#h.open?.(this)
    if (this.#closed) return
    const st = this.#rs._listen({
      data: (chunk) => {
        if (!this.#closed) this.#h.data(this, chunk)
      },
      end: (result) => this.#onEnd(result),
    })
    if (st < 0) this.#finish(systemError(st, 'recv'))
  }

  /** The ring this socket is on. */
  get ring(): Ring {
    return this.#rs.ring
  }

  /**
   * Queues `data` (a view, or a string as UTF-8; `byteOffset` and
   * `byteLength` pick a range of a view) to be sent, in call order, and
   * returns how many bytes it took: all of them while fewer than
   * `writeHighWaterMark` bytes are under way, else as many as fit (maybe 0).
   * The rest is the caller's to write again after `drain`. The bytes taken
   * are copied before this returns, so `data` may be reused at once.
   * Throws `ERR_SOCKET_CLOSED` after `close()` (or once closed), and
   * `ERR_STREAM_WRITE_AFTER_END` after `end()`. A send that fails closes
   * the socket with the error (`close` handler).
   */
  write(data: string | ArrayBufferView, byteOffset?: number, byteLength?: number): number {
    if (this.#closed) throw codedError('ERR_SOCKET_CLOSED', 'Socket is closed')
    if (this.#ended) throw codedError('ERR_STREAM_WRITE_AFTER_END', 'write after end')
    let v = writeView(data, byteOffset, byteLength)
    let n = v.byteLength
    if (n === 0) return 0
    const room = this.#hwm - this.#buffered
    if (n > room) {
      this.#needDrain = true
      if (room <= 0) return 0
      v = v.subarray(0, room)
      n = room
    }
    const st = this.#rs._write(v, this.#onSent, this.#sizesHead === this.#sizesTail)
    if (st === SENT_NOW) {
      // Sent during the call: nothing under way, so the drain a short take
      // owes comes once this call's caller is done.
      if (this.#needDrain) queueMicrotask(this.#drainNow)
      return n
    }
    if (st < 0) {
      // Nothing was queued (out of send slots, or the socket is gone).
      this.#finish(systemError(st, 'send'))
      return 0
    }
    this.#sizes[this.#sizesTail++] = n
    this.#buffered += n
    return n
  }

  readonly #drainNow = (): void => {
    if (this.#needDrain && this.#buffered === 0 && !this.#closed) {
      this.#needDrain = false
      this.#h.drain?.(this)
    }
  }

  #sent(result: number): void {
    const n = this.#sizes[this.#sizesHead++]
    if (this.#sizesHead === this.#sizesTail) {
      this.#sizesHead = 0
      this.#sizesTail = 0
    }
    this.#buffered -= n
    if (result < 0) {
      // ECANCELED: the socket was closed here with the send under way.
      if (!this.#closed) this.#finish(systemError(result, 'send'))
      return
    }
    this.#drainNow()
  }

  /** Bytes taken by `write()` and not yet sent. */
  get bufferedAmount(): number {
    return this.#buffered
  }

  /**
   * Ends this side: after `data` (if given, written whole, whatever the
   * high-water mark) and every write queued before, the peer reads the end
   * of the stream. The socket closes once the peer has ended too. Calling
   * it again does nothing.
   */
  end(data?: string | ArrayBufferView): void {
    if (this.#closed || this.#ended) return
    if (data !== undefined) {
      const v = writeView(data, undefined, undefined)
      if (v.byteLength > 0) {
        const st = this.#rs._write(v, this.#onSent, this.#sizesHead === this.#sizesTail)
        if (st < 0) return this.#finish(systemError(st, 'send'))
        if (st !== SENT_NOW) {
          this.#sizes[this.#sizesTail++] = v.byteLength
          this.#buffered += v.byteLength
        }
      }
    }
    this.#ended = true
    this.#rs.shutdown().then(
      () => {
        this.#shut = true
        if (this.#peerEnded) this.#finish(null)
      },
      (e: Error) => {
        if (!this.#closed) this.#finish(e)
      },
    )
  }

  #onEnd(result: number): void {
    if (this.#closed) return
    if (result < 0) return this.#finish(systemError(result, 'recv'))
    this.#peerEnded = true
    this.#h.end?.(this)
    if (this.#closed) return
    if (this.#shut) this.#finish(null)
    else if (!this.#halfOpen) this.end()
  }

  /**
   * Closes the socket at once: writes not yet sent are dropped, and the
   * `close` handler runs (with no error). Calling it again does nothing.
   */
  close(): void {
    this.#finish(null)
  }

  #finish(error: Error | null): void {
    if (this.#closed) return
    this.#closed = true
    this.#rs.close().catch(() => undefined)
    this.#h.close?.(this, error)
  }

  /** Whether the socket is closed (`close` was called or is being called). */
  get closed(): boolean {
    return this.#closed
  }

  /** Stops receiving: `data` is not called until `resume()` (the peer's sends wait in the kernel). */
  pause(): this {
    this.#rs._pause(true)
    return this
  }

  /** Receives again after `pause()`. */
  resume(): this {
    this.#rs._pause(false)
    return this
  }

  /** Like node:net `socket.unref()`: this socket's receiving no longer keeps the process alive. */
  unref(): this {
    this.#rs.unref()
    return this
  }

  /** Undoes `unref()` (the default). */
  ref(): this {
    this.#rs.ref()
    return this
  }

  /** `TCP_NODELAY` (default true). */
  setNoDelay(noDelay = true): this {
    this.#rs.setNoDelay(noDelay)
    return this
  }

  /** `SO_KEEPALIVE`, with the idle time before the first probe in ms (see `Socket.setKeepAlive`). */
  setKeepAlive(enable = false, initialDelay = 0): this {
    this.#rs.setKeepAlive(enable, initialDelay)
    return this
  }

  get remoteAddress(): string | undefined {
    return this.#rs.remoteAddress
  }

  get remotePort(): number | undefined {
    return this.#rs.remotePort
  }

  get remoteFamily(): 'IPv4' | 'IPv6' | undefined {
    return this.#rs.remoteFamily
  }

  get localAddress(): string | undefined {
    return this.#rs.localAddress
  }

  get localPort(): number | undefined {
    return this.#rs.localPort
  }

  /** The local address, like node:net `socket.address()`. */
  address(): AddressInfo | Record<string, never> {
    return this.#rs.address()
  }
}
