import * as Migrator from "@effect/sql/Migrator"
import m0001 from "./0001_ledger.js"
import m0002 from "./0002_stores.js"
import m0003 from "./0003_reconciliation.js"
import m0004 from "./0004_auto_top_up.js"
import m0005 from "./0005_inbox_leases.js"
import m0006 from "./0006_inbox_dead_letters.js"
import m0007 from "./0007_plan_changes.js"
import m0008 from "./0008_refund_reclaim.js"
import m0009 from "./0009_ledger_set_based.js"
import m0010 from "./0010_batch_index_plans.js"
import m0011 from "./0011_refund_carries.js"
import m0012 from "./0012_replay_retention.js"

/**
 * Every migration, in order. They create everything from an empty database and are recorded
 * by the migrator, so running them again does nothing.
 */
export const migrations = Migrator.fromRecord({
  "0001_ledger": m0001,
  "0002_stores": m0002,
  "0003_reconciliation": m0003,
  "0004_auto_top_up": m0004,
  "0005_inbox_leases": m0005,
  "0006_inbox_dead_letters": m0006,
  "0007_plan_changes": m0007,
  "0008_refund_reclaim": m0008,
  "0009_ledger_set_based": m0009,
  "0010_batch_index_plans": m0010,
  "0011_refund_carries": m0011,
  "0012_replay_retention": m0012
})
