import { Context, Layer } from "effect"

/** What a credit costs and how many credits one top-up may buy. */
export interface BillingSettingsShape {
  /** Price of one credit in cents; a top-up is charged `ceil(credits × creditPriceCents)`. */
  readonly creditPriceCents: number
  readonly minTopUpCredits: number
  readonly maxTopUpCredits: number
}

export const defaultBillingSettings: BillingSettingsShape = {
  creditPriceCents: 1,
  minTopUpCredits: 100,
  maxTopUpCredits: 10_000_000
}

export class BillingSettings extends Context.Tag("@tollgate/http/BillingSettings")<
  BillingSettings,
  BillingSettingsShape
>() {
  static readonly layer = (settings: Partial<BillingSettingsShape> = {}): Layer.Layer<BillingSettings> =>
    Layer.succeed(BillingSettings, { ...defaultBillingSettings, ...settings })
}
