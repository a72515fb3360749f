import { MemoryUsageLogLive } from "../../src/memory/MemoryUsageLog.js"
import { usageLogContract } from "../contracts/UsageLogContract.js"

usageLogContract("memory", MemoryUsageLogLive)
