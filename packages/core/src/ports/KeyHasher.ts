import { Context, Effect } from "effect"

const toHex = (bytes: Uint8Array): string => {
  let out = ""
  for (const byte of bytes) out += byte.toString(16).padStart(2, "0")
  return out
}

/**
 * SHA-256 of an API key, as lowercase hex: the only form of a key that is stored or looked up.
 * The default is Web Crypto, available everywhere but asynchronous (each digest is a round trip to
 * a worker thread); a host with a synchronous digest provides its own (the gateway provides
 * Node's), which the request path feels on every call.
 */
export class KeyHasher extends Context.Reference<KeyHasher>()("@tollgate/core/KeyHasher", {
  defaultValue: () => ({
    sha256Hex: (text: string): Effect.Effect<string> =>
      Effect.map(
        Effect.promise(() => crypto.subtle.digest("SHA-256", new TextEncoder().encode(text))),
        (digest) => toHex(new Uint8Array(digest))
      )
  })
}) {}
