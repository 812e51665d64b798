// ringline: io_uring file and TCP I/O for Node.js.
// See README.md for the quick start; DESIGN.md for how it is built.

export { Ring, SimControls, type CrashMode, type SimFault, type SimOp, type CrashState, type ExploreOptions, type ExploreReport, type RingOptions, type OpenOptions, type RingStats } from './lib/ring'
export { defaultRing, open, allocAligned, listen, connect } from './lib/default'
export {
  FileHandle,
  type ReadOptions,
  type WriteOptions,
  type ReadRequest,
  type AppendOptions,
  type SignalOptions,
  type DirectAlignment,
} from './lib/file'
export type { ReadResult, WriteResult, ReadvResult, WritevResult } from './lib/core'
export {
  Listener,
  Socket,
  type ListenOptions,
  type ConnectOptions,
  type CallbackListenOptions,
  type CallbackConnectOptions,
  type SendOptions,
  type AddressInfo,
  type NetError,
} from './lib/net'
export { CallbackSocket, type SocketHandlers, type CallbackSocketOptions } from './lib/net-callback'
export { Stats, BigIntStats } from './lib/stats'
export { AbortError, type SystemError } from './lib/errors'
export type { BufferLike, Position } from './lib/validators'
