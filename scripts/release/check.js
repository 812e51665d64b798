// The release check (npm run test:release, part of npm test): stages the
// root package and this machine's platform package the way the publish job
// does (stage.js), serves them from a registry of its own on 127.0.0.1
// (registry.js), installs `ringline` from it into a fresh project with no
// Rust toolchain on PATH, and there:
//
//   - checks what each tarball holds: exactly dist/ (no source maps), the
//     README, LICENSE and package.json; the .node stripped; no install-time
//     script; the guard's conditions (guard.js);
//   - loads the package with `require` and `import` (same instances), writes
//     and reads back a file, echoes over TCP (fixtures/smoke.js);
//   - type-checks fixtures/usage.ts with `tsc --strict` and TypeScript's
//     other defaults, fixtures/usage.mts with --module nodenext, and checks
//     that fixtures/wrong.ts fails with exactly the errors it marks;
//   - damages the platform package, changes its version, leaves only
//     another platform's package, then removes it, and checks each time that
//     the error's first line names it and what is wrong.
//
// Prints the tarball sizes and the install time. Needs dist/ and a .node of
// this machine's platform: the source build npm install made, or the one
// under `--artifacts DIR` (e.g. a CI build leg's).
'use strict'
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { execFile } = require('node:child_process')
const { promisify } = require('node:util')
const { stage } = require('./stage')
const { problems, INSTALL_SCRIPTS } = require('./guard')
const { startRegistry } = require('./registry')
const { root, manifest } = require('./platforms')
const { platformName } = require(path.join(root, 'dist', 'lib', 'loader.js'))

