// What truncation costs a same-size overwrite, with node's sync calls alone
// (no thread pool, no runtime in between): four ways to rewrite n existing
// 4 KiB files, each timed, with the disk write I/Os the block device counted
// during the loop (/sys/block/<device>/stat, field 5). Used for
// benches/FS-FINDINGS.md (ext4's auto_da_alloc: a file truncated to 0 and
// rewritten is written back at close).
//
//   node benches/fs-overwrite-modes.js [n] [dir] [device]
//
// n: files (default 3000); dir: where the scratch directory is made (default
// os.tmpdir()); device: the block device under dir (default: read from
// /proc/mounts, e.g. vda). sync(1) runs before each variant, outside the timer.

'use strict'
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { spawnSync } = require('node:child_process')

const n = Number(process.argv[2] || 3000)
const base = path.resolve(process.argv[3] || os.tmpdir())

function deviceOf(dir) {
  let best = null
  for (const line of fs.readFileSync('/proc/mounts', 'utf8').split('\n')) {
    const f = line.split(' ')
    if (f.length < 4) continue
    if ((dir === f[1] || dir.startsWith(f[1].endsWith('/') ? f[1] : `${f[1]}/`)) && (best === null || f[1].length > best[1].length)) best = f
  }
  return best && best[0].startsWith('/dev/') ? path.basename(best[0]) : null
}

const dev = process.argv[4] || deviceOf(base)
const statFile = dev ? `/sys/block/${dev}/stat` : null
const writeIos = () => {
  if (!statFile || !fs.existsSync(statFile)) return NaN
  return Number(fs.readFileSync(statFile, 'utf8').trim().split(/\s+/)[4])
}

const dir = fs.mkdtempSync(path.join(base, 'fs-overwrite-modes-'))
const data = Buffer.alloc(4096, 0x61)
const files = Array.from({ length: n }, (_, i) => path.join(dir, `f${i}`))
for (const f of files) fs.writeFileSync(f, data)

const { O_WRONLY, O_CREAT, O_TRUNC } = fs.constants
const variants = {
  'open(O_TRUNC) + write + close          (node writeFile)': (f) => {
    const fd = fs.openSync(f, O_WRONLY | O_CREAT | O_TRUNC)
    fs.writeSync(fd, data)
    fs.closeSync(fd)
  },
  'open + write + ftruncate(len) + close  (Bun writeFile)': (f) => {
    const fd = fs.openSync(f, O_WRONLY | O_CREAT)
    fs.writeSync(fd, data)
    fs.ftruncateSync(fd, data.length)
    fs.closeSync(fd)
  },
  'open + write + close                   (no truncation)': (f) => {
    const fd = fs.openSync(f, O_WRONLY | O_CREAT)
    fs.writeSync(fd, data)
    fs.closeSync(fd)
  },
  'open + ftruncate(0) + write + close': (f) => {
    const fd = fs.openSync(f, O_WRONLY | O_CREAT)
    fs.ftruncateSync(fd, 0)
    fs.writeSync(fd, data)
    fs.closeSync(fd)
  },
}

console.log(`${n} same-size overwrites of 4 KiB files in ${dir} (device ${dev ?? 'unknown'}), node ${process.version}`)
try {
  for (let round = 1; round <= 2; round++) {
    for (const [name, op] of Object.entries(variants)) {
      spawnSync('sync', { stdio: 'ignore' })
      const w0 = writeIos()
      const t0 = performance.now()
      for (const f of files) op(f)
      const dt = performance.now() - t0
      const w = writeIos() - w0
      console.log(
        `  round ${round}  ${name.padEnd(56)} ${String(Math.round((n / dt) * 1000)).padStart(7)}/s   disk write I/Os during the loop: ${w} (${(w / n).toFixed(2)} per file)`,
      )
    }
  }
} finally {
  fs.rmSync(dir, { recursive: true, force: true })
}
