/**
 * Test code run as separate processes (another gateway, a worker to crash), spoken to one JSON
 * line at a time. Every child is killed after the test file at the latest, and on exit of the
 * test process.
 */
import { afterAll } from "@effect/vitest"
import type { ChildProcess } from "node:child_process"
import { spawn } from "node:child_process"
import { dirname, join } from "node:path"
import { createInterface } from "node:readline"
import { fileURLToPath } from "node:url"

const children = new Set<ChildProcess>()
process.on("exit", () => {
  for (const child of children) child.kill("SIGKILL")
})
afterAll(() => {
  for (const child of children) child.kill("SIGKILL")
})

/** Kills `child` with the test process and after the file at the latest. */
export const track = (child: ChildProcess) => {
  children.add(child)
  child.on("exit", () => children.delete(child))
  return child
}

export const waitExit = (child: ChildProcess): Promise<void> =>
  child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((resolve) => child.once("exit", () => resolve()))

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "../../../..")

export interface Worker {
  /** The next line the worker prints (its protocol is one JSON object per line). */
  readonly next: () => Promise<unknown>
  readonly send: (line: string) => void
  /** SIGKILL, and wait until it is gone. */
  readonly kill: () => Promise<void>
}

/**
 * Runs the script at `path` under tsx as a separate process. It is killed after `lifetimeMs`
 * whatever happens, and after the test file at the latest.
 */
export const spawnScript = (path: string, env: Record<string, string>, lifetimeMs = 30_000): Worker => {
  const child = track(
    spawn(process.execPath, ["--import", "tsx", path], {
      cwd: repoRoot,
      env: { ...process.env, ...env },
      stdio: ["pipe", "pipe", "inherit"]
    })
  )
  const lifetime = setTimeout(() => child.kill("SIGKILL"), lifetimeMs)
  child.on("exit", () => clearTimeout(lifetime))
  const lines: Array<string> = []
  const waiting: Array<(line: string | undefined) => void> = []
  let closed = false
  const reader = createInterface({ input: child.stdout! })
  reader.on("line", (line) => {
    const waiter = waiting.shift()
    if (waiter) waiter(line)
    else lines.push(line)
  })
  reader.on("close", () => {
    closed = true
    for (const waiter of waiting.splice(0)) waiter(undefined)
  })
  return {
    next: async () => {
      const line = lines.shift() ?? (closed ? undefined : await new Promise<string | undefined>((r) => waiting.push(r)))
      if (line === undefined) throw new Error(`${path} exited (code ${child.exitCode}, signal ${child.signalCode})`)
      return JSON.parse(line)
    },
    send: (line) => {
      child.stdin!.write(`${line}\n`)
    },
    kill: async () => {
      child.kill("SIGKILL")
      await waitExit(child)
    }
  }
}
