import { Schema } from "effect"
import { EpochMillis } from "./Credits.js"
import { PlanId, ProjectId } from "./Ids.js"

/** A tenant. It owns one wallet and holds a plan at a fixed version. */
export class Project extends Schema.Class<Project>("Project")({
  id: ProjectId,
  name: Schema.NonEmptyTrimmedString,
  planId: PlanId,
  planVersion: Schema.Int.pipe(Schema.positive()),
  createdAt: EpochMillis
}) {}
