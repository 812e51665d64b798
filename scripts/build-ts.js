// Builds dist/ from index.ts and lib/ (npm run build:ts): an empty dist/
// first, so no file of a deleted source is ever shipped; tsc (CommonJS and
// declarations, no source maps: the sources are not shipped); then the ES
// module face, dist/index.mjs with its declarations dist/index.d.mts, so
// the package works from both `import` and `require` with the same
// instances and TypeScript sees each form as what it is.
'use strict'
const fs = require('node:fs')
const path = require('node:path')
const { spawnSync } = require('node:child_process')

const root = path.join(__dirname, '..')
const dist = path.join(root, 'dist')
fs.rmSync(dist, { recursive: true, force: true })

const tsc = spawnSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', path.join(root, 'tsconfig.json')], {
  stdio: 'inherit',
})
if (tsc.status !== 0) process.exit(tsc.status ?? 1)

// The value exports of index.ts, from the compiler (not by loading
// dist/index.js, which would need the native module: the publish job builds
// dist/ with the binaries still in artifacts/).
const ts = require('typescript')
const entry = path.join(root, 'index.ts')
const program = ts.createProgram([entry], { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, noEmit: true })
const checker = program.getTypeChecker()
const names = checker
  .getExportsOfModule(checker.getSymbolAtLocation(program.getSourceFile(entry)))
  .filter((s) => {
    const target = s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s
    return (target.flags & ts.SymbolFlags.Value) !== 0 && !s.declarations?.some((d) => d.isTypeOnly)
  })
  .map((s) => s.name)
  .sort()
if (names.length === 0) throw new Error('build-ts: index.ts exports no value')
fs.writeFileSync(
  path.join(dist, 'index.mjs'),
  [
    "import { createRequire } from 'node:module'",
    'const require = createRequire(import.meta.url)',
    "const cjs = require('./index.js')",
    ...names.map((n) => `export const ${n} = cjs.${n}`),
    'export default cjs',
    '',
  ].join('\n'),
)
fs.writeFileSync(
  path.join(dist, 'index.d.mts'),
  ["export * from './index.js'", "import * as cjs from './index.js'", 'export default cjs', ''].join('\n'),
)
