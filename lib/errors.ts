// Node-style errors: argument errors with Node's codes and messages, and
// system errors shaped like those of node:fs (code, negative errno, syscall,
// path, and the message libuv would give).

import { inspect, getSystemErrorMap } from 'node:util'

/** Error codes ringline raises for bad arguments, as Node does. */
export type ArgErrorCode = 'ERR_INVALID_ARG_TYPE' | 'ERR_OUT_OF_RANGE' | 'ERR_INVALID_ARG_VALUE'

/** A Node-style system error (`ENOENT`, `EBADF`, ...). */
export interface SystemError extends Error {
  code: string
  errno: number
  syscall: string
  path?: string
  /** The second path of a two-path call (rename, link, symlink, copyFile). */
  dest?: string
}

/** `err` with node's `code` (and its stack's first line, "TypeError [ERR_X]: ...", as node prints it). */
export function withCode<E extends Error>(err: E, code: string): E & { code: string } {
  const e = err as E & { code: string }
  e.code = code
  // Node prints "TypeError [ERR_X]: ..." from the stack; match it.
  e.stack = e.stack?.replace(/^(\w+)/, `$1 [${code}]`)
  return e
}

/** An Error with node's `code` (printed `Error [CODE]: ...`, as node does). */
export function codedError(code: string, message: string): Error & { code: string } {
  return withCode(new Error(message), code)
}

/** How Node describes a received value at the end of an argument error. */
export function describeReceived(value: unknown): string {
  if (value == null) return ` Received ${value}`
  if (typeof value === 'function') return ` Received function ${value.name}`
  if (typeof value === 'object') {
    const ctor = (value as object).constructor
    if (ctor?.name) return ` Received an instance of ${ctor.name}`
    return ` Received ${inspect(value, { depth: -1 })}`
  }
  let shown = inspect(value, { colors: false })
  if (shown.length > 28) shown = `${shown.slice(0, 25)}...`
  return ` Received type ${typeof value} (${shown})`
}

/** `TypeError [ERR_INVALID_ARG_TYPE]`. `expected` reads like Node's: "of type number". */
export function invalidArgType(name: string, expected: string, value: unknown): TypeError & { code: string } {
  const what = name.includes('.') ? 'property' : 'argument'
  return withCode(new TypeError(`The "${name}" ${what} must be ${expected}.${describeReceived(value)}`), 'ERR_INVALID_ARG_TYPE')
}

/** `RangeError [ERR_OUT_OF_RANGE]`. */
export function outOfRange(name: string, range: string, value: unknown): RangeError & { code: string } {
  const shown = typeof value === 'number' || typeof value === 'bigint' ? String(value) : inspect(value)
  return withCode(new RangeError(`The value of "${name}" is out of range. It must be ${range}. Received ${shown}`), 'ERR_OUT_OF_RANGE')
}

/** `TypeError [ERR_INVALID_ARG_VALUE]`. */
export function invalidArgValue(name: string, value: unknown, reason = 'is invalid'): TypeError & { code: string } {
  const kind = name.includes('.') ? 'property' : 'argument'
  return withCode(new TypeError(`The ${kind} '${name}' ${reason}. Received ${inspect(value)}`), 'ERR_INVALID_ARG_VALUE')
}

const systemErrors = getSystemErrorMap()

/**
 * A system error for a negative errno from the kernel, shaped like Node's:
 * `ENOENT: no such file or directory, open '/x'`.
 */
export function systemError(errno: number, syscall: string, path?: string, detail?: string, dest?: string): SystemError {
  const neg = errno > 0 ? -errno : errno
  const [code, description] = systemErrors.get(neg) ?? [`Unknown system error ${neg}`, 'unknown error']
  let message = `${code}: ${detail ?? description}, ${syscall}`
  if (path !== undefined) message += ` '${path}'`
  if (dest !== undefined) message += ` -> '${dest}'`
  const err = new Error(message) as SystemError
  err.errno = neg
  err.code = code
  err.syscall = syscall
  if (path !== undefined) err.path = path
  if (dest !== undefined) err.dest = dest
  return err
}

