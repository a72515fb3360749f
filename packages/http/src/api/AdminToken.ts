import { Context, Layer } from "effect"
import type { Redacted } from "effect"

/**
 * The operator's bearer token for `/admin`. It is a realm of its own: an API key never opens
 * the admin surface, and this token never opens the consumer surface.
 */
export class AdminToken extends Context.Tag("@tollgate/http/AdminToken")<AdminToken, Redacted.Redacted<string>>() {
  static readonly layer = (token: Redacted.Redacted<string>): Layer.Layer<AdminToken> =>
    Layer.succeed(AdminToken, token)
}
