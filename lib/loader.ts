// Finds and loads ringline's native module: a source build in the package
// root (`ringline.<platform>.node`, made by `npm run build:native`) or else
// the prebuilt package of this platform (`ringline-<platform>`, one of the
// published package's optionalDependencies). Where neither loads, the error's
// first line names the package it looked for, the likely cause and the fix.

import { readFileSync, existsSync } from 'node:fs'
import { dirname, join } from 'node:path'

/** What a failed load throws. */
export interface NativeLoadError extends Error {
  code: 'ERR_RINGLINE_NATIVE_MODULE'
  /** The platform package ringline looked for, e.g. `ringline-linux-x64-gnu`. */
  packageName: string
}

interface Manifest {
  name: string
  version: string
  napi: { binaryName: string; targets: string[] }
}

/** The package root: the nearest directory above this file holding ringline's package.json. */
function packageRoot(): { root: string; manifest: Manifest } {
  let dir = __dirname
  for (;;) {
    const file = join(dir, 'package.json')
    if (existsSync(file)) {
      const manifest = JSON.parse(readFileSync(file, 'utf8')) as Manifest
      if (manifest.name === 'ringline') return { root: dir, manifest }
    }
    const up = dirname(dir)
    if (up === dir) throw new Error(`ringline: no package.json of ringline above ${__dirname}`)
    dir = up
  }
}

/** `glibc` or `musl`: the C library this Node process runs on. */
function linuxLibc(): 'gnu' | 'musl' {
  try {
    // A text script on glibc systems, a wrapper of ld-musl on musl ones.
    return readFileSync('/usr/bin/ldd', 'latin1').includes('musl') ? 'musl' : 'gnu'
  } catch {
    const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined
    return report?.header?.glibcVersionRuntime === undefined ? 'musl' : 'gnu'
  }
}

/** napi-rs's name for this platform: `linux-x64-gnu`, `darwin-arm64`, `win32-x64-msvc`. */
export function platformName(platform: string = process.platform, arch: string = process.arch, libc?: 'gnu' | 'musl'): string {
  if (platform === 'linux') return `linux-${arch}-${libc ?? linuxLibc()}`
  if (platform === 'win32') return `win32-${arch}-msvc`
  return `${platform}-${arch}`
}

/** napi-rs's name for a Rust target triple of package.json's `napi.targets`. */
export function targetPlatformName(triple: string): string {
  const [cpu, , os, abi] = triple.split('-')
  const arch = ({ x86_64: 'x64', aarch64: 'arm64', i686: 'ia32', armv7: 'arm' } as Record<string, string>)[cpu] ?? cpu
  if (os === 'darwin') return `darwin-${arch}`
  if (os === 'windows') return `win32-${arch}-${abi}`
  return `${os}-${arch}${abi === undefined ? '' : `-${abi}`}`
}

function fail(packageName: string, firstLine: string, details: string[], cause?: unknown): never {
  const e = new Error([firstLine, ...details.map((d) => `  ${d}`)].join('\n'), { cause }) as NativeLoadError
  e.code = 'ERR_RINGLINE_NATIVE_MODULE'
  e.packageName = packageName
  throw e
}

function firstLineOf(e: unknown): string {
  return String(e instanceof Error ? e.message : e).split('\n')[0]
}

function isMissing(e: unknown, what: string): boolean {
  const err = e as { code?: string; message?: string }
  return err?.code === 'MODULE_NOT_FOUND' && String(err.message).includes(`'${what}'`)
}

/** Why a native module that exists did not load, where the message tells. */
function likelyLoadCause(e: unknown): string {
  const m = String(e instanceof Error ? e.message : e)
  if (/GLIBC_[0-9.]+' not found/.test(m)) return 'this system\'s glibc is older than the module needs (glibc 2.17 or newer)'
  if (/invalid ELF header|wrong ELF class|not a mach-o|file too short|exec format/i.test(m))
    return 'the file is damaged or built for another platform'
  if (/libc\.musl|ld-musl|__libc_start_main|fcntl64/.test(m)) return 'it was built for the other C library (glibc or musl)'
  return 'see the cause below'
}

export function loadNative<T>(): T {
  const { root, manifest } = packageRoot()
  const name = platformName()
  const packageName = `${manifest.napi.binaryName}-${name}`
  const shipped = manifest.napi.targets.map(targetPlatformName)
  const shippedLine = `ringline ${manifest.version} publishes native modules for: ${shipped.join(', ')}.`

  // A source build in the package root wins: it is what `npm install` in a
  // clone made, and it is never shipped.
  const local = join(root, `${manifest.napi.binaryName}.${name}.node`)
  if (existsSync(local)) {
    try {
      return require(local) as T
    } catch (e) {
      fail(
        packageName,
        `Cannot load ringline: the source build ${local} did not load (${firstLineOf(e)}); ${likelyLoadCause(e)}. Rebuild it with \`npm run build:native\`, or delete it to use ${packageName}.`,
        [shippedLine],
        e,
      )
    }
  }

  if (!shipped.includes(name)) {
    fail(
      packageName,
      `Cannot load ringline: it has no native module for ${name} (it looked for the package ${packageName}, which it does not publish). ringline runs on Linux x64 and arm64 (glibc and musl) and on macOS x64 and arm64.`,
      [shippedLine, 'A source build (a clone of ringline, then `npm install` with a Rust toolchain) makes one where the Rust code compiles: Linux and macOS.'],
    )
  }

  let found: string
  try {
    found = (require(`${packageName}/package.json`) as { version: string }).version
  } catch (e) {
    if (!isMissing(e, `${packageName}/package.json`)) throw e
    const others = shipped
      .filter((p) => p !== name)
      .map((p) => `${manifest.napi.binaryName}-${p}`)
      .filter((p) => {
        try {
          require.resolve(`${p}/package.json`)
          return true
        } catch {
          return false
        }
      })
    const cause =
      others.length > 0
        ? `node_modules was installed for another platform (${others.join(', ')} is there); reinstall on this machine: rm -rf node_modules && npm install`
        : `npm leaves it out when optional dependencies are skipped (\`npm install --omit=optional\`, \`omit=optional\` in .npmrc, yarn --ignore-optional, pnpm --no-optional) or when the lockfile was made on another platform; install it with \`npm install ${packageName}@${manifest.version}\`, or reinstall without skipping optional dependencies`
    fail(
      packageName,
      `Cannot load ringline: its native module package ${packageName} is not installed. Likely cause: ${cause}.`,
      [`It looked for ${local} (a source build) and the package ${packageName} from ${__dirname}.`, shippedLine],
      e,
    )
  }
  // A module of another version may not fit this JavaScript: never load it.
  if (found !== manifest.version) {
    fail(
      packageName,
      `Cannot load ringline ${manifest.version}: its native module package ${packageName} is version ${found}, not ${manifest.version}. Install the matching one: npm install ringline@${manifest.version} (which pins ${packageName}@${manifest.version}).`,
      [shippedLine],
    )
  }
  try {
    return require(packageName) as T
  } catch (e) {
    fail(
      packageName,
      `Cannot load ringline: ${packageName} is installed but its native module did not load (${firstLineOf(e)}); likely cause: ${likelyLoadCause(e)}. Reinstall on this machine: rm -rf node_modules && npm install.`,
      [shippedLine],
      e,
    )
  }
}
