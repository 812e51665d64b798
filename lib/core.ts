// The JS half of a Ring: tokens, pending ops, batched flushing and
// settlement. One RingCore per Ring; FileHandles submit through it.
//
// Submitting: each op takes a token, calls the native ring (which queues it
// without a syscall) and schedules one microtask flush, so every op of one
// synchronous run of JS goes to the kernel in one io_uring_enter.
// Completing: native code writes (token, result) pairs into `results` and
// calls onBatch(n) once per batch; the promises of the batch settle there.

import { performance } from 'node:perf_hooks'
import { NativeRing, type FastPath, type NativeRingOptions, type NativeStats } from './native'
import { AbortError, backendError, systemError, type SystemError } from './errors'
import { Stats } from './stats'

// How a result becomes a value.
const K_VOID = 0
const K_NUMBER = 1
const K_READ = 2
const K_WRITE = 3
const K_READV = 4
const K_WRITEV = 5
const K_STAT = 6
const K_OPEN = 7
const K_MANY = 8
const K_STREAM = 9
const K_SOCKET = 10
/** A call of the blocking lane: ctx decodes its bytes (or undefined) and result. */
const K_CALL = 11
/** No promise: ctx is a function called with the result (a count, or -errno). */
const K_CB = 12

/**
 * Receives the events of a stream (an accept or receive stream): one token
 * that settles many times. `event` gets each intermediate event (a chunk,
 * or an accepted socket's handle); `end` the final result (0, or -errno).
 */
export interface StreamSink {
  event(result: number, chunk: Buffer | undefined): void
  end(result: number): void
}

export interface ReadResult<T extends ArrayBufferView = Buffer> {
  bytesRead: number
  buffer: T
}
export interface WriteResult<T extends ArrayBufferView | string = Buffer> {
  bytesWritten: number
  buffer: T
}
export interface ReadvResult<T extends ArrayBufferView[] = ArrayBufferView[]> {
  bytesRead: number
  buffers: T
}
export interface WritevResult<T extends ArrayBufferView[] = ArrayBufferView[]> {
  bytesWritten: number
  buffers: T
}

/** Collects the results of a readMany batch into one promise. */
class Group {
  remaining: number
  counts: number[]
  error: Error | null = null
  /** Its AbortSignal fired: reads the kernel did not run reject AbortError. */
  aborted = false
  reason: unknown = undefined
  constructor(
    n: number,
    readonly resolve: (v: number[]) => void,
    readonly reject: (e: Error) => void,
  ) {
    this.remaining = n
    this.counts = new Array<number>(n).fill(0)
  }
}

class Op {
  resolve: (v: never) => void = noop
  reject: (e: Error) => void = noop
  aborted = false
  signal: AbortSignal | undefined = undefined
  onAbort: (() => void) | undefined = undefined
  /** The second path of a two-path call, for its errors (`dest`). */
  dest: string | undefined = undefined
  constructor(
    readonly kind: number,
    readonly syscall: string,
    readonly ctx: unknown,
    readonly path: string | undefined,
    public index = 0,
  ) {}
}

function noop(): void {}

/**
 * A microtask through a settled promise: Node's queueMicrotask makes an
 * AsyncResource and a bound function for each call, which cost more than
 * the flush it schedules.
 */
const resolved = Promise.resolve()

/** `-ECANCELED`: what the kernel says of an op it did not run. */
const ECANCELED = -125
const EBADF = -9
/**
 * Not an errno: the native side has no bounce memory for this op now (the
 * driver's budget is held by earlier ops). The op waits here and is
 * submitted again after the next completions.
 */
const WAIT_FOR_MEMORY = -4000
/** fast.read's status for a read done during the call; its result is args[5] (crates/node/src/fast.rs). */
const DONE_NOW = 1
/** `sendCb`'s result for a send done during the call. */
export const SENT_NOW = DONE_NOW
/** `how` of the native send (see NativeFastPath.send). */
const SEND_ZERO_COPY = 1
const SEND_MAY_FINISH_NOW = 2

/** An op waiting for bounce memory: `submit(token)` is its native call. */
interface Parked {
  token: number
  op: Op
  file: number
  submit: (token: number) => number
  /** For the rest of a readMany group (token -1): every token of the group. */
  tokens?: number[]
}

