import { MemoryLedgerLive } from "../../src/memory/MemoryLedger.js"
import { ledgerContract } from "../contracts/LedgerContract.js"
import { ledgerProperties } from "../contracts/LedgerProperties.js"
import { ledgerRefundContract } from "../contracts/LedgerRefunds.js"

ledgerContract("memory", MemoryLedgerLive)
ledgerProperties("memory", MemoryLedgerLive, { numRuns: 1_000 })
ledgerRefundContract("memory", MemoryLedgerLive, { numRuns: 300 })
