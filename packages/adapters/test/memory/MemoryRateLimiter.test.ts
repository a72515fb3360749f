import { MemoryRateLimiterLive } from "../../src/memory/MemoryRateLimiter.js"
import { rateLimiterContract } from "../contracts/RateLimiterContract.js"

rateLimiterContract("memory", MemoryRateLimiterLive, { numRuns: 1_000 })
