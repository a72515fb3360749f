import { Schema } from "effect"

const Id = <B extends string>(brand: B) => Schema.NonEmptyTrimmedString.pipe(Schema.maxLength(200), Schema.brand(brand))

export const ProjectId = Id("ProjectId")
export type ProjectId = typeof ProjectId.Type

export const ApiKeyId = Id("ApiKeyId")
export type ApiKeyId = typeof ApiKeyId.Type

export const PlanId = Id("PlanId")
export type PlanId = typeof PlanId.Type

export const RouteId = Id("RouteId")
export type RouteId = typeof RouteId.Type

export const DatasetId = Id("DatasetId")
export type DatasetId = typeof DatasetId.Type

export const GrantId = Id("GrantId")
export type GrantId = typeof GrantId.Type

export const HoldId = Id("HoldId")
export type HoldId = typeof HoldId.Type

export const TransactionId = Id("TransactionId")
export type TransactionId = typeof TransactionId.Type

export const RequestId = Id("RequestId")
export type RequestId = typeof RequestId.Type

export const EventId = Id("EventId")
export type EventId = typeof EventId.Type

export const MessageId = Id("MessageId")
export type MessageId = typeof MessageId.Type

/** Every ledger write carries one; the same key with the same request returns the first result. */
export const IdempotencyKey = Id("IdempotencyKey")
export type IdempotencyKey = typeof IdempotencyKey.Type

/** A route category ("search", "query", "export", …): what plans entitle. */
export const Category = Schema.String.pipe(Schema.pattern(/^[a-z][a-z0-9_-]{0,63}$/), Schema.brand("Category"))
export type Category = typeof Category.Type
