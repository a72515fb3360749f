import { KeyHasher } from "@tollgate/core"
import { Effect, Layer } from "effect"
import { createHash } from "node:crypto"

/** SHA-256 with Node's synchronous digest: no thread hop on the request path. */
export const NodeKeyHasherLive = Layer.succeed(KeyHasher, {
  sha256Hex: (text: string) => Effect.sync(() => createHash("sha256").update(text).digest("hex"))
})
