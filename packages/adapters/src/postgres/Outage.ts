import type { SqlError } from "@effect/sql/SqlError"
import type { ParseResult } from "effect"
import { Effect, Predicate } from "effect"

const sqlState = (cause: unknown): string =>
  Predicate.hasProperty(cause, "code") && typeof cause.code === "string" ? ` (SQLSTATE ${cause.code})` : ""

/**
 * Turns a store's SQL failures and undecodable rows into its port's outage error, described
 * without the statement's values (a row may carry a key's hash). A row that does not decode
 * means the table was written by something else: an outage too, described as `unreadable`.
 */
export const outage =
  <U>(unavailable: (message: string) => U, unreadable: string) =>
  <A, E, R>(effect: Effect.Effect<A, E | SqlError | ParseResult.ParseError, R>) =>
    Effect.catchIf(
      effect,
      (e): e is SqlError | ParseResult.ParseError =>
        Predicate.isTagged(e, "SqlError") || Predicate.isTagged(e, "ParseError"),
      (e) => Effect.fail(unavailable(e._tag === "SqlError" ? `${e.message}${sqlState(e.cause)}` : unreadable))
    )
