// FileHandle: what `open()` resolves to. Its methods follow
// node:fs/promises FileHandle (signatures, results, errors), plus
// readMany (one batch, one promise) and append (write + linked sync).

import { EventEmitter } from 'node:events'
import * as readline from 'node:readline'
import { Kinds, type RingCore, type ReadResult, type WriteResult, type ReadvResult, type WritevResult } from './core'
import { systemError, invalidArgType, invalidArgValue, withCode, type SystemError } from './errors'
import { getOptions, type WholeFileOptions } from './fs/options'
import { readFileHandle } from './fs/read-file'
import { writeFileData, writeFileHandle, type WriteFileIterable } from './fs/write-file'
import { createReadStream, createWriteStream, type ReadStreamOptions, type WriteStreamOptions } from './fs/streams'
import {
  validateBuffer,
  validateInteger,
  validateObject,
  validatePosition,
  validateRange,
  validateSignal,
  MAX_IO,
  type BufferLike,
  type Position,
} from './validators'
import { BigIntStats, type Stats } from './stats'
import { FILE_CALLS } from './native'
import { parseRequiredMode, toTimespec, validateIds } from './fs/options'
import type { Ring } from './ring'
import type { ReadStream, WriteStream } from 'node:fs'
import type { ReadableStream } from 'node:stream/web'

const { K_VOID, K_WRITE, K_READV, K_WRITEV, K_STAT } = Kinds

// Taken at load, like everything ringline takes from Node.
const WebReadableStream = globalThis.ReadableStream
const { createInterface } = readline

export interface ReadOptions<T extends BufferLike = Buffer> {
  buffer?: T
  offset?: number
  length?: number
  position?: Position
  signal?: AbortSignal
}

export interface WriteOptions {
  offset?: number
  length?: number
  position?: Position
  signal?: AbortSignal
}

export interface ReadRequest {
  buffer: BufferLike
  position: Position
  offset?: number
  length?: number
}

export interface AppendOptions {
  /** `'data'`: fdatasync after the write; `'full'` (or `true`): fsync; default none. */
  sync?: 'data' | 'full' | 'none' | boolean
  signal?: AbortSignal
}

export interface SignalOptions {
  signal?: AbortSignal
}

/** `O_DIRECT` alignment of a file opened with `{ direct: true }`. */
export interface DirectAlignment {
  /** Memory address alignment the kernel needs (ringline bounces what misses it). */
  memory: number
  /** Alignment of positions and lengths. */
  offset: number
}

const DEFAULT_READ_SIZE = 16384

/** readv/writev's position as node:fs/promises takes it: a number, or else the current position. */
function vectorPosition(position: unknown): number {
  return typeof position === 'number' ? validatePosition(position) : -1
}

/**
 * A FileHandle that becomes unreachable without close() has its descriptor
 * closed, with the warnings node:fs/promises gives for the same mistake
 * (its FileHandle closes on garbage collection too). Ops in flight keep
 * their handle's file open: the close waits for them, as close() does.
 */
let gcDeprecationWarned = false
const unclosedHandles = new FinalizationRegistry<{ core: RingCore; id: number; fd: number }>(({ core, id, fd }) => {
  if (core.closed) return
  core.begin(K_VOID, 'close', undefined, undefined, undefined, (t) => core.native.closeFile(t, id)).catch(() => {})
  process.emitWarning(`Closing file descriptor ${fd} on garbage collection`)
  if (!gcDeprecationWarned) {
    gcDeprecationWarned = true
    process.emitWarning(
      'Closing a FileHandle object on garbage collection is deprecated. Please close FileHandle objects explicitly using FileHandle.prototype.close(). In the future, an error will be thrown if a file descriptor is closed during garbage collection.',
      'DeprecationWarning',
      'DEP0137',
    )
  }
})

/** Options of FileHandle.stat(). */
export interface StatOptions {
  /** Numbers as bigint, with nanosecond times (`BigIntStats`). */
  bigint?: boolean
}

