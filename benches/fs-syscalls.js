// A small probe for strace: N whole-file calls of one kind, one at a time,
// on files of [size] bytes (default 4096), in whichever runtime runs it
// (node or bun). Used for
// benches/FS-FINDINGS.md, e.g.
//
//   strace -f -c -o node-ow.c node benches/fs-syscalls.js overwrite 300
//   strace -f -tt -e trace=openat,write,ftruncate,close,statx,fstat,newfstatat,read,io_uring_enter \
//       -o bun-ow.txt "$BUN" benches/fs-syscalls.js overwrite 300
//
//   <runtime> benches/fs-syscalls.js <op> [n] [dir] [size]
//
// ops: overwrite, new, read, stat (fs.promises, awaited one by one),
//      overwrite-sync, new-sync, read-sync, stat-sync (the sync calls),
//      overwrite-cb, new-cb, read-cb, stat-cb (callbacks, one by one),
//      bun-write, bun-read (Bun.write, Bun.file().bytes(); bun only).
// Setup (the files that overwrite/read/stat need) runs before the timed part,
// and not at all when [dir] already holds them.
// The timed part is fenced by two failing stats of "/MARK-begin" and
// "/MARK-end", so a trace can be cut to it (awk '/MARK-begin/,/MARK-end/').
// Prints "<op> <n>: <rate>/s" on stderr. Files go to a fresh directory under
// os.tmpdir() (or [dir]), removed at the end unless [dir] was given.

'use strict'
const fs = require('node:fs')
const fsp = require('node:fs/promises')
const os = require('node:os')
const path = require('node:path')

const [op, nArg, dirArg, sizeArg] = process.argv.slice(2)
const n = Number(nArg || 300)
const size = Number(sizeArg || 4096)
const OPS = ['overwrite', 'new', 'read', 'stat', 'bun-write', 'bun-read']
const base = (op || '').replace(/-(sync|cb)$/, '')
if (!OPS.includes(base) || !(n > 0)) {
  process.stderr.write(`usage: <node|bun> fs-syscalls.js <${OPS.join('|')}>[-sync|-cb] [n] [dir] [size]\n`)
  process.exit(2)
}
const dir = dirArg ? path.resolve(dirArg) : fs.mkdtempSync(path.join(os.tmpdir(), 'fs-syscalls-'))
fs.mkdirSync(dir, { recursive: true })
const data = Buffer.alloc(size, 0x61)
const files = []
for (let i = 0; i < n; i++) files.push(path.join(dir, `f${i}`))
// A [dir] that already holds the files is used as it is (no setup calls in a trace).
const prepared = dirArg !== undefined && fs.existsSync(files[n - 1])
if (base !== 'new' && !prepared) for (const f of files) fs.writeFileSync(f, data)
if (base.startsWith('bun-') && typeof Bun === 'undefined') {
  process.stderr.write(`${op} needs bun\n`)
  process.exit(2)
}

const mark = (s) => {
  try {
    fs.statSync(`/MARK-${s}`)
  } catch {
    // expected: the path does not exist; the failing call is the marker
  }
}

const cb = (fn) => new Promise((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v))))

async function one(f) {
  switch (op) {
    case 'overwrite':
    case 'new':
      return fsp.writeFile(f, data)
    case 'overwrite-sync':
    case 'new-sync':
      return fs.writeFileSync(f, data)
    case 'overwrite-cb':
    case 'new-cb':
      return cb((k) => fs.writeFile(f, data, k))
    case 'read':
      return fsp.readFile(f)
    case 'read-sync':
      return fs.readFileSync(f)
    case 'read-cb':
      return cb((k) => fs.readFile(f, k))
    case 'stat':
      return fsp.stat(f)
    case 'stat-sync':
      return fs.statSync(f)
    case 'stat-cb':
      return cb((k) => fs.stat(f, k))
    case 'bun-write':
      return Bun.write(f, data)
    case 'bun-read':
      return Bun.file(f).bytes()
    default:
      throw new Error(`unknown op ${op}`)
  }
}

async function main() {
  mark('begin')
  const t0 = performance.now()
  if (op.endsWith('-sync')) for (const f of files) one(f)
  else for (const f of files) await one(f)
  const dt = performance.now() - t0
  mark('end')
  process.stderr.write(`${op} ${n}: ${Math.round((n / dt) * 1000)}/s\n`)
  if (!dirArg) fs.rmSync(dir, { recursive: true, force: true })
}

main().catch((e) => {
  process.stderr.write(`${e && e.stack ? e.stack : e}\n`)
  process.exit(1)
})
