// Argument checks with the error classes, codes and messages of Node's
// lib/internal/validators.js and lib/internal/fs/utils.js. They run before
// anything is submitted (DESIGN.md invariant 5).

import { constants } from 'node:fs'
import * as url from 'node:url'
import { invalidArgType, invalidArgValue, outOfRange } from './errors'

/** Buffer, TypedArray or DataView: what the I/O functions accept. */
export type BufferLike = ArrayBufferView

/** Position: a byte offset, or `null`/`-1` for the file's current position. */
export type Position = number | bigint | null

export const MAX_SAFE = Number.MAX_SAFE_INTEGER
/** Largest single read or write the kernel performs (MAX_RW_COUNT). */
export const MAX_IO = 0x7ffff000

export function validateInteger(value: unknown, name: string, min = Number.MIN_SAFE_INTEGER, max = MAX_SAFE): number {
  if (typeof value !== 'number') throw invalidArgType(name, 'of type number', value)
  if (!Number.isInteger(value)) throw outOfRange(name, 'an integer', value)
  if (value < min || value > max) throw outOfRange(name, `>= ${min} && <= ${max}`, value)
  return value
}

export function validateBoolean(value: unknown, name: string): boolean {
  if (typeof value !== 'boolean') throw invalidArgType(name, 'of type boolean', value)
  return value
}

export function validateObject(value: unknown, name: string): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw invalidArgType(name, 'of type object', value)
  }
  return value as Record<string, unknown>
}

export function validateBuffer(value: unknown, name = 'buffer'): BufferLike {
  if (!ArrayBuffer.isView(value)) {
    throw invalidArgType(name, 'an instance of Buffer, TypedArray, or DataView', value)
  }
  // A detached (transferred) ArrayBuffer has no bytes left to use.
  if (value.byteLength === 0 && isDetached(value.buffer)) {
    throw invalidArgValue(name, value, 'is detached (its ArrayBuffer was transferred)')
  }
  return value
}

function isDetached(ab: ArrayBufferLike): boolean {
  const d = (ab as ArrayBuffer & { detached?: boolean }).detached
  if (typeof d === 'boolean') return d
  try {
    // Node 20 has no `detached` getter: slicing a detached buffer throws.
    ab.slice(0, 0)
    return false
  } catch {
    return true
  }
}

export function validateSignal(value: unknown, name = 'options.signal'): AbortSignal | undefined {
  if (value === undefined) return undefined
  if (value === null || typeof value !== 'object' || !('aborted' in value) || typeof (value as AbortSignal).addEventListener !== 'function') {
    throw invalidArgType(name, 'an instance of AbortSignal', value)
  }
  return value as AbortSignal
}

/** Returns -1 for "current position", else a non-negative safe integer. */
export function validatePosition(value: unknown, name = 'position'): number {
  if (value === null || value === undefined) return -1
  if (typeof value === 'bigint') {
    if (value < -1n || value > BigInt(MAX_SAFE)) throw outOfRange(name, `>= -1 && <= ${MAX_SAFE}`, value)
    return Number(value)
  }
  if (typeof value !== 'number') throw invalidArgType(name, 'of type number or bigint', value)
  if (!Number.isInteger(value)) throw outOfRange(name, 'an integer', value)
  if (value < -1 || value > MAX_SAFE) throw outOfRange(name, `>= -1 && <= ${MAX_SAFE}`, value)
  return value
}

/**
 * Offset and length within `buffer`, checked like node:fs `read`/`write`:
 * offset defaults to 0, length to the rest of the buffer.
 */
export function validateRange(buffer: BufferLike, offset: unknown, length: unknown): [number, number] {
  const size = buffer.byteLength
  const off = offset === undefined || offset === null ? 0 : validateInteger(offset, 'offset', 0)
  if (off > size) throw outOfRange('offset', `>= 0 && <= ${size}`, off)
  const len = length === undefined || length === null ? size - off : validateInteger(length, 'length', 0)
  if (len > size - off) throw outOfRange('length', `>= 0 && <= ${size - off}`, len)
  if (len > MAX_IO) throw outOfRange('length', `<= ${MAX_IO}`, len)
  return [off, len]
}

const { O_RDONLY, O_WRONLY, O_RDWR, O_CREAT, O_TRUNC, O_EXCL, O_APPEND, O_SYNC } = constants

