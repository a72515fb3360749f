import { MemoryLedgerLive } from "../../src/memory/MemoryLedger.js"
import { ledgerContract } from "../contracts/LedgerContract.js"
import { ledgerProperties } from "../contracts/LedgerProperties.js"

ledgerContract("memory", MemoryLedgerLive)
ledgerProperties("memory", MemoryLedgerLive, { numRuns: 1_000 })
