// A write-ahead log: every record is appended with { sync: 'data' }, so the
// write and an fdatasync go to the kernel linked in one submission and the
// promise resolves only once the record is durable. Many appends are kept in
// flight at once (group commit comes for free: one fdatasync covers every
// write that reached the file before it).
//
//   node --import tsx examples/wal.ts /tmp/wal.log [records]
//
// Run it twice: the second run first replays what the first one wrote.
// __test__/sim-wal.spec.ts runs the same functions on the sim engine under
// seeded power loss, and shows that the two mistakes `openLog`'s options
// reproduce (acknowledging a record before its fdatasync, and creating the
// log without fsyncing its directory) lose acknowledged records there.
//
// Record: u32 payload length | u32 crc32(seq, payload) | u64 seq | payload.
// Recovery reads records until the first torn or corrupt one and truncates
// the log there, so a crash mid-append never leaves garbage behind.
//
// The log is opened with 'a+' (O_APPEND): the kernel places each write at
// the end of the file, so whenever an append resolves, every byte before
// its record is on disk too, and a crash cannot leave a hole before a record
// that was acknowledged.

import * as path from 'node:path'
import { defaultRing, type FileHandle, type Ring } from '../index'

const HEADER = 16
const IN_FLIGHT = 32

const CRC_TABLE = (() => {
  const t = new Int32Array(256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    t[n] = c
  }
  return t
})()

function crc32(buf: Uint8Array, crc = 0): number {
  let c = ~crc
  for (let i = 0; i < buf.length; i++) c = CRC_TABLE[(c ^ buf[i]) & 0xff] ^ (c >>> 8)
  return ~c >>> 0
}

export function encode(seq: bigint, payload: Buffer): Buffer {
  const rec = Buffer.allocUnsafe(HEADER + payload.length)
  rec.writeUInt32LE(payload.length, 0)
  rec.writeBigUInt64LE(seq, 8)
  payload.copy(rec, HEADER)
  rec.writeUInt32LE(crc32(rec.subarray(8)), 4)
  return rec
}

/** Replays the log: returns the records found (and their seqs) and truncates a torn tail. */
export async function recover(log: FileHandle, quiet = false): Promise<{ records: number; lastSeq: bigint; seqs: bigint[] }> {
  const size = (await log.stat()).size
  const data = Buffer.alloc(size)
  let got = 0
  while (got < size) {
    const { bytesRead } = await log.read(data, got, size - got, got)
    if (bytesRead === 0) break
    got += bytesRead
  }
  let pos = 0
  let records = 0
  let lastSeq = -1n
  const seqs: bigint[] = []
  while (pos + HEADER <= got) {
    const len = data.readUInt32LE(pos)
    const end = pos + HEADER + len
    if (end > got || data.readUInt32LE(pos + 4) !== crc32(data.subarray(pos + 8, end))) break
    const seq = data.readBigUInt64LE(pos + 8)
    if (seq > lastSeq) lastSeq = seq
    seqs.push(seq)
    records++
    pos = end
  }
  if (pos < size) {
    if (!quiet) console.log(`recovery: dropping ${size - pos} bytes of torn tail at offset ${pos}`)
    await log.truncate(pos)
    await log.datasync()
  }
  return { records, lastSeq, seqs }
}

export interface LogOptions {
  /** The broken variant: the log is created without fsyncing its directory, so its name may not survive a crash. */
  skipDirSync?: boolean
}

/**
 * Opens (creating if needed) the log at `file` on `ring`. A log it creates
 * has its directory fsynced before it is used: until then the new name is
 * not durable, and a crash could take the whole log with it.
 */
export async function openLog(ring: Ring, file: string, options: LogOptions = {}): Promise<FileHandle> {
  const existed = await ring.fs.access(file).then(() => true, () => false)
  const log = await ring.open(file, 'a+', 0o644)
  if (!existed && !options.skipDirSync) {
    const dir = await ring.open(path.dirname(file), 'r')
    await dir.sync()
    await dir.close()
  }
  return log
}

export interface AppendOptions {
  /** The broken variant: a record is acknowledged once written, before its fdatasync. */
  ackBeforeSync?: boolean
}

/**
 * Appends `count` records from `firstSeq`, `IN_FLIGHT` at a time, each
 * with `{ sync: 'data' }`; `durable(seq)` is called once a record is
 * acknowledged, which a correct log does only once it is on disk.
 */
export async function appendRecords(log: FileHandle, count: number, firstSeq: bigint, durable: (seq: bigint) => void, options: AppendOptions = {}): Promise<void> {
  let seq = firstSeq
  let next = 0
  const writer = async (): Promise<void> => {
    while (next < count) {
      next++
      const s = seq++
      const rec = encode(s, Buffer.from(JSON.stringify({ op: 'set', key: `k${s}` })))
      if (options.ackBeforeSync) {
        await log.append(rec)
        durable(s)
        await log.datasync()
      } else {
        await log.append(rec, { sync: 'data' })
        durable(s)
      }
    }
  }
  await Promise.all(Array.from({ length: IN_FLIGHT }, writer))
}

async function main(): Promise<void> {
  const file = process.argv[2]
  const count = Number(process.argv[3] ?? 1000)
  if (file === undefined || !Number.isInteger(count) || count < 0) {
    console.error('usage: node --import tsx examples/wal.ts <log-file> [records]')
    process.exit(2)
  }

  const log = await openLog(defaultRing(), file)
  try {
    const { records, lastSeq } = await recover(log)
    console.log(`replayed ${records} records from ${file}${records ? ` (last seq ${lastSeq})` : ''}`)

    let seq = lastSeq + 1n
    let next = 0
    const latencies: number[] = []
    const started = process.hrtime.bigint()
    // IN_FLIGHT writers, each appending its next record as soon as the last is durable.
    const writer = async (): Promise<void> => {
      while (next < count) {
        next++
        const rec = encode(seq++, Buffer.from(JSON.stringify({ op: 'set', key: `k${next}`, at: Date.now() })))
        const t0 = process.hrtime.bigint()
        await log.append(rec, { sync: 'data' })
        latencies.push(Number(process.hrtime.bigint() - t0) / 1e3)
      }
    }
    await Promise.all(Array.from({ length: IN_FLIGHT }, writer))
    const seconds = Number(process.hrtime.bigint() - started) / 1e9

    latencies.sort((a, b) => a - b)
    const p = (q: number): string => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))].toFixed(0) : '-')
    console.log(
      `appended ${count} durable records in ${(seconds * 1e3).toFixed(1)} ms` +
        ` (${(count / seconds).toFixed(0)}/s, latency p50 ${p(0.5)} us, p99 ${p(0.99)} us)`,
    )

    const after = await recover(log)
    if (after.records !== records + count) throw new Error(`expected ${records + count} records, found ${after.records}`)
    console.log(`log now holds ${after.records} records, ${(await log.stat()).size} bytes`)
  } finally {
    await log.close()
  }
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e)
    process.exit(1)
  })
}
