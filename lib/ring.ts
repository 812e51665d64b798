// Ring: one io_uring instance with its completion thread. Opens files and
// allocates library-owned aligned buffers; `close()` settles everything.

import { constants } from 'node:fs'
import { constants as osConstants } from 'node:os'
import { Kinds, RingCore } from './core'
import { invalidArgType, invalidArgValue, ringClosed } from './errors'
import { FileHandle } from './file'
import { RingFs } from './fs/paths'
import { connectOn, listenOn, type CallbackConnectOptions, type CallbackListenOptions, type ConnectOptions, type ListenOptions, type Listener, type Socket } from './net'
import type { CallbackSocket } from './net-callback'
import type { NativeRing, NativeStats } from './native'
import { parseFlags, parseMode, pathText, validateBoolean, validateInteger, validateObject, validatePath, validateSignal } from './validators'

export interface RingOptions {
  /** Submission queue entries, 1 to 32768. Default 256. */
  entries?: number
  /** Kernel submission-polling thread. Default false (it was slower on 2 cores). */
  sqpoll?: boolean
  /** Ops in the kernel at once; further ops wait in a queue. Default 1024. */
  maxInFlight?: number
  /** Register allocAligned buffers with the kernel (read_fixed/write_fixed). Default true. */
  registerBuffers?: boolean
  /** Register open files with the kernel (fixed files). Default true. */
  registerFiles?: boolean
  /**
   * How completions reach JavaScript. `'thread'` (default): a completion
   * thread per Ring posts each batch through a threadsafe function.
   * `'loop'`: the JS thread's event loop polls the ring itself, one thread
   * switch less per completion (lower latency at low queue depth). The
   * environment variable RINGLINE_COMPLETION sets the default, except on a
   * sim ring, which defaults to `'loop'`: a seeded run is the same run only
   * there (with `'thread'`, when completions reach JavaScript depends on
   * real time, and with ops in flight together so may the run).
   */
  completion?: 'thread' | 'loop'
  /** Bytes per provided receive buffer (the largest chunk one completion carries). Default 16384. */
  recvBufferSize?: number
  /** Provided receive buffers shared by the ring's sockets, a power of two. Default 512. */
  recvBuffers?: number
  /**
   * Sends of at least this many bytes use zero-copy `SENDMSG_ZC` even
   * without `{ zeroCopy: true }`; -1 (default): only when asked.
   */
  zeroCopyThreshold?: number
  /**
   * The engine. `'auto'` (default): io_uring where the kernel allows it
   * (setup and every opcode ringline uses), else mio, with the reason in
   * `ring.fallbackReason`. `'io_uring'`: io_uring or an error with code
   * ERR_RINGLINE_IO_URING_UNAVAILABLE. `'mio'`: epoll/kqueue for sockets
   * and a thread pool for files. `'sim'`: an in-memory disk, seeded (see
   * `ring.sim`); nothing real is touched. The environment variable
   * RINGLINE_BACKEND sets the default.
   */
  backend?: 'auto' | 'io_uring' | 'mio' | 'sim'
  /**
   * The sim engine's seed (an integer, 0 to 2^53 - 1): the order of its
   * completions and what a random crash keeps follow from it. Default:
   * RINGLINE_SIM_SEED, else a random one (`ring.sim.seed` says which).
   */
  seed?: number
  /**
   * Most threads the mio engine runs file I/O on, started as needed
   * (1 to 1024, default 16). No effect on io_uring.
   */
  fileThreads?: number
  /**
   * Microseconds the event loop may spin, watching for completions, before
   * it blocks while a few O_DIRECT reads or writes, and nothing else, are
   * in flight (0 to 10000, default 200; 0 never spins). It spins only while recent waits were shorter than
   * this, and stops as soon as a completion or any other event of the loop
   * is ready. A thread that sleeps is woken by an interrupt, which costs
   * tens of µs where an idle CPU halts (virtual machines): an O_DIRECT read
   * at 1 in flight went from about 11k/s to 16-17k/s. io_uring, thread
   * mode; no effect elsewhere.
   */
  busyPoll?: number
}

