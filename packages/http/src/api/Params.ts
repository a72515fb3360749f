/**
 * Request parts shared by several endpoints. Timestamps everywhere in this API, in queries and
 * in bodies as in responses, are integer milliseconds since the Unix epoch.
 */
import { ApiKeyId, ProjectId } from "@tollgate/core"
import { Schema } from "effect"

/**
 * An integer in the query string. Documented as the integer it denotes (query values are text on
 * the wire anyway), with its bounds.
 */
export const IntegerParam = (options: {
  readonly minimum: number
  readonly maximum?: number
  readonly description: string
  readonly examples?: ReadonlyArray<number>
}) => {
  const bounded = Schema.NumberFromString.pipe(Schema.int(), Schema.greaterThanOrEqualTo(options.minimum))
  return (options.maximum === undefined ? bounded : bounded.pipe(Schema.lessThanOrEqualTo(options.maximum)))
    .annotations({
      jsonSchema: {
        type: "integer",
        minimum: options.minimum,
        ...(options.maximum === undefined ? {} : { maximum: options.maximum }),
        description: options.description,
        ...(options.examples === undefined ? {} : { examples: options.examples })
      }
    })
}

/** Page size of listings. */
export const Limit = IntegerParam({ minimum: 1, maximum: 500, description: "Page size, 1 to 500 (default 50)" })

export const DEFAULT_LIMIT = 50

/** Opaque: the `nextCursor` of the previous page. */
export const Cursor = Schema.String.pipe(Schema.minLength(1), Schema.maxLength(1_000)).annotations({
  description: "The `nextCursor` of the previous page; omit for the first page"
})

/** A query-string timestamp. */
export const EpochMillisParam = (description: string) =>
  IntegerParam({ minimum: 0, description, examples: [1_767_225_600_000] })

export const PageParams = Schema.Struct({
  cursor: Schema.optional(Cursor),
  limit: Schema.optional(Limit)
})

/** The client's key for a retried write: the same key with the same request returns the first result. */
export const IdempotencyKeyValue = Schema.String.pipe(
  Schema.pattern(/^[\x21-\x7e]{1,128}$/)
).annotations({
  description: "1 to 128 visible ASCII characters, unique per intended operation",
  examples: ["2f1c9a7e-grant-42"]
})

export const OptionalIdempotencyKey = Schema.Struct({ "idempotency-key": Schema.optional(IdempotencyKeyValue) })

export const RequiredIdempotencyKey = Schema.Struct({ "idempotency-key": IdempotencyKeyValue })

export const KeyIdPath = Schema.Struct({ id: ApiKeyId.annotations({ description: "The key's id" }) })

export const ProjectIdPath = Schema.Struct({ id: ProjectId.annotations({ description: "The project's id" }) })
