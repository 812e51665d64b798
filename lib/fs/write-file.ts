// writeFile of an open file, as node:fs/promises writes it (its
// writeFileHandle): at the file position, in chunks of at most 512 KiB,
// until every byte is written; an iterable (or async iterable) is written
// chunk by chunk, strings in `encoding`. The signal is checked between
// writes.

import type { FileHandle } from '../file'
import { invalidArgType } from '../errors'
import { checkAborted } from './options'

const kWriteFileMaxChunkSize = 512 * 1024

/** What writeFile takes as data besides strings and views: an iterable or async iterable of chunks. */
export type WriteFileIterable = Iterable<string | ArrayBufferView> | AsyncIterable<string | ArrayBufferView>

/** node:fs's isCustomIterable: iterable, and neither a view nor a string. */
export function isCustomIterable(data: unknown): data is WriteFileIterable {
  if (data == null || typeof data === 'string' || ArrayBuffer.isView(data)) return false
  const d = data as { [Symbol.iterator]?: unknown; [Symbol.asyncIterator]?: unknown }
  return typeof d[Symbol.iterator] === 'function' || typeof d[Symbol.asyncIterator] === 'function'
}

/**
 * The data argument of writeFile/appendFile: a view or an iterable as it
 * is, a string as bytes in `encoding`, anything else refused with node's
 * error.
 */
export function writeFileData(data: unknown, encoding: BufferEncoding | 'buffer' | null | undefined): ArrayBufferView | WriteFileIterable {
  if (ArrayBuffer.isView(data) || isCustomIterable(data)) return data
  if (typeof data !== 'string') throw invalidArgType('data', 'of type string or an instance of Buffer, TypedArray, or DataView', data)
  return Buffer.from(data, (encoding || 'utf8') as BufferEncoding)
}

export async function writeFileHandle(
  fh: FileHandle,
  data: ArrayBufferView | WriteFileIterable,
  signal: AbortSignal | undefined,
  encoding: BufferEncoding | 'buffer' | null | undefined,
): Promise<void> {
  checkAborted(signal)
  if (isCustomIterable(data)) {
    for await (const chunk of data) {
      checkAborted(signal)
      const toWrite = ArrayBuffer.isView(chunk) ? chunk : Buffer.from(chunk, (encoding || 'utf8') as BufferEncoding)
      const view = new Uint8Array(toWrite.buffer, toWrite.byteOffset, toWrite.byteLength)
      let remaining = view.byteLength
      while (remaining > 0) {
        const writeSize = Math.min(kWriteFileMaxChunkSize, remaining)
        const { bytesWritten } = await fh.write(view, view.byteLength - remaining, writeSize, null)
        remaining -= bytesWritten
        checkAborted(signal)
      }
    }
    return
  }
  let view = new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
  let remaining = view.byteLength
  if (remaining === 0) return
  do {
    checkAborted(signal)
    const { bytesWritten } = await fh.write(view, 0, Math.min(kWriteFileMaxChunkSize, view.byteLength), null)
    remaining -= bytesWritten
    view = new Uint8Array(view.buffer, view.byteOffset + bytesWritten, view.byteLength - bytesWritten)
  } while (remaining > 0)
}
