// node:fs's Dir, as opendir returns it.

import type * as nodeFs from 'node:fs'
import { withCode } from '../errors'

function dirClosed(): Error {
  return withCode(new Error('Directory handle was closed'), 'ERR_DIR_CLOSED')
}

/** node:fs's Dir, over entries listed when it opened. */
export class Dir implements AsyncIterable<nodeFs.Dirent> {
  readonly #path: string
  readonly #entries: nodeFs.Dirent[]
  #closed = false

  /** @internal Made by opendir. */
  constructor(p: string, entries: nodeFs.Dirent[]) {
    this.#path = p
    this.#entries = entries
  }

  /** The path it was opened with. */
  get path(): string {
    return this.#path
  }

  /** The next entry, or null after the last. On a closed Dir it throws ERR_DIR_CLOSED (synchronously, as node's does). */
  read(): Promise<nodeFs.Dirent | null> {
    return Promise.resolve(this.readSync())
  }

  readSync(): nodeFs.Dirent | null {
    if (this.#closed) throw dirClosed()
    return this.#entries.shift() ?? null
  }

  close(): Promise<void> {
    try {
      this.closeSync()
      return Promise.resolve()
    } catch (e) {
      return Promise.reject(e)
    }
  }

  closeSync(): void {
    if (this.#closed) throw dirClosed()
    this.#closed = true
    this.#entries.length = 0
  }

  async *entries(): AsyncGenerator<nodeFs.Dirent> {
    try {
      for (;;) {
        const d = await this.read()
        if (d === null) break
        yield d
      }
    } finally {
      if (!this.#closed) this.closeSync()
    }
  }

  [Symbol.asyncIterator](): AsyncGenerator<nodeFs.Dirent> {
    return this.entries()
  }
}
