// Writes dist/index.mjs: an ES module face for the CommonJS build, so the
// package works from both `import` and `require` with the same instances.
'use strict'
const fs = require('node:fs')
const path = require('node:path')

const dist = path.join(__dirname, '..', 'dist')
const cjs = require(path.join(dist, 'index.js'))
const names = Object.keys(cjs).filter((n) => n !== 'default' && n !== '__esModule')
const lines = [
  "import { createRequire } from 'node:module'",
  'const require = createRequire(import.meta.url)',
  "const cjs = require('./index.js')",
  ...names.map((n) => `export const ${n} = cjs.${n}`),
  'export default cjs',
  '',
]
fs.writeFileSync(path.join(dist, 'index.mjs'), lines.join('\n'))