export interface OpenOptions {
  /** Open with O_DIRECT: I/O bypasses the page cache; positions and lengths must be aligned. */
  direct?: boolean
  signal?: AbortSignal
}

/** Counters and settings of a Ring. */
export type RingStats = NativeStats

const O_DIRECT = (constants as Record<string, number>).O_DIRECT ?? 0

// A Ring dropped without close() still has a completion thread and a ring
// fd; close them when the Ring (and every FileHandle, which holds its Ring)
// is unreachable. Pending ops keep their Ring reachable through their
// promises' reactions, so this never cancels an op someone awaits.
const unclosed = new FinalizationRegistry<RingCore>((core) => {
  if (!core.closed) void core.close()
})

function option(o: Record<string, unknown>, key: string, min: number, max: number, def: number): number {
  return o[key] === undefined ? def : validateInteger(o[key], `options.${key}`, min, max)
}

/**
 * The completion mode. A sim ring defaults to 'loop' whatever
 * RINGLINE_COMPLETION says: its completions are then taken on the JS
 * thread at a point of the event loop the program fixes, which keeps a
 * seeded run the same run; with 'thread' they reach JavaScript when the
 * completion thread gets to them, which real time decides.
 */
function completionOption(o: Record<string, unknown>, sim: boolean): 'thread' | 'loop' {
  const v = o.completion ?? (sim ? 'loop' : (process.env.RINGLINE_COMPLETION ?? 'thread'))
  if (v !== 'thread' && v !== 'loop') throw invalidArgValue('options.completion', v, "must be 'thread' or 'loop'")
  return v
}

function backendOption(o: Record<string, unknown>): 'auto' | 'io_uring' | 'mio' | 'sim' {
  const v = o.backend ?? process.env.RINGLINE_BACKEND ?? 'auto'
  if (v !== 'auto' && v !== 'io_uring' && v !== 'mio' && v !== 'sim') {
    throw invalidArgValue(o.backend === undefined ? 'RINGLINE_BACKEND' : 'options.backend', v, "must be 'auto', 'io_uring', 'mio' or 'sim'")
  }
  return v
}

function seedOption(o: Record<string, unknown>): number {
  if (o.seed !== undefined) return validateInteger(o.seed, 'options.seed', 0, Number.MAX_SAFE_INTEGER)
  const env = process.env.RINGLINE_SIM_SEED
  if (env !== undefined && env !== '') return validateInteger(Number(env), 'RINGLINE_SIM_SEED', 0, Number.MAX_SAFE_INTEGER)
  return Math.floor(Math.random() * 2 ** 32)
}

const SYNC_APPEND: ReadonlySet<string> = new Set(['', 'linked', 'dsync', 'group+linked', 'group+dsync'])

/**
 * How `append(data, { sync })` makes data durable, from RINGLINE_SYNC_APPEND
 * (read when a Ring is made; for benchmarks, not an option): 'linked' (a
 * write linked to an fdatasync/fsync), 'dsync' (one write with RWF_DSYNC or
 * RWF_SYNC), each append on its own; 'group+linked' and 'group+dsync' share
 * fsyncs between appends in flight together, the lone one going as said.
 * Unset or '': the default, 'group+dsync' (the fastest measured: see
 * LoneSync in crates/core/src/driver/mod.rs).
 */
function syncAppendOption(): string {
  const v = process.env.RINGLINE_SYNC_APPEND ?? ''
  if (!SYNC_APPEND.has(v)) throw invalidArgValue('RINGLINE_SYNC_APPEND', v, "must be 'linked', 'dsync', 'group+linked' or 'group+dsync'")
  return v
}

/** What a crash keeps of what was not made durable. */
export type CrashMode = 'pessimistic' | 'optimistic' | 'random'

