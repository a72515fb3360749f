import { assert, describe, it } from "@effect/vitest"
import { Effect, FastCheck as fc, Option } from "effect"
import type { KeyEnvironment } from "../../src/domain/ApiKey.js"
import {
  crc32,
  formatApiKey,
  generateApiKey,
  hashApiKey,
  keyPrefix,
  parseApiKey
} from "../../src/logic/ApiKeyFormat.js"

const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
const SHAPE = /^tg_(live|test)_[0-9A-Za-z]{28}$/

// Independent of the module's encoder: decode by hand.
const decode62 = (s: string): bigint => [...s].reduce((n, ch) => n * 62n + BigInt(ALPHABET.indexOf(ch)), 0n)
const encode62 = (n: bigint, width: number): string => {
  let out = ""
  for (let i = 0; i < width; i++, n /= 62n) out = ALPHABET.charAt(Number(n % 62n)) + out
  return out
}
const bytesValue = (bytes: Uint8Array): bigint => BigInt(`0x${Buffer.from(bytes).toString("hex") || "0"}`)
const withChecksum = (payload: string) => payload + encode62(BigInt(crc32(payload)), 6)

const env = fc.constantFrom<KeyEnvironment>("live", "test")
const bytes16 = fc.uint8Array({ minLength: 16, maxLength: 16 })
const runs = { fastCheck: { numRuns: 1000 } }