/**
 * Flushes run as microtasks, so the ops of one synchronous run of JS go to
 * the kernel together. Page-cache hits (and sends to a local peer) complete
 * inside the flush, so a loop like `while (...) await fh.read(...)` would
 * otherwise chain microtasks forever and starve timers and I/O. After this
 * many microtask flushes, or this much time, without an event-loop turn,
 * the next flush waits for setImmediate. (The time bound matters for large
 * sends: 64 flushes of 16 MiB each kept timers waiting for a second.)
 */
const FLUSHES_PER_TURN = 64
const MS_PER_TURN = 4

/** (token, result) pairs one onBatch call carries at most. */
const RESULT_PAIRS = 1024
/** The flags after the pairs of `results` (crates/node/src/shared.rs: JS_BUSY, JS_DEFERRED, FLUSH_PENDING). */
const JS_BUSY = 0
const JS_DEFERRED = 1
const FLUSH_PENDING = 2
/** Where in the receive pool (payloads[RESULT_PAIRS]) the batch's first pooled chunk starts. */
const POOL_OFFSET = 3

export type OpenFactory = (id: number, info: number[]) => unknown

export class RingCore {
  readonly native: NativeRing
  readonly fast: FastPath
  readonly backend: 'io_uring' | 'mio' | 'sim'
  readonly fallbackReason: string | null
  /**
   * (token, result) pairs, then four flags: onBatch is running
   * (JS_BUSY); a delivery waited for it (JS_DEFERRED, native code sets
   * it); a flush of this side is scheduled (FLUSH_PENDING), so native code
   * that submits inside a delivery leaves what completed at once to it;
   * the offset of the batch's first chunk in the receive pool
   * (POOL_OFFSET, native code sets it).
   */
  private readonly results = new Float64Array(2 * RESULT_PAIRS + 4)
  /**
   * (token, file, offset, length, position) of fast.read and fast.write.
   * 16 elements, not 5: V8 keeps typed arrays over 64 bytes off its heap,
   * where native code may hold on to their memory.
   */
  private readonly args = new Float64Array(16)
  private readonly bufs: unknown[] = []
  /**
   * Chunks of a batch at their event's index, and at [cap] the receive
   * pool (cap: the pairs `results` holds; native code sets it when the
   * pool changes). Made full length up front: native code writes index
   * cap first, which turned an empty array into a dictionary (a hash
   * lookup per element access: 1,000 instructions per ping-pong round trip).
   */
  private readonly payloads: (Buffer | undefined)[] = Array.from({ length: RESULT_PAIRS + 1 }, () => undefined)
  private readonly ops: (Op | undefined)[] = []
  /** Ops waiting for bounce memory, oldest first (see WAIT_FOR_MEMORY). */
  private readonly parked: Parked[] = []
  /** Closes waiting for their file's parked ops to be submitted (see whenUnparked). */
  private readonly unparkWaiters: { file: number; resolve: () => void }[] = []
  private retryScheduled = false
  private readonly free: number[] = []
  private next = 0
  private scheduled = false
  /** Microtask flushes since the event loop last turned, and when the first was. */
  private burst = 0
  private burstStart = 0
  private turnWatch = false
  closed = false
  private closing: Promise<void> | null = null
  private closeResolve: () => void = noop

  constructor(options: NativeRingOptions) {
    try {
      this.native = new NativeRing(options, (n) => this.onBatch(n), this.results, this.bufs, this.payloads)
    } catch (err) {
      throw backendError(err)
    }
    this.backend = this.native.backend === 'mio' || this.native.backend === 'sim' ? this.native.backend : 'io_uring'
    this.fallbackReason = this.native.fallbackReason ?? null
    this.fast = this.native.fastPath(this.args)
  }

  private token(): number {
    const t = this.free.pop()
    return t === undefined ? this.next++ : t
  }

  private readonly flush = (): void => {
    this.scheduled = false
    this.results[2 * RESULT_PAIRS + FLUSH_PENDING] = 0
    // The completions it reaped are left for us to settle.
    const n = this.fast.flush()
    if (n > 0) this.onBatch(n)
  }

  private readonly turned = (): void => {
    this.turnWatch = false
    this.burst = 0
  }

  private schedule(): void {
    if (this.scheduled) return
    this.scheduled = true
    this.results[2 * RESULT_PAIRS + FLUSH_PENDING] = 1
    if (this.inBurst()) resolved.then(this.flush)
    else setImmediate(this.flush)
  }

