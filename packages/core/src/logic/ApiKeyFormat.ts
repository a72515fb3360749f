import { Effect, Option } from "effect"
import type { KeyEnvironment } from "../domain/ApiKey.js"
import { KeyHasher } from "../ports/KeyHasher.js"

/**
 * `tg_<env>_<body><check>`: `body` is 22 base62 characters encoding 128 random bits (fixed
 * width, left-padded with "0"), `check` is 6 base62 characters of the CRC-32 of everything
 * before it. The checksum lets the gateway reject mistyped or forged keys before any lookup.
 */

const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
const BODY_LENGTH = 22
const CHECK_LENGTH = 6
const ENV_PREFIX_LENGTH = "tg_live_".length
export const KEY_LENGTH = ENV_PREFIX_LENGTH + BODY_LENGTH + CHECK_LENGTH
export const PREFIX_LENGTH = 12

export interface GeneratedKey {
  /** Shown once to the user, never stored. */
  readonly secret: string
  readonly prefix: string
  readonly environment: KeyEnvironment
  readonly hash: string
}

// Digit value of each ASCII code, -1 outside the alphabet.
const DIGITS: ReadonlyArray<number> = Array.from(
  { length: 128 },
  (_, code) => ALPHABET.indexOf(String.fromCharCode(code))
)

const encodeBase62 = (value: bigint, width: number): string => {
  let out = ""
  let n = value
  while (n > 0n) {
    out = ALPHABET.charAt(Number(n % 62n)) + out
    n /= 62n
  }
  return out.padStart(width, "0")
}

// Bodies are fixed width and the alphabet is in ASCII order, so comparing strings compares values.
const MAX_BODY = encodeBase62((1n << 128n) - 1n, BODY_LENGTH)

const CRC_TABLE: Uint32Array = (() => {
  const table = new Uint32Array(256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    table[n] = c >>> 0
  }
  return table
})()

/** CRC-32 (IEEE 802.3, reflected) of the low byte of each UTF-16 unit; keys are ASCII. */
export const crc32 = (text: string): number => {
  let crc = 0xffffffff
  for (let i = 0; i < text.length; i++) {
    crc = CRC_TABLE[(crc ^ text.charCodeAt(i)) & 0xff]! ^ (crc >>> 8)
  }
  return (crc ^ 0xffffffff) >>> 0
}

const checksum = (payload: string): string => encodeBase62(BigInt(crc32(payload)), CHECK_LENGTH)

const envPrefix = (environment: KeyEnvironment): string => `tg_${environment}_`

/** Lowercase hex SHA-256 of the full secret: the only form of a key that is stored. */
export const hashApiKey = (secret: string): Effect.Effect<string> =>
  Effect.flatMap(KeyHasher, (hasher) => hasher.sha256Hex(secret))

/** The part of a key that is safe to display, e.g. "tg_live_AbCd". */
export const keyPrefix = (secret: string): string => secret.slice(0, PREFIX_LENGTH)

/** The key for 16 random bytes; `generateApiKey` draws them, tests pass their own. */
export const formatApiKey = (environment: KeyEnvironment, bytes: Uint8Array): string => {
  const value = bytes.reduce((n, byte) => (n << 8n) | BigInt(byte), 0n)
  const payload = envPrefix(environment) + encodeBase62(value, BODY_LENGTH)
  return payload + checksum(payload)
}

export const generateApiKey = Effect.fn("ApiKeyFormat.generateApiKey")(function*(environment: KeyEnvironment) {
  const secret = formatApiKey(environment, crypto.getRandomValues(new Uint8Array(16)))
  const hash = yield* hashApiKey(secret)
  const key: GeneratedKey = { secret, prefix: keyPrefix(secret), environment, hash }
  return key
})

/**
 * Some only when `candidate` has the exact format and its checksum verifies. Runs on every
 * request before any lookup: the length is checked first so huge inputs cost nothing.
 */
export const parseApiKey = (
  candidate: string
): Option.Option<{ readonly environment: KeyEnvironment; readonly secret: string }> => {
  if (typeof candidate !== "string" || candidate.length !== KEY_LENGTH) return Option.none()
  const environment: KeyEnvironment | undefined = candidate.startsWith("tg_live_")
    ? "live"
    : candidate.startsWith("tg_test_")
    ? "test"
    : undefined
  if (environment === undefined) return Option.none()
  for (let i = ENV_PREFIX_LENGTH; i < KEY_LENGTH; i++) {
    if ((DIGITS[candidate.charCodeAt(i)] ?? -1) < 0) return Option.none()
  }
  const payloadEnd = ENV_PREFIX_LENGTH + BODY_LENGTH
  // A body above 2^128 - 1 is never generated, so it is not a canonical key.
  if (candidate.slice(ENV_PREFIX_LENGTH, payloadEnd) > MAX_BODY) return Option.none()
  const payload = candidate.slice(0, payloadEnd)
  if (candidate.slice(payloadEnd) !== checksum(payload)) return Option.none()
  return Option.some({ environment, secret: candidate })
}
