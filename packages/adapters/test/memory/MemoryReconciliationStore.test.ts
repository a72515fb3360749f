import { MemoryReconciliationStoreLive } from "../../src/memory/MemoryReconciliationStore.js"
import { reconciliationStoreContract } from "../contracts/ReconciliationStoreContract.js"

reconciliationStoreContract("memory", MemoryReconciliationStoreLive)
