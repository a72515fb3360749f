import { MemoryPlanChangeStoreLive } from "../../src/memory/MemoryPlanChangeStore.js"
import { planChangeStoreContract } from "../contracts/PlanChangeStoreContract.js"

planChangeStoreContract("memory", MemoryPlanChangeStoreLive)
