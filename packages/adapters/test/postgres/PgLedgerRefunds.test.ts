import { describe } from "@effect/vitest"
import { Ledger } from "@tollgate/core"
import { makePgLedger } from "../../src/postgres/PgLedger.js"
import { ledgerRefundContract } from "../contracts/LedgerRefunds.js"
import { pgliteTestClient, postgresAvailable, postgresTestClient, testDatabase } from "../support/Databases.js"

// The same SQL (migration 0008) on PostgreSQL and on PGlite, checked against core `Reclaim`.
describe.skipIf(!postgresAvailable)("PostgreSQL ledger refunds", () => {
  ledgerRefundContract("postgres", testDatabase(postgresTestClient).perTest(Ledger, makePgLedger), { numRuns: 40 })
})

describe("PGlite ledger refunds", () => {
  ledgerRefundContract("pglite", testDatabase(pgliteTestClient).perTest(Ledger, makePgLedger), { numRuns: 25 })
})