/** Options of FileHandle.readableWebStream(). */
export interface ReadableWebStreamOptions {
  /** `'bytes'`: a byte stream (BYOB readers read into their own buffers). */
  type?: 'bytes'
}

const makeBigIntStats = (f: Float64Array): BigIntStats => new BigIntStats(f)

/**
 * An open file of a Ring. An EventEmitter, as node:fs/promises' FileHandle
 * is: it emits `'close'` when `close()` is called.
 */
export class FileHandle extends EventEmitter {
  /** The Ring this file was opened on (held, so the Ring stays open while the handle is reachable). */
  readonly ring: Ring
  #core: RingCore
  #id: number
  #fd: number
  #path: string
  #direct: DirectAlignment | null
  #closing: Promise<void> | null = null
  #webStreamLocked = false

  /** @internal Created by `open()`. */
  constructor(ring: Ring, core: RingCore, id: number, info: number[], path: string) {
    super()
    this.ring = ring
    this.#core = core
    this.#id = id
    this.#fd = info[0]
    this.#direct = info[2] > 0 ? { memory: info[1], offset: info[2] } : null
    this.#path = path
    unclosedHandles.register(this, { core, id, fd: this.#fd }, this)
  }

  /** The file descriptor, like node:fs/promises FileHandle.fd (-1 once closed). */
  get fd(): number {
    return this.#closing === null && !this.#core.closed ? this.#fd : -1
  }

  /** The path the file was opened with. */
  get path(): string {
    return this.#path
  }

  /** Alignment `O_DIRECT` needs, or null for a buffered file. */
  get direct(): DirectAlignment | null {
    return this.#direct
  }

  #closed(syscall: string): SystemError | null {
    return this.#closing !== null || this.#core.closed ? systemError(-9, syscall) : null
  }

  /** Rejects positions and lengths that `O_DIRECT` cannot take, naming the alignment. */
  #alignment(syscall: string, position: number, length: number): SystemError | null {
    const a = this.#direct
    if (a === null) return null
    if ((position >= 0 && position % a.offset !== 0) || length % a.offset !== 0) {
      return systemError(
        -22,
        syscall,
        undefined,
        `O_DIRECT needs position and length aligned to ${a.offset} bytes (got position ${position < 0 ? 'current' : position}, length ${length})`,
      )
    }
    return null
  }

  /**
   * Reads into `buffer` like node:fs/promises: `read(buffer, offset?, length?, position?)`,
   * `read(buffer, options?)` or `read(options?)`.
   */
  read<T extends BufferLike = Buffer>(buffer: T, offset?: number | null, length?: number | null, position?: Position): Promise<ReadResult<T>>
  read<T extends BufferLike = Buffer>(buffer: T, options?: ReadOptions<T>): Promise<ReadResult<T>>
  read<T extends BufferLike = Buffer>(options?: ReadOptions<T>): Promise<ReadResult<T>>
  read<T extends BufferLike>(a?: unknown, b?: unknown, c?: unknown, d?: unknown): Promise<ReadResult<T>> {
    try {
      let buffer: BufferLike
      let offset: unknown
      let length: unknown
      let position: unknown
      let signal: AbortSignal | undefined
      if (ArrayBuffer.isView(a)) {
        buffer = validateBuffer(a)
        if (b !== null && typeof b === 'object') {
          const o = b as ReadOptions
          ;({ offset, length, position } = o)
          signal = validateSignal(o.signal)
        } else {
          offset = b
          length = c
          position = d
        }
      } else {
        const o = a === undefined || a === null ? {} : validateObject(a, 'options')
        buffer = o.buffer === undefined ? Buffer.alloc(DEFAULT_READ_SIZE) : validateBuffer(o.buffer, 'options.buffer')
        offset = o.offset
        length = o.length
        position = o.position
        signal = validateSignal(o.signal)
      }
      if (buffer.byteLength === 0) {
        // node:fs/promises: a read of nothing resolves; asking for bytes
        // into an empty buffer is its own error, before the range checks.
        const off = offset === undefined || offset === null ? 0 : validateInteger(offset, 'offset', 0)
        if ((length ?? -off) === 0) return Promise.resolve({ bytesRead: 0, buffer: buffer as T })
        throw invalidArgValue('buffer', buffer, 'is empty and cannot be written')
      }
      const [off, len] = validateRange(buffer, offset, length)
      const pos = validatePosition(position)
      const closed = this.#closed('read') ?? this.#alignment('read', pos, len)
      if (closed) return Promise.reject(closed)
      if (len === 0) return Promise.resolve({ bytesRead: 0, buffer: buffer as T })
      return this.#core.read(this.#id, buffer, off, len, pos, signal)
    } catch (e) {
      return Promise.reject(e)
    }
  }