const run = promisify(execFile)
const fixtures = path.join(__dirname, 'fixtures')
const failures = []
const check = (ok, what) => {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`)
  if (!ok) failures.push(what)
  return ok
}

/** A PATH with node, npm and the shell tools npm needs, and no cargo or rustc. */
function toolchainFreeEnv(tmp) {
  const bin = path.join(tmp, 'bin')
  fs.mkdirSync(bin)
  const which = (tool) => {
    for (const d of (process.env.PATH ?? '').split(path.delimiter)) {
      const p = path.join(d, tool)
      if (d !== '' && fs.existsSync(p)) return p
    }
    return undefined
  }
  fs.symlinkSync(process.execPath, path.join(bin, 'node'))
  for (const tool of ['npm', 'npx', 'sh', 'tar', 'gzip', 'env']) {
    const p = which(tool)
    if (p !== undefined) fs.symlinkSync(fs.realpathSync(p), path.join(bin, tool))
  }
  const env = {
    ...process.env,
    PATH: bin,
    npm_config_userconfig: path.join(tmp, 'npmrc'),
    npm_config_cache: path.join(tmp, 'cache'),
    npm_config_update_notifier: 'false',
  }
  for (const k of Object.keys(env)) {
    if (/^(CARGO|RUSTC|RUSTUP|RUSTFLAGS|npm_lifecycle|npm_package|npm_command|npm_config_(?!userconfig|cache|update_notifier))/i.test(k)) delete env[k]
  }
  fs.writeFileSync(env.npm_config_userconfig, '')
  return env
}

/** Files of a packed tarball: [{ path, size }], from `npm pack --json`. */
async function pack(dir, dest, env) {
  const { stdout } = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', dest], { cwd: dir, env })
  const [info] = JSON.parse(stdout.slice(stdout.indexOf('[')))
  return { tarball: path.join(dest, info.filename), size: info.size, unpackedSize: info.unpackedSize, files: info.files.map((f) => f.path).sort() }
}

/** The section names of an ELF file (the .node of a Linux platform). */
function elfSections(file) {
  const b = fs.readFileSync(file)
  if (b.readUInt32BE(0) !== 0x7f454c46 || b[4] !== 2) return null // not a 64-bit ELF
  const shoff = Number(b.readBigUInt64LE(0x28))
  const shentsize = b.readUInt16LE(0x3a)
  const shnum = b.readUInt16LE(0x3c)
  const shstrndx = b.readUInt16LE(0x3e)
  const strOff = Number(b.readBigUInt64LE(shoff + shstrndx * shentsize + 0x18))
  const names = []
  for (let i = 0; i < shnum; i++) {
    const nameOff = b.readUInt32LE(shoff + i * shentsize)
    const start = strOff + nameOff
    names.push(b.toString('latin1', start, b.indexOf(0, start)))
  }
  return names
}

/** What the root tarball must hold: dist/ built from index.ts, fs.ts, net.ts and every .ts under lib/, and nothing else. */
function expectedRootFiles() {
  const sources = []
  const walk = (dir) => {
    for (const e of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
      const rel = `${dir}/${e.name}`
      if (e.isDirectory()) walk(rel)
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) sources.push(rel.replace(/\.ts$/, ''))
    }
  }
  walk('lib')
  const entries = ['index', 'fs', 'net']
  return [
    'LICENSE',
    'README.md',
    'package.json',
    ...entries.flatMap((e) => [`dist/${e}.js`, `dist/${e}.d.ts`, `dist/${e}.mjs`, `dist/${e}.d.mts`]),
    ...sources.flatMap((f) => [`dist/${f}.js`, `dist/${f}.d.ts`]),
  ].sort()
}

function sameList(got, want, what) {
  const extra = got.filter((f) => !want.includes(f))
  const missing = want.filter((f) => !got.includes(f))
  return check(extra.length === 0 && missing.length === 0, `${what}${extra.length ? `; unexpected: ${extra.join(', ')}` : ''}${missing.length ? `; missing: ${missing.join(', ')}` : ''}`)
}

/** `file(line): error TSnnnn` lines of tsc's output, as "file:line TSnnnn". */
function tscErrors(out) {
  return [...out.matchAll(/^(.+?)\((\d+),\d+\): error (TS\d+)/gm)].map((m) => `${path.basename(m[1])}:${m[2]} ${m[3]}`).sort()
}

async function tsc(app, env, args) {
  const bin = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc')
  try {
    const { stdout } = await run(process.execPath, [bin, ...args], { cwd: app, env })
    return { ok: true, out: stdout }
  } catch (e) {
    return { ok: false, out: `${e.stdout ?? ''}${e.stderr ?? ''}` }
  }
}

async function main() {
  const started = Date.now()
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ringline-release-'))
  const keep = process.env.RINGLINE_RELEASE_KEEP === '1'
  try {
    const env = toolchainFreeEnv(tmp)
    check((await run('sh', ['-c', 'command -v cargo || command -v rustc || true'], { env })).stdout.trim() === '', 'no cargo or rustc on the fresh project\'s PATH')

    // The packages, staged and packed as the publish job does.
    const host = platformName()
    const i = process.argv.indexOf('--artifacts')
    const artifacts = i < 0 ? root : path.resolve(process.argv[i + 1])
    let staged
    try {
      staged = stage({ out: path.join(tmp, 'stage'), artifacts, env })
    } catch (e) {
      const out = `${e.stdout ?? ''}${e.stderr ?? ''}`.trim()
      check(false, `staging the packages with no Rust toolchain on PATH (npm pack must build nothing): ${out.split('\n').slice(-12).join('\n') || e.message}`)
      return
    }
    const platform = staged.platforms.find((p) => p.name === host)
    if (!check(platform !== undefined, `a platform package for this machine (${host}) is staged (from ${platform?.from ?? 'nowhere: run npm run build:native'})`)) return
    const tarballs = path.join(tmp, 'tarballs')
    fs.mkdirSync(tarballs)
    const rootPack = await pack(staged.root, tarballs, env)
    const platPack = await pack(platform.staged, tarballs, env)

    sameList(rootPack.files, expectedRootFiles(), `${manifest.name} holds dist/ (index, fs, net, lib/), README.md, LICENSE, package.json and nothing else`)
    sameList(platPack.files, ['LICENSE', 'README.md', 'package.json', platform.file].sort(), `${platform.packageName} holds ${platform.file}, README.md, LICENSE, package.json`)
    const sections = elfSections(path.join(platform.staged, platform.file))
    if (sections !== null) {
      const kept = sections.filter((s) => s === '.symtab' || s.startsWith('.debug'))
      check(kept.length === 0, `${platform.file} is stripped${kept.length ? `: it has ${kept.join(', ')}` : ''}`)
    }
    const rootManifest = JSON.parse(fs.readFileSync(path.join(staged.root, 'package.json'), 'utf8'))
    const installScripts = INSTALL_SCRIPTS.filter((s) => rootManifest.scripts?.[s] !== undefined)
    check(installScripts.length === 0, `no install-time script in ${manifest.name}${installScripts.length ? `: ${installScripts.map((s) => `${s}: ${rootManifest.scripts[s]}`).join(', ')}` : ''}`)
    for (const dir of [staged.root, platform.staged]) {
      const bad = problems(dir)
      check(bad.length === 0, `release guard passes ${path.basename(dir)}${bad.length ? `: ${bad.join('; ')}` : ''}`)
    }
    const repoBad = problems(root)
    check(repoBad.some((b) => b.startsWith('optionalDependencies lack')), 'release guard refuses to publish the repository itself (npm publish by hand)')

    // A fresh project installs `ringline` from the registry.
    const registry = await startRegistry([
      { manifest: rootManifest, tarball: rootPack.tarball },
      { manifest: JSON.parse(fs.readFileSync(path.join(platform.staged, 'package.json'), 'utf8')), tarball: platPack.tarball },
    ])
    const app = path.join(tmp, 'app')
    fs.mkdirSync(app)
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }, null, 2))
    let installMs
    try {
      const t = Date.now()
      await run('npm', ['install', manifest.name, '--registry', registry.url, '--no-audit', '--no-fund', '--loglevel=error'], { cwd: app, env })
      installMs = Date.now() - t
    } catch (e) {
      check(false, `npm install ${manifest.name} from the staged packages, without a Rust toolchain: ${`${e.stderr ?? ''}`.trim().split('\n').slice(-12).join('\n') || e.message}`)
      return
    } finally {
      await registry.close()
    }
    const installed = fs.readdirSync(path.join(app, 'node_modules')).filter((n) => !n.startsWith('.')).sort()
    sameList(installed, [manifest.name, platform.packageName].sort(), `npm install ${manifest.name} installs ${manifest.name} and ${platform.packageName} only`)

    // Load, round trip, echo.
    fs.copyFileSync(path.join(fixtures, 'smoke.js'), path.join(app, 'smoke.js'))
    try {
      const { stdout } = await run(process.execPath, ['smoke.js'], { cwd: app, env })
      for (const line of stdout.trim().split('\n')) check(true, line)
    } catch (e) {
      check(false, `smoke.js: ${e.stdout ?? ''}${e.stderr ?? e.message}`)
    }

    // Types, as a TypeScript user gets them (@types/node is what any
    // TypeScript program for Node has installed).
    fs.mkdirSync(path.join(app, 'node_modules', '@types'))
    fs.symlinkSync(path.join(root, 'node_modules', '@types', 'node'), path.join(app, 'node_modules', '@types', 'node'))
    for (const f of ['usage.ts', 'usage.mts', 'wrong.ts']) fs.copyFileSync(path.join(fixtures, f), path.join(app, f))
    // The README's stated minimum: target ES2015 (the declarations hold
    // classes with #private fields, which TypeScript's default target, ES5,
    // refuses) and a Node module setting (commonjs here: naming a target
    // alone would switch TypeScript to ES modules with classic resolution);
    // every other option is TypeScript's default.
    const tsVersion = require(path.join(root, 'node_modules', 'typescript', 'package.json')).version
    const good = await tsc(app, env, ['--strict', '--target', 'es2015', '--module', 'commonjs', '--noEmit', 'usage.ts'])
    check(good.ok, `tsc --strict --target es2015 --module commonjs (TypeScript ${tsVersion}, other options default) accepts usage.ts${good.ok ? '' : `:\n${good.out}`}`)
    const esm = await tsc(app, env, ['--strict', '--noEmit', '--module', 'nodenext', '--target', 'es2022', 'usage.mts'])
    check(esm.ok, `tsc --strict --module nodenext accepts usage.mts (import, default export)${esm.ok ? '' : `:\n${esm.out}`}`)
    const wrongSource = fs.readFileSync(path.join(fixtures, 'wrong.ts'), 'utf8').split('\n')
    const expected = wrongSource.flatMap((l, i) => [...l.matchAll(/expect (TS\d+)/g)].map((m) => `wrong.ts:${i + 1} ${m[1]}`)).sort()
    const bad = await tsc(app, env, ['--strict', '--target', 'es2015', '--module', 'commonjs', '--noEmit', 'wrong.ts'])
    const got = tscErrors(bad.out)
    check(!bad.ok && JSON.stringify(got) === JSON.stringify(expected), `tsc --strict rejects wrong.ts with exactly its ${expected.length} marked errors${JSON.stringify(got) === JSON.stringify(expected) ? '' : `; got: ${got.join(', ') || bad.out}`}`)

    // A platform package that does not load, a platform with none, a
    // package of another version, one of another platform only, none at all.
    fs.copyFileSync(path.join(fixtures, 'missing.js'), path.join(app, 'missing.js'))
    const nodeFile = path.join(app, 'node_modules', platform.packageName, platform.file)
    fs.writeFileSync(nodeFile, 'not a shared object')
    const damaged = JSON.parse((await run(process.execPath, ['missing.js'], { cwd: app, env })).stdout)
    check(
      damaged.code === 'ERR_RINGLINE_NATIVE_MODULE' && damaged.firstLine.includes(platform.packageName) && damaged.firstLine.includes('did not load'),
      `a damaged ${platform.packageName}: the error's first line names it: ${damaged.firstLine}`,
    )
    // A platform ringline does not publish (as Node reports it: process.arch).
    fs.writeFileSync(path.join(app, 'ia32.js'), "Object.defineProperty(process, 'arch', { value: 'ia32' })\n")
    const ia32 = JSON.parse((await run(process.execPath, ['-r', './ia32.js', 'missing.js'], { cwd: app, env })).stdout)
    check(
      ia32.code === 'ERR_RINGLINE_NATIVE_MODULE' && /^Cannot load ringline: it has no native module for \S+-ia32/.test(ia32.firstLine) && ia32.firstLine.includes(ia32.packageName),
      `a platform ringline does not publish: the error's first line names the package it looked for and where ringline runs: ${ia32.firstLine}`,
    )
    const installedDir = path.join(app, 'node_modules', platform.packageName)
    const installedManifest = path.join(installedDir, 'package.json')
    const manifestText = fs.readFileSync(installedManifest, 'utf8')
    fs.writeFileSync(installedManifest, JSON.stringify({ ...JSON.parse(manifestText), version: '0.0.1' }))
    const old = JSON.parse((await run(process.execPath, ['missing.js'], { cwd: app, env })).stdout)
    check(
      old.code === 'ERR_RINGLINE_NATIVE_MODULE' && old.firstLine.includes(`${platform.packageName} is version 0.0.1, not ${manifest.version}`),
      `${platform.packageName} of another version: the error's first line names it and both versions: ${old.firstLine}`,
    )
    // As if node_modules came from another machine: another platform's
    // package is there, this one's is not.
    const other = `${manifest.napi.binaryName}-${host === 'darwin-arm64' ? 'linux-x64-gnu' : 'darwin-arm64'}`
    fs.writeFileSync(installedManifest, JSON.stringify({ ...JSON.parse(manifestText), name: other }))
    fs.renameSync(installedDir, path.join(app, 'node_modules', other))
    const foreign = JSON.parse((await run(process.execPath, ['missing.js'], { cwd: app, env })).stdout)
    check(
      foreign.code === 'ERR_RINGLINE_NATIVE_MODULE' && foreign.firstLine.includes(`${platform.packageName} is not installed`) && foreign.firstLine.includes(`another platform (${other} is there)`),
      `node_modules from another platform: the error's first line names the missing package and the one there: ${foreign.firstLine}`,
    )
    fs.rmSync(path.join(app, 'node_modules', other), { recursive: true })
    const missing = JSON.parse((await run(process.execPath, ['missing.js'], { cwd: app, env })).stdout)
    check(
      missing.code === 'ERR_RINGLINE_NATIVE_MODULE' &&
        missing.packageName === platform.packageName &&
        missing.firstLine.includes(`${platform.packageName} is not installed`) &&
        missing.firstLine.includes('--omit=optional'),
      `no ${platform.packageName}: the error's first line names it, the cause and the fix: ${missing.firstLine}`,
    )

    const kb = (n) => `${(n / 1024).toFixed(0)} KiB`
    console.log(
      `\n${path.basename(rootPack.tarball)}: ${kb(rootPack.size)} packed, ${kb(rootPack.unpackedSize)} unpacked, ${rootPack.files.length} files` +
        `\n${path.basename(platPack.tarball)}: ${kb(platPack.size)} packed, ${kb(platPack.unpackedSize)} unpacked` +
        `\nnpm install ${manifest.name} into a fresh project: ${installMs} ms; whole check: ${((Date.now() - started) / 1000).toFixed(1)} s`,
    )
  } finally {
    if (keep) console.log(`kept ${tmp}`)
    else fs.rmSync(tmp, { recursive: true, force: true })
  }
}

main().then(
  () => {
    if (failures.length > 0) {
      console.error(`\nrelease check: ${failures.length} failed:\n${failures.map((f) => `  - ${f.split('\n')[0]}`).join('\n')}`)
      process.exit(1)
    }
    console.log('release check: passed')
  },
  (e) => {
    console.error(e)
    process.exit(1)
  },
)
