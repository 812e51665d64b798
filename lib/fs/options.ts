// Options of the whole-file functions, read as node:fs/promises reads them
// (its getOptions, assertEncoding and friends): the same defaults, the same
// errors.

import { invalidArgType, invalidArgValue, AbortError } from '../errors'
import { validateSignal } from '../validators'

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
