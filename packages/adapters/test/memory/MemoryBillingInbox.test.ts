import { MemoryBillingInboxLive } from "../../src/memory/MemoryBillingInbox.js"
import { billingInboxContract } from "../contracts/BillingInboxContract.js"

billingInboxContract("memory", MemoryBillingInboxLive)