  /**
   * Counts one more step of work done without an event-loop turn (a
   * microtask flush, or a read done during its call): whether it may run
   * now, else it waits for the loop (see FLUSHES_PER_TURN).
   */
  private inBurst(): boolean {
    if (this.burstRoom()) {
      this.burstStep()
      return true
    }
    this.burst++
    return false
  }

  /** Whether one more step may run before the event loop turns (counts nothing). */
  private burstRoom(): boolean {
    // On a sim ring only the count bounds a burst: a bound in real time
    // would make where the event loop turns, and so the seeded run, depend
    // on how fast the machine is. (perf_hooks' performance: the global one
    // is a getter that costs as much again per call on Node 20.)
    if (this.burst >= FLUSHES_PER_TURN) return false
    if (this.backend === 'sim' || this.burst === 0) return true
    return performance.now() - this.burstStart < MS_PER_TURN
  }

  /** Counts a step that ran (see burstRoom); the count resets when the loop turns. */
  private burstStep(): void {
    if (this.burst === 0 && this.backend !== 'sim') this.burstStart = performance.now()
    this.burst++
    if (!this.turnWatch) {
      this.turnWatch = true
      setImmediate(this.turned)
    }
  }

  /**
   * Registers an op under a fresh token, calls `submit(token)` (the native
   * call), and returns the op's promise. `bufs` is what native code finds
   * at `bufs[token]` (where a bounced read copies its data); default `ctx`.
   */
  begin<T>(
    kind: number,
    syscall: string,
    ctx: unknown,
    path: string | undefined,
    signal: AbortSignal | undefined,
    submit: (token: number) => number,
    bufs: unknown = ctx,
    dest?: string,
  ): Promise<T> {
    if (signal?.aborted) return Promise.reject(new AbortError(undefined, { cause: signal.reason }))
    const token = this.token()
    const op = new Op(kind, syscall, ctx, path)
    op.dest = dest
    const p = this.pending<T>(token, op)
    this.bufs[token] = bufs
    const status = this.parked.length > 0 ? WAIT_FOR_MEMORY : submit(token)
    if (status === WAIT_FOR_MEMORY) return this.park(token, op, -1, submit, signal, p)
    return this.commit(token, op, status, signal, p)
  }

  /** Registers `op` under `token`; returns its promise. */
  private pending<T>(token: number, op: Op): Promise<T> {
    const p = new Promise<T>((resolve, reject) => {
      op.resolve = resolve as (v: never) => void
      op.reject = reject
    })
    this.ops[token] = op
    this.bufs[token] = op.ctx
    return p
  }

  /** After the native call: reject on a refused submission, else watch the signal and schedule the flush. */
  private commit<T>(token: number, op: Op, status: number, signal: AbortSignal | undefined, p: Promise<T>): Promise<T> {
    if (status < 0) {
      if (this.ops[token] === op) this.release(token)
      op.reject(systemError(status, op.syscall, op.path, undefined, op.dest))
      return p
    }
    if (signal !== undefined && this.ops[token] === op) this.watch(token, op, signal)
    this.schedule()
    return p
  }

  /**
   * An op the native side has no bounce memory for yet (or that would pass
   * ops already waiting): it waits in `parked`, and `submit(token)` makes
   * its native call again after the next completions.
   */
  private park<T>(token: number, op: Op, file: number, submit: (token: number) => number, signal: AbortSignal | undefined, p: Promise<T>): Promise<T> {
    this.parked.push({ token, op, file, submit })
    if (signal !== undefined) this.watch(token, op, signal)
    return p
  }

  /** The hot path of FileHandle.read: one native call; a closure only when it has to wait for memory. */
  read<T>(file: number, buffer: ArrayBufferView, off: number, len: number, pos: number, signal: AbortSignal | undefined): Promise<T> {
    if (signal?.aborted) return Promise.reject(new AbortError(undefined, { cause: signal.reason }))
    const token = this.token()
    const op = new Op(K_READ, 'read', buffer, undefined)
    const p = this.pending<T>(token, op)
    const status = this.parked.length > 0 ? WAIT_FOR_MEMORY : this.rw(false, token, file, buffer, off, len, pos)
    if (status === DONE_NOW) {
      // Read from the page cache during the call (nothing else was waiting
      // to be submitted): no completion comes, the token was not used.
      this.release(token)
      this.settle(op, this.args[5], undefined)
      return p
    }
    if (status === WAIT_FOR_MEMORY) return this.park(token, op, file, (t) => this.rw(false, t, file, buffer, off, len, pos), signal, p)
    return this.commit(token, op, status, signal, p)
  }