  /**
   * Writes like node:fs/promises: `write(buffer, offset?, length?, position?)`,
   * `write(buffer, options?)`, or `write(string, position?, encoding?)`.
   */
  write<T extends BufferLike>(buffer: T, offset?: number | null, length?: number | null, position?: Position): Promise<WriteResult<T>>
  write<T extends BufferLike>(buffer: T, options?: WriteOptions): Promise<WriteResult<T>>
  write(data: string, position?: Position, encoding?: BufferEncoding): Promise<WriteResult<string>>
  write(a: unknown, b?: unknown, c?: unknown, d?: unknown): Promise<WriteResult<BufferLike | string>> {
    try {
      let buffer: BufferLike
      let ctx: BufferLike | string
      let offset: unknown
      let length: unknown
      let position: unknown
      let signal: AbortSignal | undefined
      if (typeof a === 'string') {
        // As node:fs/promises: an encoding it does not know (or not a
        // string) means UTF-8; hex of odd length is refused.
        const enc = typeof c === 'string' && Buffer.isEncoding(c) ? c : 'utf8'
        if (enc.toLowerCase() === 'hex' && a.length % 2 !== 0) throw invalidArgValue('encoding', c, `is invalid for data of length ${a.length}`)
        buffer = Buffer.from(a, enc)
        ctx = a
        position = b
      } else {
        buffer = validateBuffer(a)
        ctx = buffer
        if (b !== null && typeof b === 'object') {
          const o = b as WriteOptions
          ;({ offset, length, position } = o)
          signal = validateSignal(o.signal)
        } else {
          offset = b
          length = c
          position = d
        }
      }
      const [off, len] = validateRange(buffer, offset, length)
      const pos = validatePosition(position)
      const err = this.#closed('write') ?? this.#alignment('write', pos, len)
      if (err) return Promise.reject(err)
      if (len === 0) return Promise.resolve({ bytesWritten: 0, buffer: ctx })
      return this.#core.write(this.#id, buffer, ctx, off, len, pos, signal)
    } catch (e) {
      return Promise.reject(e)
    }
  }

