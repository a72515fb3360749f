import { assert, describe, it } from "@effect/vitest"
import type { PlanId, ProjectId } from "@tollgate/core"
import { Project, ProjectStore } from "@tollgate/core"
import type { Layer } from "effect"
import { Effect, Option } from "effect"
import { projectId, unique } from "./fixtures.js"

const project = (id: ProjectId, fields: Partial<ConstructorParameters<typeof Project>[0]> = {}): Project =>
  new Project({ id, name: "Acme", planId: "plan_starter" as PlanId, planVersion: 1, createdAt: 1_000, ...fields })

/**
 * The ProjectStore contract: every adapter must pass it. Each test provides `layer` itself and
 * expects an empty store.
 */
export const projectStoreContract = (name: string, layer: Layer.Layer<ProjectStore, unknown>) =>
  describe(`ProjectStore contract: ${name}`, () => {
    const run = <A, E>(body: Effect.Effect<A, E, ProjectStore>) => Effect.provide(body, layer)

    it.effect("a put project is read back whole; an unknown one is not found", () =>
      run(Effect.gen(function*() {
        const store = yield* ProjectStore
        const p = project(projectId())
        yield* store.put(p)
        const found = yield* store.get(p.id)
        assert.deepStrictEqual(found, Option.some(p))
        assert.instanceOf(Option.getOrThrow(found), Project)
        assert.isTrue(Option.isNone(yield* store.get(projectId())))
      })))

    it.effect("a put replaces the project: a plan change moves it to the new plan and version", () =>
      run(Effect.gen(function*() {
        const store = yield* ProjectStore
        const id = projectId()
        yield* store.put(project(id))
        const moved = project(id, { planId: "plan_pro" as PlanId, planVersion: 3, name: "Acme Inc" })
        yield* store.put(moved)
        assert.deepStrictEqual(yield* store.get(id), Option.some(moved))
        assert.deepStrictEqual(yield* store.list, [moved])
      })))

    it.effect("projects are listed oldest first, equal creation times by id", () =>
      run(Effect.gen(function*() {
        const store = yield* ProjectStore
        assert.deepStrictEqual(yield* store.list, [])
        const base = unique("prj")
        const late = project(`${base}_a` as ProjectId, { createdAt: 3_000 })
        const tieB = project(`${base}_c` as ProjectId, { createdAt: 2_000 })
        const tieA = project(`${base}_b` as ProjectId, { createdAt: 2_000 })
        const early = project(`${base}_d` as ProjectId, { createdAt: 1_000 })
        yield* Effect.forEach([late, tieB, tieA, early], (p) => store.put(p))
        assert.deepStrictEqual((yield* store.list).map((p) => p.id), [early.id, tieA.id, tieB.id, late.id])
      })))
  })