  /** The hot path of FileHandle.write. */
  write<T>(file: number, buffer: ArrayBufferView, ctx: unknown, off: number, len: number, pos: number, signal: AbortSignal | undefined): Promise<T> {
    if (signal?.aborted) return Promise.reject(new AbortError(undefined, { cause: signal.reason }))
    const token = this.token()
    const op = new Op(K_WRITE, 'write', ctx, undefined)
    const p = this.pending<T>(token, op)
    this.bufs[token] = buffer
    const status = this.parked.length > 0 ? WAIT_FOR_MEMORY : this.rw(true, token, file, buffer, off, len, pos)
    if (status === WAIT_FOR_MEMORY) return this.park(token, op, file, (t) => this.rw(true, t, file, buffer, off, len, pos), signal, p)
    return this.commit(token, op, status, signal, p)
  }

  /**
   * The native read or write: its numbers go through `args`. A read may be
   * done during the call (DONE_NOW) when args[5] is 1: the first read of a
   * stretch of synchronous code (several reads started together go through
   * the ring, in one syscall), within the burst that may run without an
   * event-loop turn.
   */
  private rw(write: boolean, token: number, file: number, buffer: ArrayBufferView, off: number, len: number, pos: number): number {
    const a = this.args
    a[0] = token
    a[1] = file
    a[2] = off
    a[3] = len
    a[4] = pos
    if (write) return this.fast.write(buffer)
    // Only a read done now counts in the burst (every read counted made the
    // flushes of 128 reads in flight wait for setImmediate), and only by
    // count: 64 such reads take far less than MS_PER_TURN, and a clock
    // read per read would cost more than the check.
    a[5] = !this.readNowTaken && this.backend !== 'sim' && this.burst < FLUSHES_PER_TURN ? 1 : 0
    const st = this.fast.read(buffer)
    if (st === DONE_NOW) {
      this.burstStep()
      this.readNowTaken = true
      // Runs before the continuation of the read's awaiter (queued once it
      // awaits): a loop awaiting one read at a time reads during the call
      // every time; the other reads of a stretch go through the ring.
      resolved.then(this.readNowOver)
    }
    return st
  }

  /** A read was done during its call in this stretch of code (see rw). */
  private readNowTaken = false
  private readonly readNowOver = (): void => {
    this.readNowTaken = false
  }

  /** The hot path of Socket.send: no closure. Resolves with the byte count. */
  send(file: number, data: ArrayBufferView | ArrayBufferView[], zeroCopy: boolean): Promise<number> {
    const token = this.token()
    const op = new Op(K_NUMBER, 'send', data, undefined)
    const p = this.pending<number>(token, op)
    return this.commit(token, op, this.sendNative(token, file, data, zeroCopy ? SEND_ZERO_COPY : 0), undefined, p)
  }

  /** The native send: its numbers go through `args`, as rw's do. */
  private sendNative(token: number, file: number, data: ArrayBufferView | ArrayBufferView[], how: number): number {
    const a = this.args
    a[0] = token
    a[1] = file
    a[2] = how
    return this.fast.send(data)
  }

  /**
   * A send that calls `done(result)` (the byte count, or -errno) when it
   * completes, instead of settling a promise: the callback API's sends.
   * Returns 0; or SENT_NOW when the socket took it whole during the call
   * (only when `mayFinishNow`: the caller has no earlier send of the socket
   * unsettled), and `done` is never called; or the native call's -errno
   * (then `done` is never called either).
   */
  sendCb(file: number, data: ArrayBufferView | ArrayBufferView[], done: (result: number) => void, mayFinishNow: boolean): number {
    const token = this.token()
    const status = this.sendNative(token, file, data, mayFinishNow ? SEND_MAY_FINISH_NOW : 0)
    if (status === 0) {
      this.ops[token] = new Op(K_CB, 'send', done, undefined)
    } else {
      this.free.push(token)
      if (status < 0) return status
    }
    // Also after a send done now: the peer's answer may already be in the
    // completion queue (see Driver::lone_send).
    this.schedule()
    return status
  }

