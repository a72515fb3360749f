/**
 * The demo upstream: a small dataset query service the embedded default puts behind the gateway,
 * also the upstream of the end-to-end tests and the gateway benchmark (run it in its own process
 * with `tsx packages/http/src/demo/upstream.ts [port]`). Plain `node:http`: it stands for any
 * service a platform runs, and knows nothing of Tollgate beyond the identity headers it echoes.
 *
 * - `GET  /api/search?q=…`                 search results (category search)
 * - `GET  /api/datasets/<id>/rows?limit=n` rows of a dataset (category query); reports its cost in
 *   `x-units-used` (one unit per 10 rows, at least one)
 * - `POST /api/export`                     a CSV export (category export), `?rows=n`
 * - `GET  /api/echo`, `POST /api/echo`     what arrived: method, path, headers, body size
 * - `GET  /api/bytes?mb=n`                 n MiB streamed in 64 KiB chunks
 * - `GET  /api/status/<code>`              answers with that status
 * - `GET  /api/slow?ms=n`                  answers after n ms
 *
 * A mount segment before `/api` is ignored (`/b/api/search` is `/api/search`), so the same
 * service can stand behind several route prefixes.
 */
import { createHash } from "node:crypto"
import type { IncomingMessage, Server, ServerResponse } from "node:http"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"

const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
  const text = JSON.stringify(body)
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    ...headers
  })
  res.end(text)
}

const identity = (req: IncomingMessage) =>
  Object.fromEntries(Object.entries(req.headers).filter(([name]) => name.startsWith("x-tollgate-")))

const chunk = Buffer.alloc(64 * 1024, "tollgate ")

const handle = (req: IncomingMessage, res: ServerResponse) => {
  const url = new URL(req.url ?? "/", "http://upstream")
  // a mount segment before /api (`/b/api/…`) is ignored, so one service can sit behind several prefixes
  const path = url.pathname.replace(/^\/[^/]+(?=\/api\/)/, "")
  const method = req.method ?? "GET"

  if (path === "/api/search") {
    const q = url.searchParams.get("q") ?? ""
    return json(res, 200, {
      query: q,
      results: [
        { dataset: "weather-eu", title: `Observations matching "${q}"` },
        { dataset: "weather-eu", title: "Daily temperature summaries" }
      ]
    })
  }

  const rows = /^\/api\/datasets\/([^/]+)\/rows$/.exec(path)
  if (rows !== null) {
    const limit = Math.min(1_000, Math.max(1, Number(url.searchParams.get("limit") ?? "10") || 10))
    const units = Math.max(1, Math.ceil(limit / 10))
    return json(res, 200, {
      dataset: decodeURIComponent(rows[1]!),
      rows: Array.from({ length: limit }, (_, i) => ({ station: `ST${100 + i}`, temperatureC: 10 + (i % 15) })),
      units
    }, { "x-units-used": String(units) })
  }

  if (path === "/api/export" && method === "POST") {
    req.resume()
    const count = Math.min(100_000, Math.max(1, Number(url.searchParams.get("rows") ?? "100") || 100))
    res.writeHead(200, { "content-type": "text/csv" })
    res.write("station,temperature_c\n")
    for (let i = 0; i < count; i++) res.write(`ST${i},${10 + (i % 15)}\n`)
    return res.end()
  }

  if (path === "/api/echo") {
    const hash = createHash("sha256")
    let bytes = 0
    req.on("data", (c: Buffer) => {
      bytes += c.length
      hash.update(c)
    })
    req.on("end", () =>
      json(res, 200, {
        method,
        path,
        query: Object.fromEntries(url.searchParams),
        headers: req.headers,
        identity: identity(req),
        bytes,
        sha256: hash.digest("hex")
      }))
    return
  }

  if (path === "/api/bytes") {
    const total = Math.min(1024, Math.max(0, Number(url.searchParams.get("mb") ?? "1") || 0)) * 1024 * 1024
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": total })
    let sent = 0
    const pump = () => {
      while (sent < total) {
        const n = Math.min(chunk.length, total - sent)
        sent += n
        if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return void res.once("drain", pump)
      }
      res.end()
    }
    return pump()
  }

  const status = /^\/api\/status\/(\d{3})$/.exec(path)
  if (status !== null) {
    req.resume()
    return json(res, Number(status[1]), { status: Number(status[1]) })
  }

  if (path === "/api/slow") {
    req.resume()
    const ms = Math.min(600_000, Math.max(0, Number(url.searchParams.get("ms") ?? "1000") || 0))
    const timer = setTimeout(() => json(res, 200, { waitedMs: ms }), ms)
    res.once("close", () => clearTimeout(timer))
    return
  }

  req.resume()
  return json(res, 404, { error: "not found", path })
}

/** Starts the demo upstream on `host:port` (port 0: any free port) and returns it with its URL. */
export const startDemoUpstream = (port = 0, host = "127.0.0.1"): Promise<{ server: Server; url: string }> =>
  new Promise((resolve, reject) => {
    const server = createServer({ keepAliveTimeout: 65_000 }, handle)
    server.once("error", reject)
    server.listen(port, host, () => {
      const address = server.address() as AddressInfo
      resolve({ server, url: `http://${host}:${address.port}` })
    })
  })
