export * from "./ReadCache.js"
