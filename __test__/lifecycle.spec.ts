// Process and worker lifecycle, in child processes (scripts in fixtures/,
// loading the built package by its name): idle rings do not keep a process
// alive, pending I/O does; workers have their own rings and can be
// terminated with I/O in flight; the package loads through require and
// import alike.

import test from 'ava'
import { createHash } from 'node:crypto'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { BACKEND, distIndex, distIndexMjs, fixtures, makeTmpDir, mkfifo, randomFile, removeTmpDir, run, start, uniquePath, outcome, waitFor } from './helpers'
import { realKernelOnly } from './sim-setup'

const dir = makeTmpDir('lifecycle')
test.after.always(() => removeTmpDir(dir))

const node = process.execPath

function describe(r: { code: number | null; signal: string | null; stdout: string; stderr: string; hung?: boolean }): string {
  return `code ${String(r.code)}, signal ${String(r.signal)}, hung ${String(r.hung)}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`
}

realKernelOnly('a child process opens a file the test wrote on the real disk')('a process that opened and read a file exits by itself with code 0', async (t) => {
  const file = uniquePath(dir)
  fs.writeFileSync(file, 'idle ring')
  for (const mode of ['default', 'close', 'explicit']) {
    const r = await run(node, [path.join(fixtures, 'idle-exit.js'), file, mode])
    t.false(r.hung, `mode ${mode}: the process exits by itself\n${describe(r)}`)
    t.is(r.code, 0, `mode ${mode}: ${describe(r)}`)
    t.is(r.signal, null)
    t.is(r.stdout, 'read:idle ring\n', `mode ${mode}`)
    t.is(r.stderr, '')
  }
})

realKernelOnly('a FIFO, in a child process')('a pending FIFO read keeps the process alive until data arrives', async (t) => {
  const fifo = uniquePath(dir, 'fifo')
  mkfifo(fifo)
  let ready = false
  const child = start(node, [path.join(fixtures, 'fifo-wait.js'), fifo], {
    onStdout: (all) => {
      if (all.includes('ready\n')) ready = true
    },
  })
  let exited = false
  void child.done.then(() => {
    exited = true
  })
  t.teardown(() => {
    if (!exited) child.child.kill('SIGKILL')
  })
  t.true(await waitFor(() => ready || exited, 2000, 10), 'the child got going')
  t.true(ready)
  // While the read is pending the child has nothing else to keep it alive;
  // give it the chance to (wrongly) exit before feeding the FIFO.
  await waitFor(() => exited, 50, 10)
  t.false(exited, 'the child is still alive while its read is pending')
  const w = fs.openSync(fifo, fs.constants.O_RDWR | fs.constants.O_NONBLOCK)
  fs.writeSync(w, 'ping')
  const o = await outcome(child.done, 3000, 10)
  fs.closeSync(w)
  t.true(o.settled, 'the child exits once its read is done')
  const r = o.value
  if (r === undefined) return
  t.is(r.code, 0, describe(r))
  t.is(r.stdout, 'ready\ndata:ping\n', describe(r))
})

realKernelOnly('workers open files the test wrote on the real disk (each sim ring has a disk of its own)')('4 workers each do I/O on their own default ring and an explicit Ring', async (t) => {
  const wdir = fs.mkdtempSync(path.join(dir, 'workers-'))
  const r = await run(node, [path.join(fixtures, 'workers.js'), wdir])
  t.false(r.hung, describe(r))
  t.is(r.code, 0, describe(r))
  t.is(r.signal, null)
  let results: unknown
  try {
    results = JSON.parse(r.stdout)
  } catch {
    t.fail(`not JSON: ${describe(r)}`)
    return
  }
  t.true(Array.isArray(results))
  if (!Array.isArray(results)) return
  t.is(results.length, 4)
  const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')
  for (const item of results as { index: number; code: number; message: Record<string, unknown> | null }[]) {
    t.is(item.code, 0, `worker ${item.index} exits normally`)
    const m = item.message
    t.not(m, null, `worker ${item.index} posted a result`)
    if (m === null) continue
    t.is(m.error, undefined, `worker ${item.index}: ${String(m.error)}`)
    t.is(m.index, item.index)
    t.is(m.defaultWritten, 100000 + item.index * 1000)
    t.true(m.defaultReadOk, `worker ${item.index}: default ring read back what it wrote`)
    t.true(m.explicitWritesOk, `worker ${item.index}: explicit ring writes`)
    t.true(m.explicitReadManyOk, `worker ${item.index}: explicit ring readMany`)
    t.true(m.explicitAlignedOk, `worker ${item.index}: explicit ring aligned read`)
    t.is(m.defaultBackend, BACKEND)
    const st = m.explicitStats as { submitted: number; completed: number; inFlight: number }
    t.is(st.inFlight, 0)
    t.is(st.completed, st.submitted)
    // what the workers wrote is on disk
    t.is(sha(fs.readFileSync(String(m.defaultPath))), String(m.defaultSha), `worker ${item.index}: default ring file`)
    t.is(sha(fs.readFileSync(String(m.explicitPath))), String(m.explicitSha), `worker ${item.index}: explicit ring file`)
  }
  t.deepEqual(
    (results as { index: number }[]).map((x) => x.index).sort(),
    [0, 1, 2, 3],
  )
})

