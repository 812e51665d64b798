// A real refusal of io_uring: the child process runs under
// ringline-seccomp-launch (crates/seccomp-launch), whose seccomp filter makes
// io_uring_setup/enter/register fail with EPERM (what Docker's default
// profile and kernel.io_uring_disabled do) or ENOSYS (a kernel without
// io_uring). With the default backend 'auto' ringline must then run on mio,
// say why, refuse an explicit { backend: 'io_uring' } with a coded error,
// and still move file and TCP data correctly. A control run under plain node
// must stay on io_uring.
//
// The launcher is built by `npm run build:launcher`
// (cargo build --release -p ringline-seccomp-launch); without it these tests
// fail, they never skip.

import test, { type ExecutionContext } from 'ava'
import * as fs from 'node:fs'
import * as path from 'node:path'
import type { ErrorInfo, Step } from './fixtures/refusal-child'
import { fixtures, repoRoot, run } from './helpers'
import { realKernelOnly } from './sim-setup'

// Where `cargo build --release` puts it (honouring CARGO_TARGET_DIR like cargo does).
const targetDir = path.resolve(repoRoot, process.env.CARGO_TARGET_DIR ?? 'target')
const launcher = path.join(targetDir, 'release', 'ringline-seccomp-launch')
const childScript = path.join(fixtures, 'refusal-child.ts')
const BUILD_HINT = 'build it with `npm run build:launcher` (cargo build --release -p ringline-seccomp-launch)'
const MiB = 1024 * 1024
/** Hang guard only: a child still running after this many 10 ms polls (about 60 s) is killed. */
const HANG_POLLS = 6000

// ------------------------------------------------- what the child reports

interface Described {
  backend: unknown
  fallbackReason: unknown
  completion: unknown
}

interface FileReport {
  expectedSize: number
  statSize: unknown
  readBackEqual: boolean
  readBackLength: number
  onDiskEqual: boolean
}

interface TcpReport {
  port: number
  upSent: string
  upReceived: string
  upBytes: number
  downSent: string
  downReceived: string
  downBytes: number
}

interface ChildReport {
  mode: string
  status: Record<string, string>
  env: Record<string, string | null>
  auto: Step<Described>
  defaultRing: Step<Described>
  explicitIoUring?: Step<Described>
  file?: Step<FileReport>
  tcp?: Step<TcpReport>
  degradations?: Step<unknown>
  statsBackend?: Step<unknown>
  defaultOpen?: Step<unknown>
  close: Step<boolean>
  fatal?: ErrorInfo
}

type Errno = 'EPERM' | 'ENOSYS'

// ------------------------------------------------------------- helpers

/** Fails the test (never skips) when the launcher has not been built. */
function launcherPresent(t: ExecutionContext): boolean {
  try {
    fs.accessSync(launcher, fs.constants.X_OK)
    return true
  } catch {
    t.fail(`the seccomp launcher ${launcher} is missing or not executable: ${BUILD_HINT}`)
    return false
  }
}

/** The environment of this process without RINGLINE_BACKEND, plus `extra`. */
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env }
  delete env.RINGLINE_BACKEND
  return { ...env, ...extra }
}

/**
 * Runs refusal-child.ts under the launcher with io_uring refused by `errno`
 * (or under plain node when `errno` is null) and returns its report; fails
 * the test and returns undefined when the child hangs, dies or prints none.
 */
async function runChild(t: ExecutionContext, errno: Errno | null, mode: 'full' | 'ctor', env: NodeJS.ProcessEnv): Promise<ChildReport | undefined> {
  const nodeArgs = ['--import', 'tsx', childScript, mode]
  const file = errno === null ? process.execPath : launcher
  const args = errno === null ? nodeArgs : ['--errno', errno, '--', process.execPath, ...nodeArgs]
  const r = await run(file, args, { cwd: repoRoot, env, polls: HANG_POLLS })
  const where = `${errno === null ? 'plain node' : `launcher --errno ${errno}`}, mode ${mode}`
  if (r.hung) {
    t.fail(`the child (${where}) hung and was killed; stderr:\n${r.stderr}\nstdout:\n${r.stdout}`)
    return undefined
  }
  const line = r.stdout
    .split('\n')
    .reverse()
    .find((l) => l.startsWith('RESULT '))
  if (line === undefined) {
    t.fail(`the child (${where}) printed no RESULT line; exit code ${r.code}, signal ${r.signal}; stderr:\n${r.stderr}\nstdout:\n${r.stdout}`)
    return undefined
  }
  const report = JSON.parse(line.slice('RESULT '.length)) as ChildReport
  if (report.fatal !== undefined) {
    t.fail(`the child (${where}) failed: ${report.fatal.stack ?? report.fatal.message}\nstderr:\n${r.stderr}`)
    return undefined
  }
  t.is(r.code, 0, `the child (${where}) exits 0; stderr:\n${r.stderr}`)
  if (r.stderr.trim() !== '') t.log(`child stderr (${where}):\n${r.stderr.trim()}`)
  return report
}

