// A minimal npm registry on 127.0.0.1 for the release check: it serves the
// packuments and tarballs of the packages it is given and answers 404 for
// every other name, so an install from it sees exactly what a user of the
// public registry would once those packages are published, and nothing
// else (no package from the network can stand in for a missing one).
'use strict'
const http = require('node:http')
const crypto = require('node:crypto')
const fs = require('node:fs')

/**
 * packages: [{ manifest, tarball }] (manifest: the package.json inside the
 * tarball; tarball: its path). Resolves { url, close() }.
 */
function startRegistry(packages) {
  const byName = new Map()
  const files = new Map()
  for (const { manifest, tarball } of packages) {
    const data = fs.readFileSync(tarball)
    const file = `${manifest.name}-${manifest.version}.tgz`
    files.set(`/${manifest.name}/-/${file}`, data)
    const doc = byName.get(manifest.name) ?? { name: manifest.name, 'dist-tags': {}, versions: {} }
    doc.versions[manifest.version] = {
      ...manifest,
      _file: file,
      dist: {
        shasum: crypto.createHash('sha1').update(data).digest('hex'),
        integrity: `sha512-${crypto.createHash('sha512').update(data).digest('base64')}`,
      },
    }
    doc['dist-tags'].latest = manifest.version
    byName.set(manifest.name, doc)
  }
  const requests = []
  const server = http.createServer((req, res) => {
    const url = decodeURIComponent(new URL(req.url, 'http://x').pathname)
    requests.push(`${req.method} ${url}`)
    const tgz = files.get(url)
    if (tgz !== undefined) {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': tgz.length })
      return res.end(tgz)
    }
    const doc = byName.get(url.slice(1))
    if (doc === undefined) {
      res.writeHead(404, { 'content-type': 'application/json' })
      return res.end(JSON.stringify({ error: 'not_found' }))
    }
    const base = `http://${req.headers.host}`
    const versions = {}
    for (const [v, m] of Object.entries(doc.versions)) {
      const { _file, ...rest } = m
      versions[v] = { ...rest, dist: { ...m.dist, tarball: `${base}/${doc.name}/-/${_file}` } }
    }
    const body = JSON.stringify({ ...doc, versions })
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(body)
  })
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      resolve({
        url: `http://127.0.0.1:${port}/`,
        requests,
        close: () => new Promise((r) => server.close(() => r())),
      })
    })
  })
}

module.exports = { startRegistry }
