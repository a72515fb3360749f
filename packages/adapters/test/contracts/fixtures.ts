import type { Credits, IdempotencyKey, ProjectId } from "@tollgate/core"

let counter = 0
/** A fresh id per call, so suites sharing one store never collide; ids sort in the order they were made. */
export const unique = (prefix: string): string =>
  `${prefix}_${Date.now().toString(36).padStart(9, "0")}_${(++counter).toString(36).padStart(6, "0")}_${
    Math.random().toString(36).slice(2, 8)
  }`

export const projectId = (): ProjectId => unique("prj") as ProjectId
export const key = (label = "k"): IdempotencyKey => unique(label) as IdempotencyKey
export const cr = (n: number): Credits => n as Credits
