// readFile of an open file, as node:fs/promises reads it (its
// readFileHandle): the size from fstat for a regular file, read whole at
// the file position; files that report no size (procfs, pipes) read in
// 64 KiB chunks to the end; strings decoded across chunk boundaries.

import { constants } from 'node:fs'
import { StringDecoder } from 'node:string_decoder'
import type { FileHandle } from '../file'
import { withCode } from '../errors'
import { checkAborted } from './options'

const { S_IFMT, S_IFREG } = constants

/** node:fs's limits: whole reads of at most 512 KiB at once, 64 KiB chunks where the size is unknown, 2 GiB in all. */
const kReadFileBufferLength = 512 * 1024
const kReadFileUnknownBufferLength = 64 * 1024
export const kIoMaxLength = 2 ** 31 - 1

export async function readFileHandle(fh: FileHandle, signal: AbortSignal | undefined, encoding: BufferEncoding | undefined): Promise<Buffer | string> {
  const decoder = encoding ? new StringDecoder(encoding) : undefined
  checkAborted(signal)
  const st = await fh.stat()
  checkAborted(signal)
  let size = 0
  let length = 0
  if ((st.mode & S_IFMT) === S_IFREG) {
    size = st.size
    length = encoding ? Math.min(size, kReadFileBufferLength) : size
  }
  if (length === 0) length = kReadFileUnknownBufferLength
  if (size > kIoMaxLength) throw withCode(new RangeError(`File size (${size}) is greater than 2 GiB`), 'ERR_FS_FILE_TOO_LARGE')

  let totalRead = 0
  const noSize = size === 0
  let buffer = Buffer.allocUnsafeSlow(length)
  let result = ''
  let offset = 0
  let buffers: Buffer[] | undefined
  const chunkedRead = length > kReadFileBufferLength
  for (;;) {
    checkAborted(signal)
    if (chunkedRead) length = Math.min(size - totalRead, kReadFileBufferLength)
    const { bytesRead } = await fh.read(buffer, offset, length, -1)
    totalRead += bytesRead
    if (bytesRead === 0 || totalRead === size || (bytesRead !== buffer.length && !chunkedRead && !noSize)) {
      const singleRead = bytesRead === totalRead
      const bytesToCheck = chunkedRead ? totalRead : bytesRead
      if (bytesToCheck !== buffer.length) buffer = buffer.subarray(0, bytesToCheck)
      if (decoder === undefined) {
        if (noSize && !singleRead) {
          ;(buffers ??= []).push(buffer)
          return Buffer.concat(buffers, totalRead)
        }
        return buffer
      }
      if (singleRead) return buffer.toString(encoding)
      return result + decoder.end(buffer)
    }
    const readBuffer = bytesRead !== buffer.length ? buffer.subarray(0, bytesRead) : buffer
    if (decoder !== undefined) {
      result += decoder.write(readBuffer)
    } else if (size !== 0) {
      offset = totalRead
    } else {
      ;(buffers ??= []).push(readBuffer)
      buffer = Buffer.allocUnsafeSlow(kReadFileUnknownBufferLength)
    }
  }
}