const CRASH_MODES: Record<CrashMode, number> = { pessimistic: 0, optimistic: 1, random: 2 }

/** Ops a sim fault rule can name (`op`). */
export type SimOp =
  | 'open' | 'close' | 'read' | 'write' | 'fsync' | 'stat' | 'truncate' | 'unlink' | 'rename' | 'mkdir'
  | 'symlink' | 'link' | 'access' | 'readdir' | 'readlink' | 'chmod' | 'chown' | 'utimes' | 'mkdtemp'
  | 'statfs' | 'readFile' | 'writeFile' | 'copyFile'
  | 'connect' | 'accept' | 'send' | 'recv' | 'shutdown'

const SIM_OPS: ReadonlySet<string> = new Set<SimOp>([
  'open', 'close', 'read', 'write', 'fsync', 'stat', 'truncate', 'unlink', 'rename', 'mkdir', 'symlink', 'link',
  'access', 'readdir', 'readlink', 'chmod', 'chown', 'utimes', 'mkdtemp', 'statfs', 'readFile', 'writeFile', 'copyFile',
  'connect', 'accept', 'send', 'recv', 'shutdown',
])

/** A fault rule of a sim ring: see `SimControls.fault`. */
export interface SimFault {
  /** The op it hits; any op when left out. */
  op?: SimOp
  /**
   * Text the op's path must contain (an fd op: the path its file was opened
   * by; a socket op: `local>peer`, e.g. `127.0.0.1:32768>127.0.0.1:8080`,
   * so `':8080'` picks a port), or a RegExp of plain text.
   */
  path?: string | RegExp
  /**
   * Fail with this error code ('EIO', 'ENOSPC', ...); the op changes
   * nothing. On `send` and `recv`, 'ECONNRESET', 'EPIPE' and
   * 'ECONNABORTED' reset the connection: both ends see it.
   */
  error?: string
  /**
   * Instead of an error: 'lost' (a write reports success and stores
   * nothing), 'torn' (a write reports success and stores only the 512-byte
   * sectors of its first half), 'misdirected' (a write reports success and
   * lands whole 1 to 8 sectors before or after where it was asked), 'short'
   * (a read, write, send or receive does half), 'bitflip' (a read returns
   * one bit flipped), 'delay' (the op completes `delayMs` of virtual time
   * late, after ops that finish earlier; a send's bytes arrive that late).
   * 'lost', 'torn' and 'misdirected' apply to single-buffer writes.
   */
  kind?: 'lost' | 'torn' | 'misdirected' | 'short' | 'bitflip' | 'delay'
  /** With kind 'delay': how late, in milliseconds of virtual time. */
  delayMs?: number
  /** Matching ops let through first (default 0). */
  after?: number
  /** Hits at most (default: no limit). */
  times?: number
  /** Chance of a hit for each matching op, 0 to 1 (default 1), drawn from the seed. */
  probability?: number
}

const FAULT_KINDS: Record<string, number> = { lost: 1, short: 2, bitflip: 3, torn: 4, misdirected: 5, delay: 6 }

/** The native calls SimControls makes. */
type SimNative = Pick<NativeRing, 'simCrash' | 'simFault' | 'simClearFaults' | 'simTrace' | 'simPoint' | 'simRecord' | 'simBuildStates' | 'simLoadState' | 'simPartition' | 'simHeal' | 'simAdvance'>

/** A crash state of `SimControls.explore`: which one, and where in the recorded run the power went out. */
export interface CrashState {
  /** Its number: `ring.sim.replay(state)` puts it on the disk again. */
  index: number
  /** Ops the workload had run when the power went out (see `SimControls.point`). */
  point: number
}