/** The value of a step that must have succeeded; fails the test with the child's error otherwise. */
function ok<T>(t: ExecutionContext, s: Step<T> | undefined, what: string): T | undefined {
  if (s === undefined) {
    t.fail(`${what}: the child did not report it`)
    return undefined
  }
  if (!s.ok) {
    t.fail(`${what} failed in the child: ${s.error.stack ?? s.error.message} (code ${String(s.error.code)})`)
    return undefined
  }
  t.pass()
  return s.value
}

/** The error of a step that must have thrown; fails the test otherwise. */
function threw(t: ExecutionContext, s: Step<unknown> | undefined, what: string): ErrorInfo | undefined {
  if (s === undefined) {
    t.fail(`${what}: the child did not report it`)
    return undefined
  }
  if (s.ok) {
    t.fail(`${what} did not throw; it gave ${JSON.stringify(s.value)}`)
    return undefined
  }
  t.pass()
  return s.error
}

/** The refused-io_uring error: an Error with the errno name in its message and our code. */
function assertUnavailable(t: ExecutionContext, e: ErrorInfo | undefined, errno: Errno, what: string): void {
  if (e === undefined) return
  t.log(`${what} threw (${errno}): ${String(e.code)}: ${e.message}`)
  t.true(e.isError, `${what}: an Error instance`)
  t.true(e.message.includes(errno), `${what}: the message names ${errno}: ${e.message}`)
  t.is(e.code, 'ERR_RINGLINE_IO_URING_UNAVAILABLE', `${what}: code`)
}

/** The file round trip and the TCP round trip moved the right bytes. */
function assertData(t: ExecutionContext, report: ChildReport, label: string): void {
  const file = ok(t, report.file, `${label}: file round trip`)
  if (file !== undefined) {
    t.true(file.readBackEqual, `${label}: bytes read back through the ring equal those written`)
    t.true(file.onDiskEqual, `${label}: the file on disk (read with node:fs) equals what was written`)
    t.is(file.readBackLength, file.expectedSize, `${label}: read-back length`)
    t.is(file.statSize, file.expectedSize, `${label}: fh.stat().size`)
  }
  const tcp = ok(t, report.tcp, `${label}: TCP round trip`)
  if (tcp !== undefined) {
    t.is(tcp.upBytes, MiB, `${label}: bytes the server received`)
    t.is(tcp.upReceived, tcp.upSent, `${label}: sha256 of client -> server`)
    t.is(tcp.downBytes, MiB, `${label}: bytes the client received`)
    t.is(tcp.downReceived, tcp.downSent, `${label}: sha256 of server -> client`)
  }
  t.is(ok(t, report.defaultOpen, `${label}: open() of the default ring`), 'through the default ring')
  ok(t, report.close, `${label}: closing the rings`)
}

// --------------------------------------------------------------- tests

