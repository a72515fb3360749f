/** Runs the demo upstream in its own process: `tsx packages/http/src/demo/upstream.ts [port]`; prints its URL. */
import { startDemoUpstream } from "./DemoUpstream.js"

const port = Number(process.argv[2] ?? process.env["PORT"] ?? "4000")
startDemoUpstream(port).then(({ url }) => {
  process.stdout.write(`${url}\n`)
}, (error: unknown) => {
  process.stderr.write(`demo upstream: ${String(error)}\n`)
  process.exit(1)
})
