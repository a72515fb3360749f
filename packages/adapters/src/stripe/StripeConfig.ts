import { UrlProtocol } from "@tollgate/core"
import { Config, Option, Redacted } from "effect"

const isSecretKey = (key: string): boolean => /^(sk|rk)_(test|live)_[A-Za-z0-9]+$/.test(key)

const isHttpUrl = UrlProtocol.isHttpUrl

/**
 * `STRIPE_SECRET_KEY` (a secret or restricted key, `sk_…` / `rk_…`), `STRIPE_CURRENCY` (default
 * `usd`), `STRIPE_TIMEOUT_MS` (default 20000: the longest one Stripe call may take, per attempt),
 * and `STRIPE_API_HOST` / `STRIPE_API_PORT` / `STRIPE_API_PROTOCOL` to point the SDK at a
 * Stripe-compatible server instead of api.stripe.com. `TOLLGATE_PUBLIC_URL` (default
 * `http://localhost:8080`) is where Checkout sends the customer back.
 */
export const StripeConfig = Config.all({
  stripe: Config.all({
    // read as a string, validated, then redacted: validating a `Config.redacted` loses the
    // variable's name from the error (it reports `STRIPE`); the message never contains the value
    secretKey: Config.string("SECRET_KEY").pipe(
      Config.validate({
        message: "Expected a Stripe secret key (sk_test_…, sk_live_…, rk_test_… or rk_live_…)",
        validation: isSecretKey
      }),
      Config.map(Redacted.make)
    ),
    currency: Config.string("CURRENCY").pipe(
      Config.validate({
        message: "Expected a lowercase ISO currency code such as usd",
        validation: (c) => /^[a-z]{3}$/.test(c)
      }),
      Config.withDefault("usd")
    ),
    timeoutMs: Config.integer("TIMEOUT_MS").pipe(
      Config.validate({ message: "Expected an integer from 1 to 120000", validation: (n) => n >= 1 && n <= 120_000 }),
      Config.withDefault(20_000)
    ),
    apiHost: Config.option(Config.string("API_HOST")),
    apiPort: Config.option(Config.port("API_PORT")),
    apiProtocol: Config.option(Config.literal("http", "https")("API_PROTOCOL"))
  }).pipe(Config.nested("STRIPE")),
  publicUrl: Config.string("TOLLGATE_PUBLIC_URL").pipe(
    Config.validate({ message: "Expected an http:// or https:// URL", validation: isHttpUrl }),
    Config.withDefault("http://localhost:8080"),
    Config.map((url) => url.replace(/\/+$/, ""))
  )
})

export type StripeConfig = Config.Config.Success<typeof StripeConfig>

/** The SDK's own settings for a config: the key, where the API is, and the per-call limits. */
export const stripeClientConfig = (config: StripeConfig["stripe"]) => ({
  timeout: config.timeoutMs,
  maxNetworkRetries: 2,
  ...Option.match(config.apiHost, { onNone: () => ({}), onSome: (host) => ({ host }) }),
  ...Option.match(config.apiPort, { onNone: () => ({}), onSome: (port) => ({ port }) }),
  ...Option.match(config.apiProtocol, { onNone: () => ({}), onSome: (protocol) => ({ protocol }) })
})