  private watch(token: number, op: Op, signal: AbortSignal): void {
    op.signal = signal
    op.onAbort = () => {
      if (this.ops[token] !== op) return
      op.aborted = true
      const i = this.parked.findIndex((w) => w.op === op)
      if (i >= 0) {
        // Never submitted: nothing to ask the kernel.
        this.parked.splice(i, 1)
        this.release(token)
        op.reject(new AbortError(undefined, { cause: signal.reason }))
        return
      }
      this.native.cancel(token)
    }
    signal.addEventListener('abort', op.onAbort, { once: true })
  }

  /**
   * Submits one read per request in one native call (and one syscall);
   * one promise for all.
   */
  many(file: number, bufs: ArrayBufferView[], params: Float64Array, n: number, signal: AbortSignal | undefined): Promise<number[]> {
    if (signal?.aborted) return Promise.reject(new AbortError(undefined, { cause: signal.reason }))
    let group!: Group
    const p = new Promise<number[]>((resolve, reject) => {
      group = new Group(n, resolve, reject)
    })
    if (n === 0) {
      group.resolve([])
      return p
    }
    const tokens: number[] = new Array(n)
    for (let i = 0; i < n; i++) {
      const token = this.token()
      tokens[i] = token
      this.ops[token] = new Op(K_MANY, 'read', group, undefined, i)
      this.bufs[token] = bufs[i]
      params[4 * i] = token
    }
    if (signal !== undefined) {
      const onAbort = (): void => {
        group.aborted = true
        group.reason = signal.reason
        const i = this.parked.findIndex((w) => w.op.ctx === group)
        // Its reads not yet submitted settle here; the rest below.
        if (i >= 0) this.dropGroupRest(this.parked.splice(i, 1)[0], new AbortError(undefined, { cause: signal.reason }))
        for (const t of tokens) if (this.ops[t]?.ctx === group) this.native.cancel(t)
      }
      signal.addEventListener('abort', onAbort, { once: true })
      const done = (): void => signal.removeEventListener('abort', onAbort)
      p.then(done, done)
    }
    this.submitMany(file, bufs, params, tokens, group, 0)
    return p
  }

  /**
   * Submits reads `from..n` of a readMany group; those the native side
   * has no memory for yet wait in `parked` (as one entry, in order).
   */
  private submitMany(file: number, bufs: ArrayBufferView[], params: Float64Array, tokens: number[], group: Group, from: number): number {
    const n = tokens.length
    const submit = (): number => {
      const rest = n - from
      const r = this.fast.readMany(file, from === 0 ? bufs : bufs.slice(from), from === 0 ? params : params.subarray(4 * from), rest)
      if (r >= 0) return 0
      const queued = Math.floor(-r / 4096)
      const errno = -(-r % 4096)
      if (errno === WAIT_FOR_MEMORY) {
        if (queued > 0) this.schedule()
        from += queued
        return WAIT_FOR_MEMORY
      }
      // The first `queued` are pending; the rest were never submitted.
      group.error ??= systemError(errno, 'read')
      for (let i = from + queued; i < n; i++) this.release(tokens[i])
      group.remaining -= rest - queued
      if (group.remaining === 0) this.finishGroup(group)
      return 0
    }
    const status = this.parked.length > 0 ? WAIT_FOR_MEMORY : submit()
    if (status === WAIT_FOR_MEMORY) {
      const op = new Op(K_MANY, 'read', group, undefined, from)
      const retry = (): number => {
        const st = submit()
        op.index = from
        return st
      }
      this.parked.push({ token: -1, op, file, submit: retry, tokens })
    } else {
      this.schedule()
    }
    return status
  }

  /**
   * null when no op of `file` waits for memory; otherwise a promise that
   * resolves once every one of them has been submitted (or dropped). A
   * file's close waits for it: the ops called before a close run first.
   */
  whenUnparked(file: number): Promise<void> | null {
    if (!this.parked.some((w) => w.file === file)) return null
    return new Promise((resolve) => this.unparkWaiters.push({ file, resolve }))
  }

  private wakeUnparked(): void {
    for (let i = 0; i < this.unparkWaiters.length; ) {
      const w = this.unparkWaiters[i]
      if (this.parked.some((p) => p.file === w.file)) {
        i++
        continue
      }
      this.unparkWaiters.splice(i, 1)
      w.resolve()
    }
  }