describe("ApiKeyFormat", () => {
  it("crc32 matches the IEEE check values", () => {
    assert.strictEqual(crc32("123456789"), 0xcbf43926)
    assert.strictEqual(crc32(""), 0)
    assert.strictEqual(crc32("The quick brown fox jumps over the lazy dog"), 0x414fa339)
  })

  it.effect("hashApiKey is lowercase hex SHA-256", () =>
    Effect.gen(function*() {
      assert.strictEqual(yield* hashApiKey("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
      assert.strictEqual(yield* hashApiKey(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    }))

  it.effect("generateApiKey returns the secret, its display prefix and its hash", () =>
    Effect.gen(function*() {
      const key = yield* generateApiKey("live")
      assert.match(key.secret, /^tg_live_[0-9A-Za-z]{28}$/)
      assert.strictEqual(key.environment, "live")
      assert.strictEqual(key.prefix, key.secret.slice(0, 12))
      assert.match(key.prefix, /^tg_live_[0-9A-Za-z]{4}$/)
      assert.strictEqual(key.hash, yield* hashApiKey(key.secret))
      assert.match(key.hash, /^[0-9a-f]{64}$/)
      const test = yield* generateApiKey("test")
      assert.match(test.secret, /^tg_test_/)
      assert.deepStrictEqual(
        parseApiKey(test.secret),
        Option.some({ environment: "test" as const, secret: test.secret })
      )
    }))

  it("keyPrefix keeps the first 12 characters", () => {
    assert.strictEqual(keyPrefix("tg_test_AbCdEfGh"), "tg_test_AbCd")
  })

  it("formats the extremes of 128 bits with a fixed width", () => {
    const zeros = formatApiKey("live", new Uint8Array(16))
    assert.strictEqual(zeros.slice(0, 30), "tg_live_" + "0".repeat(22))
    const ones = formatApiKey("test", new Uint8Array(16).fill(255))
    assert.strictEqual(decode62(ones.slice(8, 30)), (1n << 128n) - 1n)
    assert.isTrue(Option.isSome(parseApiKey(zeros)))
    assert.isTrue(Option.isSome(parseApiKey(ones)))
  })

  it("rejects malformed candidates", () => {
    const valid = formatApiKey("live", new Uint8Array(16).fill(7))
    const rejected = [
      "",
      "tg_live_",
      valid.slice(0, -1),
      valid + "0",
      ` ${valid.slice(1)}`,
      valid.replace("tg_live_", "tg_prod_"),
      valid.replace("tg_live_", "TG_LIVE_"),
      valid.slice(0, 20) + "-" + valid.slice(21),
      // A 22-digit body above 2^128 - 1 with a valid checksum is not a key we could have issued.
      withChecksum("tg_live_" + encode62(1n << 128n, 22)),
      withChecksum("tg_test_" + "z".repeat(22))
    ]
    for (const candidate of rejected) assert.isTrue(Option.isNone(parseApiKey(candidate)), candidate)
    assert.isTrue(Option.isSome(parseApiKey(withChecksum("tg_live_" + encode62((1n << 128n) - 1n, 22)))))
  })

  it("rejects characters outside the alphabet that share a low byte with one inside it", () => {
    const valid = formatApiKey("test", new Uint8Array(16).fill(42))
    for (let i = 0; i < valid.length; i++) {
      for (const shift of [0x80, 0x100, 0x4100]) {
        const mutated = valid.slice(0, i) + String.fromCharCode(valid.charCodeAt(i) + shift) + valid.slice(i + 1)
        assert.isTrue(Option.isNone(parseApiKey(mutated)), mutated)
      }
    }
  })

  it("rejects huge inputs without scanning them", () => {
    const huge = "tg_live_" + "a".repeat(50_000_000)
    const start = performance.now()
    for (let i = 0; i < 1000; i++) assert.isTrue(Option.isNone(parseApiKey(huge)))
    assert.isBelow(performance.now() - start, 100)
  })

  it.prop("a formatted key parses back, and its body encodes the bytes", [env, bytes16], ([environment, bytes]) => {
    const secret = formatApiKey(environment, bytes)
    assert.match(secret, SHAPE)
    assert.deepStrictEqual(parseApiKey(secret), Option.some({ environment, secret }))
    assert.strictEqual(decode62(secret.slice(8, 30)), bytesValue(bytes))
    assert.strictEqual(decode62(secret.slice(30)), BigInt(crc32(secret.slice(0, 30))))
  }, runs)

  it.live.prop(
    "every generated key parses and two generated keys differ",
    [env, env],
    ([e1, e2]) =>
      Effect.gen(function*() {
        const a = yield* generateApiKey(e1)
        const b = yield* generateApiKey(e2)
        assert.notStrictEqual(a.secret, b.secret)
        assert.notStrictEqual(a.hash, b.hash)
        assert.deepStrictEqual(parseApiKey(a.secret), Option.some({ environment: e1, secret: a.secret }))
        assert.deepStrictEqual(parseApiKey(b.secret), Option.some({ environment: e2, secret: b.secret }))
      }),
    runs
  )

  it.prop(
    "any single-character substitution is rejected",
    [
      env,
      bytes16,
      fc.nat(35),
      fc.oneof(
        fc.constantFrom(...ALPHABET, "_"),
        fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c))
      )
    ],
    ([environment, bytes, index, replacement]) => {
      const secret = formatApiKey(environment, bytes)
      if (secret[index] === replacement) return
      const mutated = secret.slice(0, index) + replacement + secret.slice(index + 1)
      assert.isTrue(Option.isNone(parseApiKey(mutated)), mutated)
    },
    runs
  )

  it.prop("any adjacent transposition is rejected", [env, bytes16, fc.nat(34)], ([environment, bytes, index]) => {
    const secret = formatApiKey(environment, bytes)
    const [a, b] = [secret.charAt(index), secret.charAt(index + 1)]
    if (a === b) return
    const mutated = secret.slice(0, index) + b + a + secret.slice(index + 2)
    assert.isTrue(Option.isNone(parseApiKey(mutated)), mutated)
  }, runs)

  it.prop(
    "arbitrary strings never throw, and only well-formed checksummed keys are accepted",
    [
      fc.oneof(
        fc.string({ unit: "binary" }),
        fc.string({ minLength: 36, maxLength: 36 }),
        fc.string({ unit: fc.constantFrom(...ALPHABET), minLength: 28, maxLength: 28 }).chain((tail) =>
          fc.constantFrom(
            `tg_live_${tail}`,
            `tg_test_${tail}`,
            `tg_live_${tail.slice(0, 22)}${encode62(BigInt(crc32(`tg_live_${tail.slice(0, 22)}`)), 6)}`
          )
        )
      )
    ],
    ([candidate]) => {
      const parsed = parseApiKey(candidate)
      const wellFormed = SHAPE.test(candidate) &&
        decode62(candidate.slice(30)) === BigInt(crc32(candidate.slice(0, 30))) &&
        decode62(candidate.slice(8, 30)) < 1n << 128n
      assert.strictEqual(Option.isSome(parsed), wellFormed, candidate)
      if (Option.isSome(parsed)) assert.strictEqual(parsed.value.secret, candidate)
    },
    runs
  )
})
