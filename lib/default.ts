// The default Ring of this thread (each worker_threads worker has its own,
// since each loads its own copy of this module), and the top-level functions
// that use it.

import type { FileHandle } from './file'
import type { CallbackConnectOptions, CallbackListenOptions, ConnectOptions, ListenOptions, Listener, Socket } from './net'
import type { CallbackSocket } from './net-callback'
import { Ring, type OpenOptions } from './ring'

let ring: Ring | null = null

/** This thread's default Ring, created on first use (and again after it is closed). */
export function defaultRing(): Ring {
  if (ring === null || ring.closed) ring = new Ring()
  return ring
}

/** `open()` on the default Ring; see `Ring.open`. */
export function open(path: string | Buffer | URL, flags?: string | number, mode?: string | number, options?: OpenOptions): Promise<FileHandle> {
  return defaultRing().open(path, flags, mode, options)
}

/** `allocAligned()` on the default Ring; see `Ring.allocAligned`. */
export function allocAligned(size: number): Buffer {
  return defaultRing().allocAligned(size)
}

/** `listen()` on the default Ring; see `Ring.listen`. */
export function listen(options?: ListenOptions | CallbackListenOptions): Promise<Listener> {
  return defaultRing().listen(options)
}

/** `connect()` on the default Ring; see `Ring.connect`. */
export function connect(options: CallbackConnectOptions): Promise<CallbackSocket>
export function connect(options: ConnectOptions): Promise<Socket>
export function connect(options: ConnectOptions | CallbackConnectOptions): Promise<Socket | CallbackSocket> {
  return defaultRing().connect(options)
}
