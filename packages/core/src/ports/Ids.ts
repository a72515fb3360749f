import { Context, Effect, Layer } from "effect"

/** Fresh identifiers. Live ones are random UUIDs from the Web Crypto global. */
export class Ids extends Context.Tag("@tollgate/core/Ids")<Ids, {
  readonly next: (prefix: string) => Effect.Effect<string>
}>() {
  static readonly Live = Layer.succeed(Ids, {
    next: (prefix) => Effect.sync(() => `${prefix}_${globalThis.crypto.randomUUID().replaceAll("-", "")}`)
  })
}
