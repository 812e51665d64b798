// The command-line flags of files.ts, net.ts and http.ts, in one place so that all.ts
// (`npm run bench`: both benchmarks in turn) can hand each flag to the
// benchmark(s) that know it. `known`: flags without a value; `valued`: flags
// taking one (`--flag=value` or `--flag value`).

export interface FlagSpec {
  known: string[]
  valued: string[]
}

/** Flags both benchmarks take. */
const COMMON: FlagSpec = {
  known: ['quick', 'help'],
  valued: ['seconds', 'duration', 'warmup', 'only', 'backends', 'json'],
}

export const FILES_FLAGS: FlagSpec = {
  known: [...COMMON.known, 'no-fio', 'no-bun', 'memory', 'all'],
  valued: [...COMMON.valued, 'memory-ops', 'depths', 'data-dir', 'direct-size', 'cache-size', 'bun', 'bun-dir'],
}

export const NET_FLAGS: FlagSpec = {
  known: [...COMMON.known, 'no-loop', 'soak', 'no-bun'],
  valued: [...COMMON.valued, 'depth', 'repeat', 'soak-seconds', 'soak-warmup', 'soak-every', 'bun', 'bun-dir'],
}

export const HTTP_FLAGS: FlagSpec = {
  known: [...COMMON.known, 'no-loop'],
  valued: [...COMMON.valued, 'repeat', 'conns', 'big-conns', 'threads', 'wrk'],
}
