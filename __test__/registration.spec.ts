// Buffer registration fallback (DESIGN.md invariant 6): when the kernel
// refuses to register allocAligned memory (ENOMEM from the memlock limit,
// without CAP_IPC_LOCK), the ring keeps working unregistered and says so in
// stats(). Also: registerBuffers: false.

import test from 'ava'
import * as path from 'node:path'
import { Ring } from '../index'
import { BACKEND, fixtures, makeTmpDir, randomFile, removeTmpDir, run, sameBytes, uniquePath, which } from './helpers'
import { disk, realKernelOnly, testDir } from './sim-setup'

const dir = makeTmpDir('registration')
/** For the tests that run on sim too: the disk the ring sees. */
const ringDir = testDir('registration')
test.after.always(() => removeTmpDir(dir))

interface Report {
  stats: {
    backend: string
    degradations: string[]
    registeredBuffers: number
    unregisteredBuffers: number
    bufferRegistrationFailures: number
    bufferRegistrationError?: string | null
    fixedBufferOps: number
    inFlight: number
  }
  results: { ok: boolean; okDirect: boolean; okSlice: boolean }[]
  aligned: boolean
}

function parse(stdout: string): Report | null {
  try {
    return JSON.parse(stdout) as Report
  } catch {
    return null
  }
}

/** The command that runs `args` without CAP_IPC_LOCK under a 64 KiB memlock limit. */
function limited(args: string[]): [string, string[]] | null {
  const setpriv = which('setpriv')
  const prlimit = which('prlimit')
  if (setpriv !== null && prlimit !== null) {
    return [setpriv, ['--bounding-set', '-ipc_lock', prlimit, '--memlock=65536:65536', ...args]]
  }
  const capsh = which('capsh')
  if (capsh !== null && prlimit !== null) {
    return [capsh, ['--drop=cap_ipc_lock', '--', '-c', `exec "$0" "$@"`, prlimit, '--memlock=65536:65536', ...args]]
  }
  return null
}

realKernelOnly('a real memlock limit (ENOMEM from the kernel), in a child process')('allocAligned keeps working unregistered when registration fails with ENOMEM', async (t) => {
  const file = uniquePath(dir)
  randomFile(file, 1 << 20)
  const cmd = limited([process.execPath, path.join(fixtures, 'registration.js'), file])
  if (cmd === null) {
    t.log('neither setpriv nor capsh (with prlimit) is installed: cannot drop CAP_IPC_LOCK')
    t.pass()
    return
  }
  const r = await run(cmd[0], cmd[1])
  t.false(r.hung, `the child finishes\nstdout: ${r.stdout}\nstderr: ${r.stderr}`)
  t.is(r.code, 0, `stdout: ${r.stdout}\nstderr: ${r.stderr}`)
  const report = parse(r.stdout)
  t.not(report, null, `JSON report: ${r.stdout}`)
  if (report === null) return
  t.is(report.stats.backend, BACKEND)
  if (BACKEND === 'io_uring') {
    t.true(report.stats.bufferRegistrationFailures > 0, `registration failed: ${JSON.stringify(report.stats)}`)
    t.is(report.stats.bufferRegistrationError, 'ENOMEM')
    t.true(report.stats.unregisteredBuffers > 0, 'the buffers are in use unregistered')
  } else {
    // mio never registers (no memlock needed): nothing fails, all is plain memory.
    t.is(report.stats.bufferRegistrationFailures, 0)
    t.is(report.stats.unregisteredBuffers, 6)
  }
  t.true(report.stats.registeredBuffers + report.stats.unregisteredBuffers >= 6)
  t.is(report.stats.inFlight, 0)
  t.true(report.aligned)
  t.is(report.results.length, 6)
  report.results.forEach((x, i) => {
    t.true(x.ok, `buffered read ${i} returned the file's bytes`)
    t.true(x.okDirect, `O_DIRECT read ${i} returned the file's bytes`)
    t.true(x.okSlice, `read ${i} into a slice returned the file's bytes`)
  })
})

realKernelOnly('buffers registered with the kernel (io_uring), in a child process')('without limits the same script registers its buffers (the control case)', async (t) => {
  const file = uniquePath(dir)
  randomFile(file, 1 << 20)
  // The control only means something where registration of 6 MiB can
  // succeed: with CAP_IPC_LOCK (root) or a memlock limit that allows it.
  const r = await run(process.execPath, [path.join(fixtures, 'registration.js'), file])
  t.is(r.code, 0, `stdout: ${r.stdout}\nstderr: ${r.stderr}`)
  const report = parse(r.stdout)
  t.not(report, null)
  if (report === null) return
  t.true(report.results.every((x) => x.ok && x.okDirect && x.okSlice))
  t.is(report.stats.backend, BACKEND)
  if (BACKEND === 'mio') {
    t.is(report.stats.registeredBuffers, 0)
    t.is(report.stats.fixedBufferOps, 0)
    t.true(report.stats.degradations.some((d) => d.includes('registered buffers')), 'stats() names the degradation')
  } else if (process.getuid?.() === 0) {
    t.is(report.stats.bufferRegistrationFailures, 0)
    t.is(report.stats.registeredBuffers, 6)
    t.true(report.stats.fixedBufferOps > 0, 'registered buffers are used as fixed buffers')
  } else {
    t.log(`not root: registration ${report.stats.registeredBuffers} ok, ${report.stats.bufferRegistrationFailures} failed`)
  }
})

test('registerBuffers: false allocates unregistered aligned buffers that work', async (t) => {
  const file = uniquePath(ringDir)
  const ring = new Ring({ registerBuffers: false })
  const data = await disk(ring).randomFile(file, 256 * 1024)
  const fh = await ring.open(file, 'r+')
  const bufs = [ring.allocAligned(65536), ring.allocAligned(65536), ring.allocAligned(4096)]
  for (const b of bufs) t.is(b.byteOffset, 0)
  const s0 = ring.stats()
  t.is(s0.registeredBuffers, 0)
  t.is(s0.bufferRegistrationFailures, 0, 'not registering is not a failure')
  const r = await fh.read(bufs[0], 0, 65536, 0)
  t.is(r.bytesRead, 65536)
  sameBytes(t, bufs[0], data.subarray(0, 65536))
  const counts = await fh.readMany([
    { buffer: bufs[1], position: 65536 },
    { buffer: bufs[2], position: 4096 },
  ])
  t.deepEqual(counts, [65536, 4096])
  sameBytes(t, bufs[1], data.subarray(65536, 131072))
  sameBytes(t, bufs[2], data.subarray(4096, 8192))
  bufs[2].fill(0x77)
  t.is((await fh.write(bufs[2], 0, 4096, 0)).bytesWritten, 4096)
  sameBytes(t, (await disk(ring).readFile(file)).subarray(0, 4096), Buffer.alloc(4096, 0x77))
  const direct = await ring.open(file, 'r', undefined, { direct: true })
  bufs[0].fill(0)
  t.is((await direct.read(bufs[0], 0, 65536, 65536)).bytesRead, 65536)
  sameBytes(t, bufs[0], data.subarray(65536, 131072))
  const s1 = ring.stats()
  t.is(s1.registeredBuffers, 0)
  t.is(s1.fixedBufferOps, 0, 'no fixed-buffer ops without registration')
  await direct.close()
  await fh.close()
  await ring.close()
})