  /** Submits parked ops again, oldest first, until one still has to wait. */
  private readonly retryParked = (): void => {
    this.retryScheduled = false
    this.submitParked()
    if (this.unparkWaiters.length > 0) this.wakeUnparked()
  }

  private submitParked(): void {
    while (this.parked.length > 0) {
      const w = this.parked[0]
      const status = w.submit(w.token)
      if (status === WAIT_FOR_MEMORY) return
      this.parked.shift()
      if (status === DONE_NOW) {
        // A read done during the call (see read).
        this.release(w.token)
        this.settle(w.op, this.args[5], undefined)
        continue
      }
      if (w.token < 0) {
        // A readMany remainder: its reads settle through their group.
        this.schedule()
        continue
      }
      if (status < 0) {
        if (this.ops[w.token] === w.op) this.release(w.token)
        // EBADF: its file was closed meanwhile. It never reached the
        // kernel, as for any op still queued when its file closes.
        w.op.reject(systemError(status === EBADF ? ECANCELED : status, w.op.syscall, w.op.path))
        continue
      }
      this.schedule()
    }
  }

  /** Rejects every parked op with ECANCELED (the ring closes): they never reached the kernel. */
  private dropParked(): void {
    for (const w of this.parked.splice(0)) {
      if (w.token >= 0) {
        if (this.ops[w.token] === w.op) this.release(w.token)
        w.op.reject(systemError(ECANCELED, w.op.syscall, w.op.path))
      } else {
        this.dropGroupRest(w, systemError(ECANCELED, 'read'))
      }
    }
    if (this.unparkWaiters.length > 0) this.wakeUnparked()
  }

  /** Settles the reads of a parked readMany remainder that never reached the kernel. */
  private dropGroupRest(w: Parked, error: Error): void {
    const g = w.op.ctx as Group
    const tokens = w.tokens ?? []
    for (let k = w.op.index; k < tokens.length; k++) this.release(tokens[k])
    g.remaining -= tokens.length - w.op.index
    g.error ??= error
    if (g.remaining === 0) this.finishGroup(g)
  }

  /**
   * Starts a stream: `submit(token)` is the native call; `sink` gets its
   * events. Returns the stream's token (for `streamRef`), or the native
   * call's negative errno.
   */
  stream(sink: StreamSink, submit: (token: number) => number): number {
    const token = this.token()
    this.ops[token] = new Op(K_STREAM, 'stream', sink, undefined)
    const status = submit(token)
    if (status < 0) {
      this.release(token)
      return status
    }
    this.schedule()
    return token
  }

  /**
   * Whether the pending stream `token` keeps the process alive (it does
   * unless told otherwise): `socket.unref()`, `server.unref()`.
   */
  streamRef(token: number, on: boolean): void {
    this.native.streamRef(token, on)
  }

  /** Schedules a flush (after a native call that queued kernel work). */
  kick(): void {
    this.schedule()
  }

  private release(token: number): void {
    this.ops[token] = undefined
    this.bufs[token] = undefined
    this.free.push(token)
  }

  private onBatch(n: number): void {
    if (n < 0) {
      this.closeResolve()
      return
    }
    const r = this.results
    // Small received chunks are back to back in the receive pool, from
    // this offset on (set by native code for this batch).
    const cap = RESULT_PAIRS
    // Native code must not write pairs while this runs (see the end).
    r[2 * cap + JS_BUSY] = 1
    let pool: Buffer | undefined
    let off = 0
    let thrown: { e: unknown } | undefined
    for (let i = 0; i < n; i++) {
      let token = r[2 * i]
      const result = r[2 * i + 1]
      if (token < 0) {
        // A stream's event: the token stays pending.
        token = -token - 1
        const sink = this.ops[token]?.ctx as StreamSink | undefined
        let chunk: Buffer | undefined
        let value = result
        if (result < 0) {
          // A chunk in the pool, -result bytes long.
          if (pool === undefined) {
            pool = this.payloads[cap]
            off = r[2 * cap + POOL_OFFSET]
          }
          value = -result
          chunk = pool!.subarray(off, off + value)
          off += value
        } else {
          chunk = this.payloads[i]
          if (chunk !== undefined) this.payloads[i] = undefined
        }
        if (sink !== undefined) {
          try {
            sink.event(value, chunk)
          } catch (e) {
            thrown ??= { e }
          }
        }
        continue
      }
      const op = this.ops[token]
      const extra = this.bufs[token]
      this.ops[token] = undefined
      this.bufs[token] = undefined
      this.free.push(token)
      if (op === undefined) continue
      try {
        this.settle(op, result, extra)
      } catch (e) {
        thrown ??= { e }
      }
    }
    r[2 * cap + JS_BUSY] = 0
    if (r[2 * cap + JS_DEFERRED] !== 0) {
      // Settlements made meanwhile (a stream's consumer closing a socket)
      // waited natively: take them now.
      const m = this.fast.flush()
      if (m > 0) this.onBatch(m)
    }
    // Memory the batch gave back (recycled once this returns) may let
    // parked ops go.
    if (this.parked.length > 0 && !this.retryScheduled) {
      this.retryScheduled = true
      queueMicrotask(this.retryParked)
    }
    // Every op of the batch is settled; only now may an exception thrown
    // by code run from a settlement (a stream's consumer) surface.
    if (thrown !== undefined) {
      const { e } = thrown
      queueMicrotask(() => {
        throw e
      })
    }
  }

