import { Ids } from "@tollgate/core"
import { Layer } from "effect"
import { MemoryAutoTopUpStoreLive } from "./MemoryAutoTopUpStore.js"
import { MemoryBillingInboxLive } from "./MemoryBillingInbox.js"
import { MemoryCatalogLive } from "./MemoryCatalog.js"
import { MemoryKeyStoreLive } from "./MemoryKeyStore.js"
import { MemoryLedgerLive } from "./MemoryLedger.js"
import { MemoryOutboxLive } from "./MemoryOutbox.js"
import { MemoryPlanChangeStoreLive } from "./MemoryPlanChangeStore.js"
import { MemoryProjectStoreLive } from "./MemoryProjectStore.js"
import { MemoryRateLimiterLive } from "./MemoryRateLimiter.js"
import { MemoryReconciliationStoreLive } from "./MemoryReconciliationStore.js"
import { MemoryUsageLogLive } from "./MemoryUsageLog.js"

/** Every port in process memory, fresh each time the layer is built. */
export const MemoryStackLive = Layer.mergeAll(
  MemoryAutoTopUpStoreLive,
  MemoryBillingInboxLive,
  MemoryCatalogLive,
  MemoryKeyStoreLive,
  MemoryLedgerLive,
  MemoryOutboxLive,
  MemoryPlanChangeStoreLive,
  MemoryProjectStoreLive,
  MemoryRateLimiterLive,
  MemoryReconciliationStoreLive,
  MemoryUsageLogLive,
  Ids.Live
)