realKernelOnly('FIFOs and files on the real disk, in workers of a child process')('terminating workers with FIFO and file reads in flight does not crash the process', async (t) => {
  const fifo = uniquePath(dir, 'fifo')
  mkfifo(fifo)
  const file = uniquePath(dir, 'data')
  randomFile(file, 1 << 20)
  const out = uniquePath(dir, 'out')
  const r = await run(node, [path.join(fixtures, 'terminate.js'), fifo, file, out])
  t.false(r.hung, `the process finishes\n${describe(r)}`)
  t.is(r.signal, null, describe(r))
  t.is(r.code, 0, describe(r))
  t.is(r.stdout, 'terminated:0:1\nterminated:1:1\nterminated:2:1\nmain:main thread still works\n', describe(r))
  t.is(fs.readFileSync(out, 'utf8'), 'main thread still works')
})

realKernelOnly('a child process reads a file the test wrote on the real disk')('the package loads with require() and import() and both expose the same API', async (t) => {
  const file = uniquePath(dir)
  fs.writeFileSync(file, 'esm works')
  const r = await run(node, [path.join(fixtures, 'esm.mjs'), distIndex, distIndexMjs, file])
  t.false(r.hung, describe(r))
  t.is(r.code, 0, describe(r))
  let info: Record<string, unknown>
  try {
    info = JSON.parse(r.stdout) as Record<string, unknown>
  } catch {
    t.fail(`not JSON: ${describe(r)}`)
    return
  }
  t.is(info.cjsOpen, 'function')
  t.is(info.esmOpen, 'function')
  t.true(info.sameOpen, 'the same open function')
  t.true(info.sameRing, 'the same Ring class')
  t.true(info.sameAllocAligned)
  t.true(info.sameDefaultRing, 'one default ring per thread, whichever way it was loaded')
  t.true(info.defaultExport)
  t.true(info.byNameEsm, "import('ringline') resolves to the same module")
  t.true(info.byNameCjs, "require('ringline') resolves to the same module")
  t.deepEqual(info.esmKeys, info.cjsKeys, 'the ES module exports every name of the CommonJS build')
  for (const name of ['open', 'Ring', 'allocAligned', 'defaultRing', 'FileHandle', 'Stats', 'AbortError']) {
    t.true((info.esmKeys as string[]).includes(name), `exports ${name}`)
  }
  t.is(info.read, 'esm works')
})

realKernelOnly("counts the process's real descriptors, side by side with node:fs")('a FileHandle collected unclosed has its descriptor closed, with the warnings node:fs/promises gives', async (t) => {
  const out: Record<string, { before: number; opened: number; after: number; warnings: number; first: { message: string }[]; deprecations: number }> = {}
  for (const impl of ['node', 'ringline']) {
    const r = await run(node, ['--expose-gc', '--import', 'tsx', path.join(fixtures, 'unclosed-handles.ts'), impl])
    t.is(r.code, 0, `${impl}: ${r.stderr.slice(-500)}`)
    out[impl] = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}')
  }
  const { node: n, ringline: r } = out
  t.log(JSON.stringify(out))
  // 500 opened on each side (give or take a descriptor someone else opened
  // or closed meanwhile: the count is the whole process's).
  t.true(n.opened - n.before >= 490 && r.opened - r.before >= 490, `both opened 500 descriptors: ${JSON.stringify(out)}`)
  t.true(n.after <= n.before + 20, `node:fs/promises closes them: ${n.after} left of ${n.opened}`)
  t.true(r.after <= r.before + 20, `ringline closes them: ${r.after} left of ${r.opened} (node: ${n.after} of ${n.opened})`)
  t.is(r.warnings - r.deprecations, n.warnings - n.deprecations, 'one warning per descriptor, as node gives')
  t.regex(r.first[0]?.message ?? '', /^Closing file descriptor \d+ on garbage collection$/)
  t.is(r.deprecations, 1, 'and DEP0137 once, as node gives')
  t.is(n.deprecations, 1)
})
