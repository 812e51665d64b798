// Builds dist/ from index.ts, fs.ts, net.ts and lib/ (npm run build:ts): an empty dist/
// first, so no file of a deleted source is ever shipped; tsc (CommonJS and
// declarations, no source maps: the sources are not shipped); then the ES
// module face of each entry, dist/<entry>.mjs with its declarations
// dist/<entry>.d.mts, so
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

// The value exports of each entry point, from the compiler (not by loading
// dist/, which would need the native module: the publish job builds dist/
// with the binaries still in artifacts/).
const ts = require('typescript')
const entries = ['index', 'fs', 'net']
const program = ts.createProgram(
  entries.map((e) => path.join(root, `${e}.ts`)),
  { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, noEmit: true },
)
const checker = program.getTypeChecker()
for (const entry of entries) {
  const file = program.getSourceFile(path.join(root, `${entry}.ts`))
  const names = checker
    .getExportsOfModule(checker.getSymbolAtLocation(file))
    .filter((s) => {
      const target = s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s
      // `export { type X }` marks the specifier, `export type { X }` its declaration.
      const typeOnly = s.declarations?.some((d) => d.isTypeOnly || d.parent?.parent?.isTypeOnly)
      return (target.flags & ts.SymbolFlags.Value) !== 0 && !typeOnly
    })
    .map((s) => s.name)
    .filter((n) => n !== 'default')
    .sort()
  if (names.length === 0) throw new Error(`build-ts: ${entry}.ts exports no value`)
  fs.writeFileSync(
    path.join(dist, `${entry}.mjs`),
    [
      "import { createRequire } from 'node:module'",
      'const require = createRequire(import.meta.url)',
      `const cjs = require('./${entry}.js')`,
      ...names.map((n) => `export const ${n} = cjs.${n}`),
      'export default cjs',
      '',
    ].join('\n'),
  )
  fs.writeFileSync(
    path.join(dist, `${entry}.d.mts`),
    [`export * from './${entry}.js'`, `import * as cjs from './${entry}.js'`, 'export default cjs', ''].join('\n'),
  )
}