  /**
   * A copy of `buffers`, each element checked: every index is read exactly
   * once, in order, into a fresh plain array, and only the copy goes to
   * native code (the views, and the array a bounced read is copied back
   * across at completion). So a hole (a sparse array) is an argument error
   * as in node:fs, and getters or a Proxy on the caller's array run only
   * here, where what they throw rejects the call; changing the array after
   * the call changes nothing. Returns the copy and its total byte length.
   */
  #vector(buffers: unknown): [BufferLike[], number] {
    if (!Array.isArray(buffers)) throw invalidArgType('buffers', 'an instance of Array', buffers)
    const n = buffers.length
    if (n > 1024) throw invalidArgValue('buffers', `Array(${n})`, 'must hold at most 1024 buffers')
    const copy: BufferLike[] = new Array<BufferLike>(n)
    let total = 0
    for (let i = 0; i < n; i++) {
      const b = validateBuffer(buffers[i], `buffers[${i}]`)
      copy[i] = b
      total += b.byteLength
    }
    if (total > MAX_IO) throw invalidArgValue('buffers', `Array(${n})`, `must hold at most ${MAX_IO} bytes in all`)
    return [copy, total]
  }

  /**
   * Scatter read into `buffers`, in order, from `position` (or the current
   * position). Resolves `{ bytesRead, buffers }` with the caller's array.
   */
  readv<T extends BufferLike[]>(buffers: T, position?: Position): Promise<ReadvResult<T>> {
    try {
      const [bufs, total] = this.#vector(buffers)
      const pos = vectorPosition(position)
      const err = this.#closed('read') ?? this.#alignment('read', pos, total)
      if (err) return Promise.reject(err)
      // What node:fs gives: libuv refuses a read into no buffers.
      if (bufs.length === 0) return Promise.reject(systemError(-22, 'read'))
      const id = this.#id
      const native = this.#core.native
      return this.#core.begin(K_READV, 'read', buffers, undefined, undefined, (t) => native.vectored(t, id, bufs, pos, false), bufs)
    } catch (e) {
      return Promise.reject(e)
    }
  }

  /** Gather write of `buffers`, in order, at `position` (or the current position). */
  writev<T extends BufferLike[]>(buffers: T, position?: Position): Promise<WritevResult<T>> {
    try {
      const [bufs, total] = this.#vector(buffers)
      const pos = vectorPosition(position)
      const err = this.#closed('write') ?? this.#alignment('write', pos, total)
      if (err) return Promise.reject(err)
      if (bufs.length === 0) return Promise.resolve({ bytesWritten: 0, buffers })
      const id = this.#id
      const native = this.#core.native
      return this.#core.begin(K_WRITEV, 'write', buffers, undefined, undefined, (t) => native.vectored(t, id, bufs, pos, true), bufs)
    } catch (e) {
      return Promise.reject(e)
    }
  }

  /**
   * Many reads submitted as one batch (one syscall) under one promise, which
   * resolves with the byte count of each, in order, or rejects with the
   * first error once every read has settled.
   */
  readMany(requests: readonly ReadRequest[], options?: SignalOptions): Promise<number[]> {
    try {
      if (!Array.isArray(requests)) throw invalidArgType('requests', 'an instance of Array', requests)
      const signal = options === undefined ? undefined : validateSignal(validateObject(options, 'options').signal)
      const n = requests.length
      const bufs: BufferLike[] = new Array(n)
      const params = new Float64Array(4 * n)
      for (let i = 0; i < n; i++) {
        const r = validateObject(requests[i], `requests[${i}]`) as Partial<ReadRequest>
        const b = validateBuffer(r.buffer, `requests[${i}].buffer`)
        const [off, len] = validateRange(b, r.offset, r.length)
        if (r.position === undefined) throw invalidArgType(`requests[${i}].position`, 'of type number or bigint', r.position)
        const pos = validatePosition(r.position, `requests[${i}].position`)
        const err = this.#alignment('read', pos, len)
        if (err) return Promise.reject(err)
        bufs[i] = b
        params[4 * i + 1] = off
        params[4 * i + 2] = len
        params[4 * i + 3] = pos
      }
      const err = this.#closed('read')
      if (err) return Promise.reject(err)
      return this.#core.many(this.#id, bufs, params, n, signal)
    } catch (e) {
      return Promise.reject(e)
    }
  }

  /**
   * Appends `data` at the end of the file. With `{ sync: 'data' }` (or
   * `'full'`) the write and an fdatasync (fsync) go to the kernel linked in
   * one submission; the promise resolves once the data is durable.
   */
  append<T extends BufferLike | string>(data: T, options?: AppendOptions): Promise<WriteResult<T>> {
    try {
      let buffer: BufferLike
      if (typeof data === 'string') buffer = Buffer.from(data, 'utf8')
      else buffer = validateBuffer(data, 'data')
      let sync = 0
      let signal: AbortSignal | undefined
      if (options !== undefined) {
        const o = validateObject(options, 'options')
        signal = validateSignal(o.signal)
        const s = o.sync
        if (s === 'data') sync = 1
        else if (s === 'full' || s === true) sync = 2
        else if (s !== undefined && s !== 'none' && s !== false) throw invalidArgValue('options.sync', s, "must be 'data', 'full', 'none' or a boolean")
      }
      const len = buffer.byteLength
      if (len > MAX_IO) throw invalidArgValue('data', `<${len} bytes>`, `must be at most ${MAX_IO} bytes`)
      const err = this.#closed('write') ?? this.#alignment('write', -1, len)
      if (err) return Promise.reject(err)
      const id = this.#id
      const fast = this.#core.fast
      const syscall = sync ? (sync === 1 ? 'fdatasync' : 'fsync') : 'write'
      const p = this.#core.begin<WriteResult<T>>(K_WRITE, syscall, data, undefined, signal, (t) => fast.append(t, id, buffer, sync))
      const a = this.#direct
      if (a === null) return p
      // Only the driver knows the end of the file: name the alignment when
      // O_DIRECT refuses it.
      return p.catch((e: unknown) => {
        if ((e as SystemError).errno !== -22) throw e
        throw systemError(-22, syscall, undefined, `O_DIRECT appends need the end of the file and the length aligned to ${a.offset} bytes (length ${len})`)
      })
    } catch (e) {
      return Promise.reject(e)
    }
  }

  /** fdatasync(2). */
  datasync(): Promise<void> {
    try {
      const err = this.#closed('fdatasync')
      if (err) return Promise.reject(err)
      const id = this.#id
      const fast = this.#core.fast
      return this.#core.begin(K_VOID, 'fdatasync', undefined, undefined, undefined, (t) => fast.sync(t, id, 1))
    } catch (e) {
      return Promise.reject(e)
    }
  }

  /** fsync(2). */
  sync(): Promise<void> {
    try {
      const err = this.#closed('fsync')
      if (err) return Promise.reject(err)
      const id = this.#id
      const fast = this.#core.fast
      return this.#core.begin(K_VOID, 'fsync', undefined, undefined, undefined, (t) => fast.sync(t, id, 0))
    } catch (e) {
      return Promise.reject(e)
    }
  }

  /** statx(2) of the open file, as fs.Stats. */
  stat(options?: StatOptions & { bigint?: false }): Promise<Stats>
  stat(options: StatOptions & { bigint: true }): Promise<BigIntStats>
  stat(options?: StatOptions): Promise<Stats | BigIntStats>
  stat(options?: StatOptions): Promise<Stats | BigIntStats> {
    try {
      const err = this.#closed('fstat')
      if (err) return Promise.reject(err)
      const id = this.#id
      const native = this.#core.native
      const shape = options?.bigint ? makeBigIntStats : undefined
      return this.#core.begin(K_STAT, 'fstat', shape, undefined, undefined, (t) => native.stat(t, id))
    } catch (e) {
      return Promise.reject(e)
    }
  }

  /**
   * The rest of the file from the file position, like node:fs/promises
   * `filehandle.readFile(options)`: a Buffer, or a string with `encoding`
   * (or an encoding string as the options); `signal` stops it between reads.
   */
  readFile(options?: { encoding?: null; signal?: AbortSignal } | null): Promise<Buffer>
  readFile(options: { encoding: BufferEncoding; signal?: AbortSignal } | BufferEncoding): Promise<string>
  readFile(options?: WholeFileOptions | BufferEncoding | null): Promise<string | Buffer>
  readFile(options?: WholeFileOptions | BufferEncoding | null): Promise<string | Buffer> {
    try {
      const err = this.#closed('read')
      if (err) return Promise.reject(err)
      const o = getOptions(options, { flag: 'r' })
      return readFileHandle(this, o.signal, (o.encoding ?? undefined) as BufferEncoding | undefined)
    } catch (e) {
      return Promise.reject(e)
    }
  }

  /**
   * Writes `data` (a string, a view, or an iterable or async iterable of
   * them) at the file position, all of it, like node:fs/promises
   * `filehandle.writeFile(data, options)`.
   */
  writeFile(data: string | ArrayBufferView | WriteFileIterable, options?: WholeFileOptions | BufferEncoding | null): Promise<void> {
    try {
      const err = this.#closed('write')
      if (err) return Promise.reject(err)
      const o = getOptions(options, { encoding: 'utf8', mode: 0o666, flag: 'w', flush: false })
      if (o.flush !== undefined && typeof o.flush !== 'boolean') throw invalidArgType('options.flush', 'of type boolean', o.flush)
      const bytes = writeFileData(data, o.encoding)
      validateSignal(o.signal)
      return writeFileHandle(this, bytes, o.signal, o.encoding)
    } catch (e) {
      return Promise.reject(e)
    }
  }

  /** As node:fs/promises `filehandle.appendFile`: writeFile at the file position (the end, for a file opened with 'a'). */
  appendFile(data: string | ArrayBufferView | WriteFileIterable, options?: WholeFileOptions | BufferEncoding | null): Promise<void> {
    return this.writeFile(data, options)
  }

  /** A node:fs ReadStream over this file, driven by ringline reads (node:fs's options: start, end, highWaterMark, encoding, ...). */
  createReadStream(options?: ReadStreamOptions): ReadStream {
    return createReadStream(this, options)
  }

  /** A node:fs WriteStream over this file, driven by ringline writes. */
  createWriteStream(options?: WriteStreamOptions): WriteStream {
    return createWriteStream(this, options)
  }

  /** The file's lines, as node:fs/promises `filehandle.readLines()`: a readline Interface over createReadStream(options). */
  readLines(options?: ReadStreamOptions): readline.Interface {
    return createInterface({ input: this.createReadStream(options), crlfDelay: Infinity })
  }

  /**
   * A web ReadableStream of the file from the file position, as
   * node:fs/promises `filehandle.readableWebStream()` gives it: ArrayBuffer
   * chunks, or with `{ type: 'bytes' }` a byte stream of Uint8Arrays; one
   * per handle, and not once the handle is closing.
   */
  readableWebStream(options: ReadableWebStreamOptions = {}): ReadableStream<Uint8Array | ArrayBuffer> {
    if (this.#closing !== null || this.#core.closed) throw withCode(new Error('Invalid state: The FileHandle is closed'), 'ERR_INVALID_STATE')
    if (this.#webStreamLocked) throw withCode(new Error('Invalid state: The FileHandle is locked'), 'ERR_INVALID_STATE')
    validateObject(options, 'options')
    if (options.type !== undefined && typeof options.type !== 'string') throw invalidArgType('options.type', 'of type string', options.type)
    this.#webStreamLocked = true
    const unlock = (): void => {
      this.#webStreamLocked = false
    }
    if (options.type === 'bytes') {
      return new WebReadableStream({
        type: 'bytes',
        autoAllocateChunkSize: 16384,
        pull: async (controller) => {
          const view = controller.byobRequest!.view!
          const { bytesRead } = await this.read(view as Uint8Array, 0, view.byteLength, null)
          if (bytesRead === 0) {
            unlock()
            controller.close()
          }
          controller.byobRequest!.respond(bytesRead)
        },
        cancel: unlock,
      }) as unknown as ReadableStream<Uint8Array | ArrayBuffer>
    }
    return new WebReadableStream<ArrayBuffer>({
      pull: async (controller) => {
        const { bytesRead, buffer } = await this.read(Buffer.allocUnsafe(65536), 0, 65536, null)
        if (bytesRead === 0) {
          unlock()
          controller.close()
        } else {
          // ArrayBuffer chunks, as node's default (non-byte) stream gives.
          controller.enqueue(buffer.buffer.slice(buffer.byteOffset, buffer.byteOffset + bytesRead) as ArrayBuffer)
        }
      },
      cancel: unlock,
    }) as unknown as ReadableStream<Uint8Array | ArrayBuffer>
  }

  /** fchmod(2), in the blocking lane. `mode`: a number or an octal string. */
  chmod(mode: string | number): Promise<void> {
    try {
      const m = parseRequiredMode(mode)
      const err = this.#closed('fchmod')
      if (err) return Promise.reject(err)
      const id = this.#id
      const native = this.#core.native
      return this.#core.begin(K_VOID, 'fchmod', undefined, undefined, undefined, (t) => native.fileCall(t, FILE_CALLS.fchmod, id, [m]))
    } catch (e) {
      return Promise.reject(e)
    }
  }

  /** fchown(2), in the blocking lane; -1 leaves an id as it is. */
  chown(uid: number, gid: number): Promise<void> {
    try {
      const ids = validateIds(uid, gid)
      const err = this.#closed('fchown')
      if (err) return Promise.reject(err)
      const id = this.#id
      const native = this.#core.native
      return this.#core.begin(K_VOID, 'fchown', undefined, undefined, undefined, (t) => native.fileCall(t, FILE_CALLS.fchown, id, ids))
    } catch (e) {
      return Promise.reject(e)
    }
  }

  /** futimens(2): access and modification times (seconds, numeric strings or Dates). */
  utimes(atime: number | string | Date, mtime: number | string | Date): Promise<void> {
    try {
      const times = [...toTimespec(atime), ...toTimespec(mtime)]
      const err = this.#closed('futime')
      if (err) return Promise.reject(err)
      const id = this.#id
      const native = this.#core.native
      return this.#core.begin(K_VOID, 'futime', undefined, undefined, undefined, (t) => native.fileCall(t, FILE_CALLS.futimes, id, times))
    } catch (e) {
      return Promise.reject(e)
    }
  }

  /** `await using fh = await open(...)` closes it at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close()
  }

  /** Truncates (or extends with zeros) to `len` bytes; negative means 0, as in node:fs. */
  truncate(len: number = 0): Promise<void> {
    try {
      validateInteger(len, 'len')
      const err = this.#closed('ftruncate')
      if (err) return Promise.reject(err)
      const id = this.#id
      const native = this.#core.native
      const n = Math.max(0, len)
      return this.#core.begin(K_VOID, 'ftruncate', undefined, undefined, undefined, (t) => native.truncate(t, id, n))
    } catch (e) {
      return Promise.reject(e)
    }
  }

  /**
   * Closes the file once the ops called before it have completed, as
   * node:fs/promises does: they all run (cancel one with its AbortSignal,
   * or close the ring, to stop it), then the descriptor is closed and the
   * promise resolves. Calls made after close() reject with EBADF. Closing
   * twice returns the same promise.
   */
  // An own property bound to its handle, as node:fs/promises' FileHandle
  // has it: `const { close } = fh; close()` closes fh.
  readonly close = (): Promise<void> => {
    if (this.#closing !== null) return this.#closing
    unclosedHandles.unregister(this)
    if (this.#core.closed) {
      this.#closing = Promise.resolve()
      return this.#closing
    }
    const id = this.#id
    const core = this.#core
    const go = (): Promise<void> =>
      core.closed ? Promise.resolve() : core.begin(K_VOID, 'close', undefined, undefined, undefined, (t) => core.native.closeFile(t, id))
    // Ops still waiting for bounce memory are submitted before the close.
    const waiting = core.whenUnparked(id)
    this.#closing = waiting === null ? go() : waiting.then(go)
    this.emit('close')
    return this.#closing
  }
}
