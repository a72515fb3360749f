export * from "./StripeConfig.js"
export * from "./StripePaymentProvider.js"