const FLAGS: Record<string, number> = {
  r: O_RDONLY,
  rs: O_RDONLY | O_SYNC,
  sr: O_RDONLY | O_SYNC,
  'r+': O_RDWR,
  'rs+': O_RDWR | O_SYNC,
  'sr+': O_RDWR | O_SYNC,
  w: O_TRUNC | O_CREAT | O_WRONLY,
  wx: O_TRUNC | O_CREAT | O_WRONLY | O_EXCL,
  xw: O_TRUNC | O_CREAT | O_WRONLY | O_EXCL,
  'w+': O_TRUNC | O_CREAT | O_RDWR,
  'wx+': O_TRUNC | O_CREAT | O_RDWR | O_EXCL,
  'xw+': O_TRUNC | O_CREAT | O_RDWR | O_EXCL,
  a: O_APPEND | O_CREAT | O_WRONLY,
  ax: O_APPEND | O_CREAT | O_WRONLY | O_EXCL,
  xa: O_APPEND | O_CREAT | O_WRONLY | O_EXCL,
  as: O_APPEND | O_CREAT | O_WRONLY | O_SYNC,
  sa: O_APPEND | O_CREAT | O_WRONLY | O_SYNC,
  'a+': O_APPEND | O_CREAT | O_RDWR,
  'ax+': O_APPEND | O_CREAT | O_RDWR | O_EXCL,
  'xa+': O_APPEND | O_CREAT | O_RDWR | O_EXCL,
  'as+': O_APPEND | O_CREAT | O_RDWR | O_SYNC,
  'sa+': O_APPEND | O_CREAT | O_RDWR | O_SYNC,
}

/** Node's flag strings (`'r'`, `'r+'`, `'wx'`, ...) or an int32. Default `'r'`. */
export function parseFlags(value: unknown): number {
  if (value === undefined || value === null) return O_RDONLY
  if (typeof value === 'number') return validateInteger(value, 'flags', -(2 ** 31), 2 ** 31 - 1)
  if (typeof value === 'string') {
    const f = FLAGS[value]
    if (f !== undefined) return f
  }
  throw invalidArgValue('flags', value)
}

/** A mode number or octal string; `def` when absent. */
export function parseMode(value: unknown, def: number): number {
  if (value === undefined || value === null) return def
  if (typeof value === 'string') {
    if (!/^[0-7]+$/.test(value)) throw invalidArgValue('mode', value, 'must be a 32-bit unsigned integer or an octal string')
    value = parseInt(value, 8)
  }
  return validateInteger(value, 'mode', 0, 2 ** 32 - 1)
}

/** `TypedArray.prototype.includes`, taken at load (as Node's primordials are). */
const typedArrayIncludes = (Object.getPrototypeOf(Uint8Array.prototype) as Uint8Array).includes

// Taken at load: a program that patches node:url changes nothing here.
const { fileURLToPath } = url

/** node:url's test for a URL (or a URL-like object), as node:fs applies it to paths. */
function isURL(v: unknown): v is URL {
  const u = v as { href?: unknown; protocol?: unknown; auth?: unknown; path?: unknown } | null | undefined
  return Boolean(u?.href && u.protocol && u.auth === undefined && u.path === undefined)
}

/**
 * A path as node:fs accepts it: a string, a Buffer or Uint8Array (its bytes
 * are the name, byte for byte, whatever their encoding), or a file: URL
 * (node:url's fileURLToPath gives the errors of a bad one). Returns the
 * string, or a Buffer over the caller's bytes (the native call reads them
 * before it returns).
 */
export function validatePath(value: unknown, name = 'path'): string | Buffer {
  const p = isURL(value) ? fileURLToPath(value) : value
  if (typeof p === 'string') {
    if (p.includes('\u0000')) throw invalidArgValue(name, p, 'must be a string, Uint8Array, or URL without null bytes')
    return p
  }
  if (!(p instanceof Uint8Array)) throw invalidArgType(name, 'of type string or an instance of Buffer or URL', p)
  // node:fs looks for NUL bytes with TypedArray.prototype.includes before
  // anything else; on a detached buffer that throws V8's own TypeError
  // (no code), which is what node:fs gives, so the same call here.
  if (typedArrayIncludes.call(p, 0)) throw invalidArgValue(name, p, 'must be a string, Uint8Array, or URL without null bytes')
  return Buffer.isBuffer(p) ? p : Buffer.from(p.buffer, p.byteOffset, p.byteLength)
}

/** A validated path as text, for messages and `err.path` (bytes decoded as UTF-8, as node:fs shows them). */
export function pathText(p: string | Buffer): string {
  return typeof p === 'string' ? p : p.toString('utf8')
}
