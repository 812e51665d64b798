// Options of the whole-file functions, read as node:fs/promises reads them
// (its getOptions, assertEncoding and friends): the same defaults, the same
// errors.

import { invalidArgType, invalidArgValue, withCode, AbortError } from '../errors'
import { parseMode, validateInteger, validateSignal } from '../validators'

export interface WholeFileOptions {
  encoding?: BufferEncoding | 'buffer' | null
  flag?: string | number
  mode?: string | number
  flush?: boolean
  signal?: AbortSignal
}

/**
 * node:fs's getOptions: nothing (or a function) gives the defaults, a string
 * is the encoding, an object is taken as it is; the encoding and the signal
 * are checked.
 */
export function getOptions(options: unknown, defaults: WholeFileOptions): WholeFileOptions {
  if (options == null || typeof options === 'function') return defaults
  let o: WholeFileOptions
  if (typeof options === 'string') o = { ...defaults, encoding: options as BufferEncoding }
  else if (typeof options !== 'object') throw invalidArgType('options', 'one of type string or object', options)
  else o = options as WholeFileOptions
  if (o.encoding !== 'buffer') assertEncoding(o.encoding)
  if (o.signal !== undefined) validateSignal(o.signal, 'options.signal')
  return o
}

/** node:fs's assertEncoding: a truthy encoding Buffer does not know is refused. */
export function assertEncoding(encoding: unknown): void {
  if (encoding && !Buffer.isEncoding(encoding as string)) throw invalidArgValue('encoding', encoding, 'is invalid encoding')
}

/** node:fs's checkAborted. */
export function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason })
}

/** node's toUnixTimestamp, then libuv's uv__fs_to_timespec (microseconds kept): [seconds, nanoseconds]. */
export function toTimespec(time: unknown): [number, number] {
  let t: number
  if (typeof time === 'string' && +time == (time as unknown as number)) t = +time
  else if (typeof time === 'number' && Number.isFinite(time)) t = time < 0 ? Date.now() / 1000 : time
  else if (time instanceof Date) t = time.getTime() / 1000
  else throw invalidArgType('time', 'an instance of Date or an Time in seconds', time)
  let sec = Math.trunc(t)
  let nsec = Math.trunc((t - sec) * 1e9)
  nsec -= nsec % 1000
  if (nsec < 0) {
    nsec += 1e9
    sec -= 1
  }
  return [sec, nsec]
}

/**
 * The mode of access, copyFile and cp as node 20 checks it (in C++): null
 * or undefined for `def`, else a number, taken as int32, from 0 to 7.
 */
export function getValidMode(mode: unknown, def: number): number {
  if (mode == null) return def
  if (typeof mode !== 'number') throw withCode(new TypeError('mode must be int32 or null/undefined'), 'ERR_INVALID_ARG_TYPE')
  const m = mode | 0
  if (m < 0 || m > 7) throw withCode(new RangeError('mode is out of range: >= 0 && <= 7'), 'ERR_OUT_OF_RANGE')
  return m
}

/** uid and gid as chown takes them: integers from -1 (unchanged) to 2^32-1. */
export function validateIds(uid: unknown, gid: unknown): number[] {
  const id = (v: unknown, name: string): number => {
    validateInteger(v, name, -1, 2 ** 32 - 1)
    return (v as number) === -1 ? 2 ** 32 - 1 : (v as number)
  }
  return [id(uid, 'uid'), id(gid, 'gid')]
}

/** How a name the kernel gave (readlink, realpath, mkdtemp) is returned: a Buffer for 'buffer', else a string in `encoding`. */
export function nameIn(encoding: BufferEncoding | 'buffer' | null | undefined): (bytes: Buffer | undefined) => string | Buffer {
  const enc = encoding ?? 'utf8'
  return (b) => (enc === 'buffer' ? Buffer.from(b!) : b!.toString(enc))
}

/** chmod's mode: required, a number or an octal string (node's parseFileMode). */
export function parseRequiredMode(mode: unknown): number {
  if (mode === undefined) throw invalidArgType('mode', 'of type number', mode)
  return parseMode(mode, 0)
}
