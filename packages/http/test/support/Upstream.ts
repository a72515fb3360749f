/** The demo upstream in a process of its own, as a real upstream is. */
import { spawn } from "node:child_process"
import { dirname, join } from "node:path"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"

const script = join(dirname(fileURLToPath(import.meta.url)), "../../src/demo/upstream.ts")

export interface UpstreamProcess {
  readonly url: string
  readonly pid: number
  readonly stop: () => Promise<void>
}

/** Starts the upstream on a free port; the caller stops it (in its `afterAll`). A start that fails kills it. */
export const startUpstreamProcess = (): Promise<UpstreamProcess> =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", script, "0"], {
      stdio: ["ignore", "pipe", "inherit"]
    })
    const stop = () =>
      new Promise<void>((done) => {
        if (child.exitCode !== null || child.signalCode !== null) return done()
        child.once("exit", () => done())
        child.kill("SIGTERM")
      })
    const timer = setTimeout(() => {
      child.kill("SIGKILL")
      reject(new Error("the upstream did not start within 20 s"))
    }, 20_000)
    child.once("exit", (code) => reject(new Error(`the upstream exited with ${code}`)))
    createInterface({ input: child.stdout! }).once("line", (line) => {
      clearTimeout(timer)
      resolve({ url: line.trim(), pid: child.pid!, stop })
    })
  })
