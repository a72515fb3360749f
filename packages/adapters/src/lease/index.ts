export * from "./LeaseConfig.js"
export * from "./LeasedLedger.js"