export interface ExploreOptions {
  /** The code under test, run once on the ring while every op is recorded. */
  workload: (ring: Ring) => Promise<void> | void
  /** Run on each crash state, on the same ring after a "reboot" (no file open); throw to fail. */
  check: (ring: Ring, state: CrashState) => Promise<void> | void
  /**
   * Also every unsynced write torn, the later writes to its file lost:
   * `true` keeps the first half of its 512-byte sectors, `'sector'` each
   * prefix of its sectors in turn (a disk writes a request's sectors in
   * order; up to 256 sectors of a write). Default false.
   */
  torn?: boolean | 'sector'
  /** Also every single unsynced write or name change lost while the rest is kept (default true). */
  reorder?: boolean
  /** Crash states at most (default 10,000). */
  limit?: number
}

export interface ExploreReport {
  /** Distinct crash states checked. */
  states: number
  /** Whether `limit` cut the list short. */
  truncated: boolean
  failures: Array<{ state: CrashState; error: unknown }>
}

/** The controls of a sim ring (`ring.sim`). */
export class SimControls {
  readonly #native: SimNative
  readonly #ring: Ring
  /** The seed this ring runs on: give it back as `seed` (or RINGLINE_SIM_SEED) to run the same way again. */
  readonly seed: number

  /** @internal Made by Ring. */
  constructor(ring: Ring, seed: number, native: SimNative) {
    this.#ring = ring
    this.seed = seed
    this.#native = native
  }

  /**
   * Where the run is: how many ops the ring has run. A workload under
   * `explore` notes it when it is told something is durable; a check
   * compares it with the crash state's `point`.
   */
  point(): number {
    return this.#native.simPoint()
  }

