// Copies a file through library-owned aligned buffers: each round reads up to
// `DEPTH` chunks with one readMany (one batch, one syscall, one promise), then
// writes them back out, all in flight at once.
//
//   node --import tsx examples/copy-file.ts <src> <dst> [--direct]
//
// --direct opens both files with O_DIRECT (the page cache is bypassed). The
// allocAligned buffers are already aligned in memory; positions and lengths
// must be multiples of `handle.direct.offset`, so the last partial block is
// written whole and the copy is truncated to the source size afterwards.

import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { allocAligned, defaultRing, open, type FileHandle } from '../index'

const CHUNK = 1 << 20 // 1 MiB per read/write
const DEPTH = 8 // chunks in flight per round

/** Writes all of buf[0, len) at `position`, looping over short writes. */
async function writeAll(file: FileHandle, buf: Buffer, len: number, position: number): Promise<void> {
  let done = 0
  while (done < len) {
    const { bytesWritten } = await file.write(buf, done, len - done, position + done)
    done += bytesWritten
  }
}

/** Reads into buf[from, len) at `position + from` until full or EOF; returns the bytes in buf. */
async function readRest(file: FileHandle, buf: Buffer, from: number, len: number, position: number): Promise<number> {
  let got = from
  while (got < len) {
    const { bytesRead } = await file.read(buf, got, len - got, position + got)
    if (bytesRead === 0) break
    got += bytesRead
  }
  return got
}

function sha256(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256')
    createReadStream(path)
      .on('data', (d) => h.update(d))
      .on('end', () => resolve(h.digest('hex')))
      .on('error', reject)
  })
}

async function main(): Promise<void> {
  const args = process.argv.slice(2)
  const direct = args.includes('--direct')
  const [srcPath, dstPath] = args.filter((a) => a !== '--direct')
  if (srcPath === undefined || dstPath === undefined) {
    console.error('usage: node --import tsx examples/copy-file.ts <src> <dst> [--direct]')
    process.exit(2)
  }

  const src = await open(srcPath, 'r', undefined, { direct })
  const dst = await open(dstPath, 'w', 0o644, { direct })
  try {
    const size = (await src.stat()).size
    // With O_DIRECT every position and length must be a multiple of this.
    const align = src.direct === null || dst.direct === null ? 1 : Math.max(src.direct.offset, dst.direct.offset)
    const buffers = Array.from({ length: DEPTH }, () => allocAligned(CHUNK))
    const started = process.hrtime.bigint()

    for (let base = 0; base < size; base += CHUNK * DEPTH) {
      // One round: read up to DEPTH chunks as one batch.
      const requests = []
      for (let i = 0; i < DEPTH && base + i * CHUNK < size; i++) {
        requests.push({ buffer: buffers[i], position: base + i * CHUNK })
      }
      const counts = await src.readMany(requests)

      // Write every chunk back out; the writes run concurrently.
      await Promise.all(
        requests.map(async (r, i) => {
          const position = r.position
          const want = Math.min(CHUNK, size - position)
          // A short read before EOF is allowed by the kernel: finish it.
          let n = counts[i] < want ? await readRest(src, r.buffer, counts[i], want, position) : counts[i]
          n = Math.min(n, want)
          // O_DIRECT: write the tail block whole (zero padded); truncated below.
          const len = Math.ceil(n / align) * align
          r.buffer.fill(0, n, len)
          await writeAll(dst, r.buffer, len, position)
        }),
      )
    }
    if (align > 1) await dst.truncate(size)
    await dst.datasync()

    const seconds = Number(process.hrtime.bigint() - started) / 1e9
    const mib = size / (1 << 20)
    console.log(
      `copied ${size} bytes in ${(seconds * 1e3).toFixed(1)} ms (${(mib / seconds).toFixed(0)} MiB/s)` +
        ` on ${defaultRing().backend}${direct ? ', O_DIRECT' : ''}`,
    )
  } finally {
    await Promise.all([src.close(), dst.close()])
  }

  const [a, b] = await Promise.all([sha256(srcPath), sha256(dstPath)])
  if (a !== b) throw new Error(`copy differs: ${a} != ${b}`)
  console.log(`sha256 ${a} matches`)
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
