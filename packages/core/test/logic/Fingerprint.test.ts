import { assert, describe, it } from "@effect/vitest"
import { Fingerprint } from "@tollgate/core"
import { FastCheck as fc } from "effect"

describe("Fingerprint", () => {
  it("ignores key order, undefined fields and the idempotency key itself; tells requests and operations apart", () => {
    const a = Fingerprint.fingerprint("grant", {
      idempotencyKey: "k1",
      amount: 5,
      projectId: "p",
      expiresAt: undefined
    })
    const b = Fingerprint.fingerprint("grant", { projectId: "p", amount: 5, idempotencyKey: "k2" })
    assert.strictEqual(a, b)
    assert.notStrictEqual(a, Fingerprint.fingerprint("grant", { projectId: "p", amount: 6 }))
    assert.notStrictEqual(a, Fingerprint.fingerprint("hold", { projectId: "p", amount: 5 }))
    assert.notStrictEqual(
      Fingerprint.fingerprint("x", { payees: [{ a: 1 }, { a: 2 }] }),
      Fingerprint.fingerprint("x", { payees: [{ a: 2 }, { a: 1 }] })
    )
  })

  it.prop(
    "equal requests give equal prints and different requests different prints",
    { x: fc.jsonValue(), y: fc.jsonValue() },
    ({ x, y }) => {
      const same = JSON.stringify(x) === JSON.stringify(y)
      if (same) assert.strictEqual(Fingerprint.fingerprint("op", x), Fingerprint.fingerprint("op", y))
      const px = Fingerprint.fingerprint("op", { v: x })
      const py = Fingerprint.fingerprint("op", { v: y })
      if (px === py) assert.deepStrictEqual(canonicalJson(x), canonicalJson(y))
    },
    { fastCheck: { numRuns: 1_000 } }
  )
})

const canonicalJson = (v: unknown): unknown => {
  if (Array.isArray(v)) return v.map(canonicalJson)
  if (v !== null && typeof v === "object") {
    return Object.fromEntries(
      Object.entries(v).filter(([k]) => k !== "idempotencyKey").sort(([a], [b]) => (a < b ? -1 : 1)).map((
        [k, x]
      ) => [k, canonicalJson(x)])
    )
  }
  return v
}
