import { Context, Layer } from "effect"
import type { Option, Redacted } from "effect"

/**
 * Signing secrets of the webhook endpoints. Stripe's is optional (without it `/webhooks/stripe`
 * answers 503); the sandbox provider's always exists, since the embedded default uses it.
 * Both are verified with Stripe's signature scheme.
 */
export interface WebhookSecretsShape {
  readonly stripe: Option.Option<Redacted.Redacted<string>>
  readonly sandbox: Redacted.Redacted<string>
}

export class WebhookSecrets
  extends Context.Tag("@tollgate/http/WebhookSecrets")<WebhookSecrets, WebhookSecretsShape>()
{
  static readonly layer = (secrets: WebhookSecretsShape): Layer.Layer<WebhookSecrets> =>
    Layer.succeed(WebhookSecrets, secrets)
}