/** Node's `AbortError` (`code: 'ABORT_ERR'`, `name: 'AbortError'`). */
export class AbortError extends Error {
  readonly code = 'ABORT_ERR'
  constructor(message = 'The operation was aborted', options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'AbortError'
  }
}

/** Raised by operations on a Ring that has been closed. */
export function ringClosed(syscall: string): Error & { code: string } {
  const e = new Error(`Ring is closed, ${syscall}`) as Error & { code: string }
  e.code = 'ERR_RING_CLOSED'
  return e
}

/** How the native constructor's message starts when io_uring was required and is not available. */
const IO_URING_UNAVAILABLE = 'io_uring unavailable: '

/**
 * How the native constructor's message starts when a system error stopped
 * every engine (the descriptor limit): `system error <errno> <syscall>: `.
 */
const SYSTEM_ERROR = /^system error (\d+) (\w+): /

/**
 * What `new Ring()` throws for the native constructor's error. Out of file
 * descriptors (whatever the backend): a Node-style system error, `EMFILE`
 * or `ENFILE` with negative `errno` and the `syscall` that failed (such as
 * `io_uring_setup` or `eventfd`), as node:fs gives for the same limit.
 * `{ backend: 'io_uring' }` where io_uring cannot be used: code
 * ERR_RINGLINE_IO_URING_UNAVAILABLE, the reason (for example
 * "io_uring_setup: EPERM (blocked by seccomp or kernel.io_uring_disabled)")
 * in the message and in `reason`. Other errors pass through unchanged.
 */
export function backendError(err: unknown): unknown {
  if (!(err instanceof Error)) return err
  const sys = SYSTEM_ERROR.exec(err.message)
  if (sys !== null) return systemError(-Number(sys[1]), sys[2])
  if (!err.message.startsWith(IO_URING_UNAVAILABLE)) return err
  const reason = err.message.slice(IO_URING_UNAVAILABLE.length)
  const e = new Error(`io_uring is not available: ${reason}`) as Error & { code: string; reason: string }
  e.reason = reason
  return withCode(e, 'ERR_RINGLINE_IO_URING_UNAVAILABLE')
}

/** The prefixes of node's SystemError codes that ringline raises as node does. */
const NODE_SYSTEM_ERRORS = {
  ERR_FS_CP_DIR_TO_NON_DIR: 'Cannot overwrite non-directory with directory',
  ERR_FS_CP_EEXIST: 'Target already exists',
  ERR_FS_CP_EINVAL: 'Invalid src or dest',
  ERR_FS_CP_FIFO_PIPE: 'Cannot copy a FIFO pipe',
  ERR_FS_CP_NON_DIR_TO_DIR: 'Cannot overwrite directory with non-directory',
  ERR_FS_CP_SOCKET: 'Cannot copy a socket file',
  ERR_FS_CP_SYMLINK_TO_SUBDIRECTORY: 'Cannot overwrite symlink in subdirectory of self',
  ERR_FS_CP_UNKNOWN: 'Cannot copy an unknown file type',
  ERR_FS_EISDIR: 'Path is a directory',
} as const

/** What node's SystemError carries in `info`. */
export interface SystemErrorInfo {
  message: string
  path: string
  syscall: string
  errno: number
  code: string
}

/**
 * node's SystemError (name 'SystemError'): "<prefix>: <syscall> returned
 * <code> (<message>) <path>", with `info` and its fields on the error.
 */
export function nodeSystemError(code: keyof typeof NODE_SYSTEM_ERRORS, info: SystemErrorInfo): Error {
  const e = new Error(`${NODE_SYSTEM_ERRORS[code]}: ${info.syscall} returned ${info.code} (${info.message}) ${info.path}`) as Error & Record<string, unknown>
  e.name = 'SystemError'
  e.code = code
  e.info = info
  e.errno = info.errno
  e.syscall = info.syscall
  e.path = info.path
  e.stack = e.stack?.replace(/^Error/, `SystemError [${code}]`)
  return e
}
