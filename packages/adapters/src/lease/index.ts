export * from "./LeaseConfig.js"
export * from "./LeasedLedger.js"
export * from "./LeaseKeys.js"
