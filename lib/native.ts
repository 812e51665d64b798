// The native binding, loaded by loader.ts, typed: the part of it ringline uses.

import { loadNative } from './loader'

export interface NativeRingOptions {
  entries: number
  completion: 'thread' | 'loop'
  sqpoll: boolean
  maxInFlight: number
  registerBuffers: boolean
  registerFiles: boolean
  recvBufferSize: number
  recvBuffers: number
  zeroCopyThreshold: number
  backend: 'auto' | 'io_uring' | 'mio' | 'sim'
  fileThreads: number
  /**
   * Thread mode: the event loop may wait on the ring's eventfd itself at low
   * queue depth (a uv_poll_t). False where the runtime has no uv_poll (Bun).
   */
  pollAtLowDepth: boolean
  /** Longest spin of the loop before it blocks at low depth, in µs (0: never). */
  busyPoll: number
  seed: number
  /**
   * How synced appends become durable (RINGLINE_SYNC_APPEND, for
   * benchmarks): '' the default, or 'linked', 'dsync', 'group+linked',
   * 'group+dsync' (see crates/node/src/ring.rs).
   */
  syncAppend: string
}

export interface NativeAddress {
  address: string
  port: number
  family: number
}

export interface NativeStats {
  backend: string
  submitted: number
  completed: number
  inFlight: number
  queued: number
  openFiles: number
  registeredFiles: number
  registeredBuffers: number
  unregisteredBuffers: number
  bufferRegistrationFailures: number
  bufferRegistrationError?: string | null
  bounced: number
  fixedBufferOps: number
  sockets: number
  sends: number
  /** Of `sends`, those the socket took whole during the call, with no kernel op (a large send, or a lone small one). */
  sentAtOnce: number
  zeroCopySends: number
  zeroCopyCopied: number
  zeroCopySupported: boolean
  recvBuffersInUse: number
  recvRearms: number
  /** Ops the completion thread submitted for the JS thread, at depth (io_uring, thread mode; else 0). */
  handedOff: number
  /** Spins of the event loop before it blocked that caught completions (io_uring, thread mode, `busyPoll`). */
  busyPolls: number
  /** What the engine does differently from io_uring, one sentence each (empty on io_uring). */
  degradations: string[]
  sqpoll: boolean
  entries: number
  maxInFlight: number
}

/** The per-op hot path: plain functions bound to one ring. */
export interface FastPath {
  /** With (token, file, off, len, pos) in the `args` given to fastPath. */
  read(buf: ArrayBufferView): number
  /** As read. */
  write(buf: ArrayBufferView): number
  /** The whole view at the end of the file; `sync` 0 none, 1 fdatasync, 2 fsync. */
  append(token: number, file: number, buf: ArrayBufferView, sync: number): number
  /** `datasync` 1: fdatasync, 0: fsync. */
  sync(token: number, file: number, datasync: number): number
  /**
   * `params` holds (token, offset, length, position) per view. Returns n when
   * all were queued, else -(queued * 4096 + errno).
   */
  readMany(file: number, views: ArrayBufferView[], params: Float64Array, n: number): number
  /**
   * Sends a view, or an array of views as one message; args[0..2] hold the
   * token, the socket and `how`: 1 zero-copy, 2 the socket has no earlier
   * send unsettled, so a send it takes whole during the call returns 1
   * (done; the token was not used).
   */
  send(data: ArrayBufferView | ArrayBufferView[]): number
  flush(): number
}

/** Every method returns 0 or a negative errno; results arrive via onBatch. */
export interface NativeRing {
  readonly backend: string
  readonly fallbackReason: string | null
  /** `path`: a string, or a Buffer whose bytes are the name. */
  open(token: number, path: string | Buffer, flags: number, mode: number): number
  vectored(token: number, file: number, bufs: ArrayBufferView[], pos: number, write: boolean): number
  append(token: number, file: number, buf: ArrayBufferView, sync: number): number
  sync(token: number, file: number, datasync: boolean): number
  stat(token: number, file: number): number
  /** An op on names: `code` from PATH_OPS; `b` the second path of rename, symlink, link; `mode` for mkdir. */
  pathOp(token: number, code: number, a: string | Buffer, b: string | Buffer | null, mode: number): number
  /**
   * A call of the blocking lane on `a` (`code` from CALLS), with `b` (copyFile's destination, or
   * the bytes writeFile writes) and numbers `n`; its bytes, if any, arrive in bufs[token].
   */
  call(token: number, code: number, a: string | Buffer, b: string | Buffer | null, n: number[]): number
  /** A call of the blocking lane on an open file (`code` from FILE_CALLS), with numbers `n`. */
  fileCall(token: number, code: number, file: number, n: number[]): number
  truncate(token: number, file: number, len: number): number
  closeFile(token: number, file: number): number
  cancel(token: number): boolean
  fastPath(args: Float64Array): FastPath
  fileInfo(file: number): number[] | null
  allocAligned(size: number): Buffer
  stats(): NativeStats
  close(): void
  /** Sim rings only: power loss (0 pessimistic, 1 optimistic, 2 random). */
  simCrash(mode: number): void
  simFault(op: string | null, path: Buffer | null, kind: number, errno: number, after: number, times: number, perMillion: number, delayUs: number): void
  simClearFaults(): void
  simTrace(): string[]
  simPoint(): number
  simRecord(on: boolean): void
  simBuildStates(torn: number, reorder: boolean, limit: number): number
  simLoadState(i: number): number
  simPartition(port: number | null): void
  simHeal(): void
  simAdvance(ms: number): void
  listen(host: string, port: number, backlog: number, ipv6Only: boolean, reusePort: boolean): number
  connect(token: number, host: string, port: number, timeoutMs: number): number
  acceptStart(token: number, file: number): number
  recvStart(token: number, file: number): number
  recvPause(file: number, paused: boolean): number
  /** Whether the pending stream `token` keeps the process alive (default true). */
  streamRef(token: number, on: boolean): void
  shutdown(token: number, file: number): number
  sockAddr(file: number, peer: boolean): NativeAddress | null
  setNoDelay(file: number, on: boolean): number
  setKeepAlive(file: number, on: boolean, idleSecs: number): number
}

export interface NativeRingConstructor {
  new (
    options: NativeRingOptions,
    onBatch: (n: number) => void,
    results: Float64Array,
    bufs: unknown[],
    payloads: (Buffer | undefined)[],
  ): NativeRing
}

export const { NativeRing } = loadNative<{ NativeRing: NativeRingConstructor }>()

/** The codes of NativeRing.pathOp (crates/node/src/ring.rs `path_op`). */
export const PATH_OPS = { stat: 0, lstat: 1, unlink: 2, rmdir: 3, rename: 4, mkdir: 5, symlink: 6, link: 7 } as const

/** The codes of NativeRing.call (crates/node/src/ring.rs `blocking_call`). */
export const CALLS = {
  access: 0,
  readdir: 1,
  readlink: 2,
  realpath: 3,
  chmod: 4,
  chown: 5,
  lchown: 6,
  utimes: 7,
  lutimes: 8,
  mkdtemp: 9,
  statfs: 10,
  copyFile: 11,
  readFile: 12,
  writeFile: 13,
} as const

/** crates/core op/call.rs READ_FILE_STEP: a readFile error's errno carries the call that failed. */
export const READ_FILE_STEP = 4096

/** The codes of NativeRing.fileCall. */
export const FILE_CALLS = { fchmod: 0, fchown: 1, futimes: 2 } as const
