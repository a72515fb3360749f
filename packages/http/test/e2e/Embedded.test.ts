import { afterAll } from "@effect/vitest"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { embeddedStack } from "../../src/Stack.js"
import { gatewayE2E } from "./GatewayE2E.js"

const dataDir = mkdtempSync(join(tmpdir(), "tollgate-e2e-"))
afterAll(() => rmSync(dataDir, { recursive: true, force: true }))

gatewayE2E({ name: "embedded: PGlite and the in-process limiter", layer: () => embeddedStack(join(dataDir, "db")) })