  /**
   * Runs `workload` once, recording the disk after every op that may change
   * it, then runs `check` on every distinct crash state of that run: at
   * every point, the disk with nothing unsynced kept and with everything
   * kept, and (`reorder`, default) each single unsynced write or name change
   * lost, and (`torn`) each unsynced write torn. States are deduplicated by
   * what the disk holds, in the order of the run. The ring's disk is left
   * as the last check left it.
   */
  async explore(options: ExploreOptions): Promise<ExploreReport> {
    const o = validateObject(options, 'options') as unknown as ExploreOptions
    if (typeof o.workload !== 'function') throw invalidArgType('options.workload', 'of type function', o.workload)
    if (typeof o.check !== 'function') throw invalidArgType('options.check', 'of type function', o.check)
    const torn = o.torn === 'sector' ? 2 : (o.torn === undefined ? false : validateBooleanOr(o.torn, 'options.torn')) ? 1 : 0
    const reorder = o.reorder === undefined ? true : validateBoolean(o.reorder, 'options.reorder')
    const limit = o.limit === undefined ? 10_000 : validateInteger(o.limit, 'options.limit', 1, 2 ** 31 - 1)
    this.#native.simRecord(true)
    try {
      await o.workload(this.#ring)
    } finally {
      this.#native.simRecord(false)
    }
    const built = this.#native.simBuildStates(torn, reorder, limit)
    const states = Math.abs(built)
    const failures: ExploreReport['failures'] = []
    for (let index = 0; index < states; index++) {
      const state = { index, point: this.#native.simLoadState(index) }
      try {
        await o.check(this.#ring, state)
      } catch (error) {
        failures.push({ state, error })
      }
    }
    return { states, truncated: built < 0, failures }
  }

  /** Puts a crash state of the last `explore` on the disk again, as a reboot finds it. */
  replay(state: CrashState | number): Promise<void> {
    const index = typeof state === 'number' ? state : state?.index
    if (!Number.isInteger(index) || this.#native.simLoadState(index as number) < 0) {
      return Promise.reject(invalidArgValue('state', state, 'must be a crash state of the last explore()'))
    }
    return Promise.resolve()
  }

  /**
   * Adds a fault rule: the ops it selects (by `op` and `path`, past the
   * first `after`, at most `times`, each with `probability`, drawn from the
   * seed) fail with `error`, or suffer `kind`. Rules are tried in the order
   * they were added; the first that hits decides.
   */
  fault(rule: SimFault): void {
    const o = validateObject(rule, 'rule') as SimFault
    if (o.op !== undefined && (typeof o.op !== 'string' || !SIM_OPS.has(o.op))) throw invalidArgValue('rule.op', o.op, `must be one of ${[...SIM_OPS].join(', ')}`)
    let path: Buffer | null = null
    if (o.path instanceof RegExp) {
      if (/[\\^$.*+?()[\]{}|]/.test(o.path.source) || o.path.flags !== '') throw invalidArgValue('rule.path', o.path, 'must be a string or a RegExp of plain text (the sim matches a substring)')
      path = Buffer.from(o.path.source)
    } else if (o.path !== undefined) {
      if (typeof o.path !== 'string') throw invalidArgType('rule.path', 'of type string or an instance of RegExp', o.path)
      path = Buffer.from(o.path)
    }
    let kind = 0
    let errno = 0
    if (o.error !== undefined) {
      if (o.kind !== undefined) throw invalidArgValue('rule.kind', o.kind, 'cannot be given with rule.error')
      const n = (osConstants.errno as Record<string, number>)[String(o.error)]
      if (typeof o.error !== 'string' || n === undefined) throw invalidArgValue('rule.error', o.error, 'must be an error code such as EIO')
      errno = n
    } else {
      if (o.kind === undefined || !Object.hasOwn(FAULT_KINDS, o.kind)) throw invalidArgValue('rule.kind', o.kind, "must be 'lost', 'torn', 'misdirected', 'short', 'bitflip' or 'delay' (or give rule.error)")
      kind = FAULT_KINDS[o.kind]
    }
    let delayMs = 0
    if (o.kind === 'delay') {
      const d: unknown = o.delayMs
      if (typeof d !== 'number' || !(d >= 0 && d <= 1e9)) throw invalidArgValue('rule.delayMs', d, "must be a number of milliseconds from 0 to 1e9 with kind 'delay'")
      delayMs = d
    } else if (o.delayMs !== undefined) {
      throw invalidArgValue('rule.delayMs', o.delayMs, "is only taken with kind 'delay'")
    }
    const after = o.after === undefined ? 0 : validateInteger(o.after, 'rule.after', 0)
    const times = o.times === undefined ? Infinity : validateInteger(o.times, 'rule.times', 1)
    const p = o.probability ?? 1
    if (typeof p !== 'number' || !(p >= 0 && p <= 1)) throw invalidArgValue('rule.probability', p, 'must be a number from 0 to 1')
    this.#native.simFault(o.op ?? null, path, kind, errno, after, times, Math.round(p * 1e6), delayMs * 1000)
  }

  /** Removes every fault rule. */
  clearFaults(): void {
    this.#native.simClearFaults()
  }

  /**
   * Cuts the sim's network: every connection with an end on `port` (every
   * connection when left out) carries nothing until `heal()`. Bytes sent
   * meanwhile wait (TCP would retransmit them); a connect across the cut
   * waits for `heal()`, or fails with its `timeout` (in virtual time: as
   * soon as nothing else is left to happen in the sim).
   */
  partition(port?: number): void {
    const p = port === undefined ? null : validateInteger(port, 'port', 1, 65535)
    this.#native.simPartition(p)
  }

  /** Removes every partition: what they held back travels on. */
  heal(): void {
    this.#native.simHeal()
  }

  /**
   * Moves the sim's virtual time on by `ms` milliseconds (what falls due
   * meanwhile happens), in no real time. ringline's own waits on a sim ring
   * (a connect's `timeout`, `rm`'s `retryDelay`) are in virtual time too.
   */
  advance(ms: number): Promise<void> {
    try {
      if (typeof ms !== 'number' || !(ms >= 0 && ms <= 1e12)) throw invalidArgValue('ms', ms, 'must be a number of milliseconds from 0 to 1e12')
      this.#native.simAdvance(ms)
      return Promise.resolve()
    } catch (e) {
      return Promise.reject(e)
    }
  }

  /**
   * Every op the ring ran, one line each: virtual time (µs), op, path,
   * result, and the fault that hit it (the last 1,048,576 lines: older ones
   * are dropped). The same program on the same seed gives the same lines.
   */
  trace(): string[] {
    return this.#native.simTrace()
  }

  /**
   * Power loss. What was made durable (fsync, fdatasync, O_SYNC/O_DSYNC,
   * and names once their directory was fsynced) survives; of the rest,
   * `'pessimistic'` (default) keeps nothing, `'optimistic'` keeps all, and
   * `'random'` keeps each unsynced write whole, torn (a 512-byte sector at
   * a time) or not at all, and each unsynced name change or not, drawn
   * from the seed. Every file open on the ring answers EBADF from now on;
   * open them again, as a program does after a reboot.
   */
  crash(options?: { mode?: CrashMode }): Promise<void> {
    try {
      const o = options === undefined ? {} : validateObject(options, 'options')
      const mode = o.mode ?? 'pessimistic'
      if (typeof mode !== 'string' || !(mode in CRASH_MODES)) throw invalidArgValue('options.mode', mode, "must be 'pessimistic', 'optimistic' or 'random'")
      this.#native.simCrash(CRASH_MODES[mode as CrashMode])
      return Promise.resolve()
    } catch (e) {
      return Promise.reject(e)
    }
  }
}

/** A boolean option that also takes 'sector' (checked before). */
function validateBooleanOr(v: unknown, name: string): boolean {
  if (typeof v !== 'boolean') throw invalidArgType(name, "of type boolean or 'sector'", v)
  return v
}

function powerOfTwo(n: number, name: string): number {
  if ((n & (n - 1)) !== 0) throw invalidArgValue(name, n, 'must be a power of two')
  return n
}

function flagOption(o: Record<string, unknown>, key: string, def: boolean): boolean {
  return o[key] === undefined ? def : validateBoolean(o[key], `options.${key}`)
}

export class Ring {
  readonly #core: RingCore
  /** node:fs/promises functions on this ring (`ringline/fs` has them on the default ring). */
  readonly fs: RingFs
  readonly #completion: 'thread' | 'loop'
  readonly #sim: SimControls | null

  constructor(options?: RingOptions) {
    const o = options === undefined ? {} : validateObject(options, 'options')
    this.#completion = completionOption(o, backendOption(o) === 'sim')
    const seed = seedOption(o)
    this.#core = new RingCore({
      entries: option(o, 'entries', 1, 32768, 256),
      sqpoll: flagOption(o, 'sqpoll', false),
      maxInFlight: option(o, 'maxInFlight', 2, 1 << 20, 1024),
      registerBuffers: flagOption(o, 'registerBuffers', true),
      registerFiles: flagOption(o, 'registerFiles', true),
      completion: this.#completion,
      recvBufferSize: option(o, 'recvBufferSize', 64, 1 << 24, 16384),
      recvBuffers: powerOfTwo(option(o, 'recvBuffers', 1, 32768, 512), 'options.recvBuffers'),
      zeroCopyThreshold: option(o, 'zeroCopyThreshold', -1, 2 ** 31 - 1, -1),
      backend: backendOption(o),
      fileThreads: option(o, 'fileThreads', 1, 1024, 16),
      // Bun's Node-API aborts the process in uv_poll_init.
      pollAtLowDepth: process.versions.bun === undefined,
      busyPoll: option(o, 'busyPoll', 0, 10000, 200),
      seed,
      syncAppend: syncAppendOption(),
    })
    this.fs = new RingFs(this, this.#core)
    const core = this.#core
    this.#sim = core.backend === 'sim' ? new SimControls(this, seed, core.native) : null
    unclosed.register(this, this.#core, this)
  }

  /** The engine in use: `'io_uring'`, `'mio'` or `'sim'`. */
  get backend(): 'io_uring' | 'mio' | 'sim' {
    return this.#core.backend
  }

  /** The controls of a sim ring (seed, crash); null on the other engines. */
  get sim(): SimControls | null {
    return this.#sim
  }

  /** How completions reach JavaScript: `'thread'` or `'loop'`. */
  get completion(): 'thread' | 'loop' {
    return this.#completion
  }

  /** Why the preferred engine was not used, or null. */
  get fallbackReason(): string | null {
    return this.#core.fallbackReason
  }

  /** Whether `close()` has been called. */
  get closed(): boolean {
    return this.#core.closed
  }

  /**
   * Opens a file, like node:fs/promises `open(path, flags, mode)`, with
   * `{ direct: true }` for O_DIRECT.
   */
  open(path: string | Buffer | URL, flags?: string | number, mode?: string | number, options?: OpenOptions): Promise<FileHandle> {
    try {
      const p = validatePath(path)
      let f = parseFlags(flags)
      const m = parseMode(mode, 0o666)
      let signal: AbortSignal | undefined
      if (options !== undefined) {
        const o = validateObject(options, 'options')
        if (o.direct !== undefined && validateBoolean(o.direct, 'options.direct')) f |= O_DIRECT
        signal = validateSignal(o.signal)
      }
      if (this.#core.closed) return Promise.reject(ringClosed('open'))
      const text = pathText(p)
      if (p.length === 0) {
        // What the kernel answers; no need to ask it.
        return this.#core.begin(Kinds.K_OPEN, 'open', null, text, undefined, () => -2)
      }
      const core = this.#core
      const factory = (id: number, info: number[]): FileHandle => new FileHandle(this, core, id, info, text)
      return core.begin(Kinds.K_OPEN, 'open', factory, text, signal, (t) => core.native.open(t, p, f, m))
    } catch (e) {
      return Promise.reject(e)
    }
  }

  /**
   * `size` zeroed bytes at a 4096-byte-aligned address, owned by the
   * library and registered with the kernel where it allows: reads and writes
   * on this memory (or any slice of it) run zero-copy, and it is safe for
   * O_DIRECT. It stays valid while any op uses it, even if its ArrayBuffer
   * is transferred.
   */
  allocAligned(size: number): Buffer {
    validateInteger(size, 'size', 0, 2 ** 31 - 1)
    if (this.#core.closed) throw ringClosed('allocAligned')
    return this.#core.native.allocAligned(size)
  }

  /**
   * Listens for TCP connections; resolves once the socket is bound and
   * listening. Rejects with `EADDRINUSE` (and node:net's `address` and
   * `port`) and the like. With `socket` handlers (the callback API),
   * accepted connections go to them as CallbackSockets instead.
   */
  listen(options?: ListenOptions | CallbackListenOptions): Promise<Listener> {
    try {
      return listenOn(this, this.#core, options)
    } catch (e) {
      return Promise.reject(e)
    }
  }

  /**
   * Opens a TCP connection. Rejects with `ECONNREFUSED`, `ETIMEDOUT` (after
   * `timeout` ms), an `AbortError` (`signal`) and the like, with `address`
   * and `port`. With `socket` handlers (the callback API), resolves to a
   * CallbackSocket whose chunks go to them.
   */
  connect(options: CallbackConnectOptions): Promise<CallbackSocket>
  connect(options: ConnectOptions): Promise<Socket>
  connect(options: ConnectOptions | CallbackConnectOptions): Promise<Socket | CallbackSocket> {
    try {
      return connectOn(this, this.#core, options)
    } catch (e) {
      return Promise.reject(e)
    }
  }

  /** Counters: submitted, completed, inFlight, queued, registeredBuffers, ... */
  stats(): RingStats {
    return this.#core.stats()
  }

  /**
   * Closes the ring. Ops still pending reject with ECANCELED right away;
   * the promise resolves once the kernel has handed back every one of them.
   */
  close(): Promise<void> {
    unclosed.unregister(this)
    return this.#core.close()
  }
}