  private settle(op: Op, result: number, extra: unknown): void {
    if (op.kind === K_CB) {
      ;(op.ctx as (result: number) => void)(result)
      return
    }
    if (op.onAbort !== undefined) op.signal!.removeEventListener('abort', op.onAbort)
    if (op.kind === K_STREAM) {
      ;(op.ctx as StreamSink).end(result)
      return
    }
    if (op.kind === K_MANY) {
      const g = op.ctx as Group
      if (result === ECANCELED && g.aborted) g.error ??= new AbortError(undefined, { cause: g.reason })
      else if (result < 0) g.error ??= systemError(result, op.syscall)
      else g.counts[op.index] = result
      if (--g.remaining === 0) this.finishGroup(g)
      return
    }
    if (result < 0) {
      // The kernel did not run it because the signal fired: AbortError.
      // An op that ran anyway reports what it did (below, or its error).
      if (op.aborted && result === ECANCELED) op.reject(new AbortError(undefined, { cause: op.signal?.reason }))
      else op.reject(systemError(result, op.syscall, op.path, undefined, op.dest))
      return
    }
    const resolve = op.resolve as (v: unknown) => void
    switch (op.kind) {
      case K_READ:
        resolve({ bytesRead: result, buffer: op.ctx })
        break
      case K_WRITE:
        resolve({ bytesWritten: result, buffer: op.ctx })
        break
      case K_READV:
        resolve({ bytesRead: result, buffers: op.ctx })
        break
      case K_WRITEV:
        resolve({ bytesWritten: result, buffers: op.ctx })
        break
      case K_STAT:
        // ctx: another shape of the record (BigIntStats), or none.
        resolve(op.ctx === undefined ? new Stats(extra as Float64Array) : (op.ctx as (f: Float64Array) => unknown)(extra as Float64Array))
        break
      case K_SOCKET:
        resolve((op.ctx as (id: number) => unknown)(result))
        break
      case K_CALL:
        resolve((op.ctx as (bytes: Buffer | undefined, n: number) => unknown)(extra as Buffer | undefined, result))
        break
      case K_OPEN: {
        const info = this.native.fileInfo(result)
        if (info === null) op.reject(systemError(-9, op.syscall, op.path))
        else resolve((op.ctx as OpenFactory)(result, info))
        break
      }
      case K_NUMBER:
        resolve(result)
        break
      default:
        resolve(undefined)
    }
  }

  private finishGroup(g: Group): void {
    if (g.error !== null) g.reject(g.error)
    else g.resolve(g.counts)
  }

  stats(): NativeStats {
    return this.native.stats()
  }

  /** Closes the ring; pending ops reject with ECANCELED at once. */
  close(): Promise<void> {
    if (this.closing !== null) return this.closing
    this.closed = true
    this.closing = new Promise<void>((resolve) => {
      this.closeResolve = resolve
    })
    this.dropParked()
    this.native.close()
    return this.closing
  }
}

export const Kinds = { K_VOID, K_NUMBER, K_READ, K_WRITE, K_READV, K_WRITEV, K_STAT, K_OPEN, K_SOCKET, K_CALL } as const
export type { SystemError }
