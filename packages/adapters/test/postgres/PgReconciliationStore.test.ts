import { describe } from "@effect/vitest"
import { ReconciliationStore } from "@tollgate/core"
import { makePgReconciliationStore } from "../../src/postgres/PgReconciliationStore.js"
import { reconciliationStoreContract } from "../contracts/ReconciliationStoreContract.js"
import { pgliteTestClient, postgresAvailable, postgresTestClient, testDatabase } from "../support/Databases.js"

const pg = testDatabase(postgresTestClient)
const lite = testDatabase(pgliteTestClient)

describe.skipIf(!postgresAvailable)("PostgreSQL reconciliation store", () => {
  reconciliationStoreContract("postgres", pg.perTest(ReconciliationStore, makePgReconciliationStore))
})

describe("PGlite reconciliation store", () => {
  reconciliationStoreContract("pglite", lite.perTest(ReconciliationStore, makePgReconciliationStore))
})