for (const errno of ['EPERM', 'ENOSYS'] as const) {
  realKernelOnly('seccomp refusing io_uring_setup in a child process')(`io_uring refused with ${errno} by seccomp: 'auto' falls back to mio, says why, refuses 'io_uring', and moves file and TCP data`, async (t) => {
    if (!launcherPresent(t)) return
    const report = await runChild(t, errno, 'full', childEnv())
    if (report === undefined) return
    const label = `under seccomp ${errno}`

    // The filter really is on in the child.
    t.is(report.status.Seccomp, '2', `${label}: /proc/self/status Seccomp (2 = filter mode)`)
    t.is(report.status.NoNewPrivs, '1', `${label}: NoNewPrivs`)
    t.is(report.env.RINGLINE_BACKEND, null, 'RINGLINE_BACKEND is unset in the child')

    const auto = ok(t, report.auto, `${label}: new Ring()`)
    if (auto !== undefined) {
      t.is(auto.backend, 'mio', `${label}: new Ring().backend`)
      t.is(typeof auto.fallbackReason, 'string', `${label}: fallbackReason is a string`)
      const reason = String(auto.fallbackReason)
      t.log(`fallbackReason (${errno}, completion ${String(auto.completion)}): ${reason}`)
      t.true(reason.includes('io_uring_setup'), `${label}: fallbackReason names io_uring_setup: ${reason}`)
      t.true(reason.includes(errno), `${label}: fallbackReason names ${errno}: ${reason}`)
    }

    assertUnavailable(t, threw(t, report.explicitIoUring, `${label}: new Ring({ backend: 'io_uring' })`), errno, "new Ring({ backend: 'io_uring' })")

    assertData(t, report, label)

    const degradations = ok(t, report.degradations, `${label}: ring.stats().degradations`)
    if (degradations !== undefined) {
      t.true(Array.isArray(degradations), `${label}: degradations is an array: ${JSON.stringify(degradations)}`)
      if (Array.isArray(degradations)) {
        t.true(degradations.length > 0, `${label}: degradations is not empty`)
        t.true(
          degradations.every((d) => typeof d === 'string'),
          `${label}: degradations are strings: ${JSON.stringify(degradations)}`,
        )
        t.log(`degradations (${errno}): ${JSON.stringify(degradations)}`)
      }
    }
    t.is(ok(t, report.statsBackend, `${label}: ring.stats().backend`), 'mio', `${label}: ring.stats().backend`)

    const def = ok(t, report.defaultRing, `${label}: defaultRing()`)
    if (def !== undefined) {
      t.is(def.backend, 'mio', `${label}: defaultRing().backend`)
      const reason = String(def.fallbackReason)
      t.true(reason.includes('io_uring_setup') && reason.includes(errno), `${label}: defaultRing().fallbackReason: ${reason}`)
    }
  })
}

test('control: without the launcher the same child stays on io_uring with no fallback reason', async (t) => {
  const report = await runChild(t, null, 'full', childEnv())
  if (report === undefined) return
  const label = 'plain node'
  t.is(report.env.RINGLINE_BACKEND, null, 'RINGLINE_BACKEND is unset in the child')
  const auto = ok(t, report.auto, `${label}: new Ring()`)
  if (auto !== undefined) {
    t.is(auto.backend, 'io_uring', `${label}: new Ring().backend`)
    t.is(auto.fallbackReason, null, `${label}: new Ring().fallbackReason`)
  }
  const explicit = ok(t, report.explicitIoUring, `${label}: new Ring({ backend: 'io_uring' })`)
  if (explicit !== undefined) {
    t.is(explicit.backend, 'io_uring')
    t.is(explicit.fallbackReason, null)
  }
  assertData(t, report, label)
  t.deepEqual(ok(t, report.degradations, `${label}: ring.stats().degradations`), [], `${label}: no degradations on io_uring`)
  t.is(ok(t, report.statsBackend, `${label}: ring.stats().backend`), 'io_uring')
  const def = ok(t, report.defaultRing, `${label}: defaultRing()`)
  if (def !== undefined) {
    t.is(def.backend, 'io_uring', `${label}: defaultRing().backend`)
    t.is(def.fallbackReason, null, `${label}: defaultRing().fallbackReason`)
  }
})

realKernelOnly('seccomp refusing io_uring_setup in a child process')('RINGLINE_BACKEND decides when no option is given: io_uring under the filter throws, mio without it runs on mio', async (t) => {
  if (!launcherPresent(t)) return
  const refused = await runChild(t, 'EPERM', 'ctor', childEnv({ RINGLINE_BACKEND: 'io_uring' }))
  if (refused !== undefined) {
    assertUnavailable(t, threw(t, refused.auto, 'RINGLINE_BACKEND=io_uring under seccomp EPERM: new Ring()'), 'EPERM', 'new Ring() with RINGLINE_BACKEND=io_uring')
    assertUnavailable(t, threw(t, refused.defaultRing, 'RINGLINE_BACKEND=io_uring under seccomp EPERM: defaultRing()'), 'EPERM', 'defaultRing() with RINGLINE_BACKEND=io_uring')
  }
  const mio = await runChild(t, null, 'ctor', childEnv({ RINGLINE_BACKEND: 'mio' }))
  if (mio !== undefined) {
    t.is(ok(t, mio.auto, 'RINGLINE_BACKEND=mio: new Ring()')?.backend, 'mio')
    t.is(ok(t, mio.defaultRing, 'RINGLINE_BACKEND=mio: defaultRing()')?.backend, 'mio')
    ok(t, mio.close, 'RINGLINE_BACKEND=mio: closing the rings')
  }
})
