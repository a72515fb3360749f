import { Schema } from "effect"
import { BasisPoints } from "./Credits.js"
import { DatasetId, ProjectId } from "./Ids.js"

/** A dataset earns its contributor `shareBps` of every captured call that queries it. */
export class Dataset extends Schema.Class<Dataset>("Dataset")({
  id: DatasetId,
  name: Schema.NonEmptyTrimmedString,
  contributor: ProjectId,
  shareBps: BasisPoints
}) {}
