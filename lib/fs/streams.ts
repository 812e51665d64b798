// FileHandle streams: node:fs's own ReadStream and WriteStream (taken at
// load), driven by the handle's ringline ops through node:fs's `fs` option
// (custom read/write/close), so they are real node:stream streams with
// node:fs's options (start, end, highWaterMark, encoding, autoClose,
// emitClose, flush, signal), backpressure and errors. As for node's
// FileHandle streams, closing the handle closes the stream, and the stream
// closes the handle when it is done (autoClose, the default).

import * as fs from 'node:fs'
import { withCode } from '../errors'
import type { FileHandle } from '../file'

// Taken at load: a program that patches node:fs changes nothing here.
const { createReadStream: nodeCreateReadStream, createWriteStream: nodeCreateWriteStream } = fs

type Callback = (err: Error | null, n?: number, data?: unknown) => void

/** The `fs` option node:fs streams call instead of node:fs, over `fh`. */
function handleOps(fh: FileHandle): Record<string, unknown> {
  return {
    open(): never {
      throw withCode(new Error('The open() method is not implemented'), 'ERR_METHOD_NOT_IMPLEMENTED')
    },
    close(_fd: number, cb: (err?: Error | null) => void): void {
      fh.close().then(() => cb(null), cb)
    },
    fsync(_fd: number, cb: (err?: Error | null) => void): void {
      fh.sync().then(() => cb(null), cb)
    },
    read(_fd: number, buf: Buffer, off: number, len: number, pos: number | null, cb: Callback): void {
      fh.read(buf, off, len, pos).then(
        (r) => cb(null, r.bytesRead, r.buffer),
        (e: Error) => cb(e, 0, buf),
      )
    },
    write(_fd: number, buf: Buffer, off: number, len: number, pos: number | null, cb: Callback): void {
      fh.write(buf, off, len, pos).then(
        (r) => cb(null, r.bytesWritten, r.buffer),
        (e: Error) => cb(e, 0, buf),
      )
    },
    writev(_fd: number, bufs: Buffer[], pos: number | null, cb: Callback): void {
      fh.writev(bufs, pos ?? undefined).then(
        (r) => cb(null, r.bytesWritten, r.buffers),
        (e: Error) => cb(e, 0, bufs),
      )
    },
  }
}

/** Options of FileHandle.createReadStream: node:fs's, without `fd` and `fs` (the handle is both). */
export interface ReadStreamOptions {
  encoding?: BufferEncoding | null
  autoClose?: boolean
  emitClose?: boolean
  start?: number
  end?: number
  highWaterMark?: number
  signal?: AbortSignal
}

/** Options of FileHandle.createWriteStream. */
export interface WriteStreamOptions {
  encoding?: BufferEncoding | null
  autoClose?: boolean
  emitClose?: boolean
  start?: number
  highWaterMark?: number
  flush?: boolean
  signal?: AbortSignal
}

function withHandle<S extends fs.ReadStream | fs.WriteStream>(fh: FileHandle, stream: S): S {
  const onClose = (): void => {
    if (!stream.destroyed) stream.close()
  }
  fh.once('close', onClose)
  ;(stream as NodeJS.EventEmitter).once('close', () => fh.off('close', onClose))
  return stream
}

export function createReadStream(fh: FileHandle, options?: ReadStreamOptions): fs.ReadStream {
  const o = { ...options, fd: fh.fd, fs: handleOps(fh) } as unknown as Parameters<typeof fs.createReadStream>[1]
  return withHandle(fh, nodeCreateReadStream(undefined as unknown as string, o))
}

export function createWriteStream(fh: FileHandle, options?: WriteStreamOptions): fs.WriteStream {
  const o = { ...options, fd: fh.fd, fs: handleOps(fh) } as unknown as Parameters<typeof fs.createWriteStream>[1]
  return withHandle(fh, nodeCreateWriteStream(undefined as unknown as string, o))
}
