import type { LimitRequest, RateLimitDecision } from "@tollgate/core"
import { RateLimitAlgorithm } from "@tollgate/core"
import { createHash } from "node:crypto"

/**
 * `RateLimitAlgorithm.decide` as one Lua script, for a batch of requests: each request's limits
 * are read, decided and (only when that request is allowed) counted, request after request in
 * the order given, all in one atomic step on the server. The outcome of every request is the one
 * it would get as a call of its own at that point of the sequence: a refused request counts
 * nothing, and the next request sees what the allowed ones before it counted.
 *
 * Call: `KEYS` are the batch's distinct counters; `ARGV[1]` is a string of little-endian
 * doubles: `slackMs`, the number of requests, then per request `now`, its number of limits n and
 * per limit the counter's index in `KEYS` (1-based), `limit` (negated for a shadow limit),
 * `windowMs` and `cost` ({@link encodeBatch}). Reply: a string of doubles, per request `allowed`
 * (1 or 0) and then per limit `remaining` and `retryAfterMs` (-1 when undefined)
 * ({@link decodeReply}). The rest of an outcome follows from these and the request (`exceeded`
 * iff a retry time is given or the cost is above the limit; `resetMs` is
 * `windowMs - now mod windowMs`). One binary string each way rather than many arguments, text
 * or an array: the client's cost per call grows with every argument and reply element, and
 * reading and printing numbers as text was a third of the script's time. Every number either
 * way is an integer below 2^53, which a double holds exactly.
 *
 * A counter shared by several requests of a batch is read once (one MGET for all) and written
 * once, after the last request, with the state and the expiry that writing it after each request
 * would have left.
 *
 * Each counter is a 32-byte string, `struct.pack("<dddd", window, current, previous, expiresAt)`
 * (four little-endian doubles, exact for these integers; see {@link decodeCounter}), exactly the
 * state the in-memory limiter keeps: `expiresAt` is `(window + 2) * windowMs` in the caller's
 * time, and a state past it is ignored, as in memory. (Binary rather than text because parsing
 * and formatting four numbers as text cost the server more than the rest of the decision.) The
 * key's PX TTL (time to `expiresAt` plus `slackMs`, set when a window starts and kept by later
 * writes in it) only collects garbage in the server's time; decisions never depend on it.
 *
 * Exactness. Lua numbers are doubles. The caller checks every input is an integer in range
 * (`limit` ≤ 1e9, `windowMs` ≤ 31 days, `cost` and `now` safe integers), so every stored count
 * is at most 2 × 1e9 and every factor below is < 2^33, but products such as `limit × windowMs`
 * reach 2^62. When every product of a limit stays below 2^51 they are computed as doubles
 * (exact: integers below 2^53); otherwise the same formulas run on a small bignum of base 2^16
 * limbs. `math.floor(a / b)` is exact for integers 0 ≤ a < 2^53, b ≥ 1: the rounding error of
 * a / b is below 1 / b, the smallest distance from a non-integer quotient to the next integer.
 * A cost above the limit is decided without arithmetic (it never fits), so `cost` can be any
 * safe integer.
 */
export const rateLimitLua = `
local BASE = 65536
local SMALL = 2251799813685248 -- 2^51
local floor, min = math.floor, math.min

-- The bignum is only built for a limit whose products reach 2^51 (closures cost on every call).
local function bignum()
  local function big(x)
    local t, i = {}, 0
    while x > 0 do
      local r = x % BASE
      i = i + 1
      t[i] = r
      x = (x - r) / BASE
    end
    return t
  end

  local function mul(a, b)
    local x, y = big(a), big(b)
    local nx, ny = #x, #y
    local t = {}
    for k = 1, nx + ny do t[k] = 0 end
    for i = 1, nx do
      local carry, xi = 0, x[i]
      for j = 1, ny do
        local v = t[i + j - 1] + xi * y[j] + carry
        local r = v % BASE
        t[i + j - 1] = r
        carry = (v - r) / BASE
      end
      t[i + ny] = carry
    end
    return t
  end

  local function add(x, y)
    local t, carry = {}, 0
    for k = 1, math.max(#x, #y) do
      local v = (x[k] or 0) + (y[k] or 0) + carry
      if v >= BASE then t[k] = v - BASE; carry = 1 else t[k] = v; carry = 0 end
    end
    if carry > 0 then t[#t + 1] = carry end
    return t
  end

  -- x - y, for x >= y
  local function sub(x, y)
    local t, borrow = {}, 0
    for k = 1, #x do
      local v = x[k] - (y[k] or 0) - borrow
      if v < 0 then t[k] = v + BASE; borrow = 1 else t[k] = v; borrow = 0 end
    end
    return t
  end

  local function cmp(x, y)
    for k = math.max(#x, #y), 1, -1 do
      local a, b = x[k] or 0, y[k] or 0
      if a ~= b then return a < b and -1 or 1 end
    end
    return 0
  end

  -- ceil(x / d) for 1 <= d < 2^37, when the quotient is below 2^53
  local function ceildiv(x, d)
    local q, r = 0, 0
    for k = #x, 1, -1 do
      local v = r * BASE + x[k]
      local qk = floor(v / d)
      r = v - qk * d
      q = q * BASE + qk
    end
    if r > 0 then q = q + 1 end
    return q
  end
  return { mul = mul, add = add, sub = sub, cmp = cmp, ceildiv = ceildiv }
end
local bn

-- ARGV[1], doubles in one string: slack count, then per request now n and n times key limit windowMs cost
local unpackd = struct.unpack
local input = ARGV[1]
local slack, count, at = unpackd("<dd", input)

-- Every distinct counter of the batch, read once (one MGET) and decoded into sw (window), sc
-- (current), sp (previous), sx (expiresAt); an absent or unreadable one gets sx = -1, which
-- nothing is after (now >= 0). Requests then read and update these copies in order, and each
-- changed counter is written once at the end.
local nk = #KEYS
local raws = redis.call("MGET", unpack(KEYS))
local sw, sc, sp, sx = {}, {}, {}, {}
for i = 1, nk do
  local raw = raws[i]
  if raw and #raw == 32 then
    sw[i], sc[i], sp[i], sx[i] = struct.unpack("<dddd", raw)
  else
    sx[i] = -1
  end
end
-- per counter written: the PX to set (from the last write that started a window); none: keep the TTL
local dirty, px = {}, {}

-- per limit i of a request, at 12 * (i - 1): cur, prev, same window as stored, small, admits, win, el, shadow, l, w, c, key
-- (presized for four limits: growing a table rehashes it each time its size doubles)
local st = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }
local out, no = {}, 0

for _ = 1, count do
  local now, n
  now, n, at = unpackd("<dd", input, at)
  local allowed = true
  for i = 1, n do
    local ki, l, w, c
    ki, l, w, c, at = unpackd("<dddd", input, at)
    local sh = l < 0
    if sh then l = -l end
    local win = floor(now / w)
    local cur, prev, same = 0, 0, false
    if sx[ki] > now then
      local s = sw[ki]
      if s == win then
        cur, prev, same = sc[ki], sp[ki], true
      elseif s == win - 1 then
        prev = sc[ki]
      end
    end
    local el = now - win * w
    local m = cur + (c < l and c or l)
    if prev > m then m = prev end
    if l > m then m = l end
    local small = m * w < SMALL
    local admits
    if c > l then
      admits = false
    elseif small then
      admits = prev * (w - el) + (cur + c) * w <= l * w
    else
      bn = bn or bignum()
      admits = bn.cmp(bn.add(bn.mul(prev, w - el), bn.mul(cur + c, w)), bn.mul(l, w)) <= 0
    end
    if not admits and not sh then allowed = false end
    local k = 12 * (i - 1)
    st[k + 1], st[k + 2], st[k + 3], st[k + 4], st[k + 5], st[k + 6], st[k + 7], st[k + 8], st[k + 9], st[k + 10],
      st[k + 11], st[k + 12] = cur, prev, same, small, admits, win, el, sh, l, w, c, ki
  end

  no = no + 1
  out[no] = allowed and 1 or 0
  for i = 1, n do
    local k = 12 * (i - 1)
    local cur, prev, small, el, l, w, c = st[k + 1], st[k + 2], st[k + 4], st[k + 7], st[k + 9], st[k + 10], st[k + 11]
    local stored = cur
    if allowed then
      if st[k + 8] then
        stored = (c >= 2 * l) and 2 * l or min(cur + c, 2 * l)
      else
        stored = cur + c
      end
      -- every limit of the request read the state from before it, so later limits on the same
      -- counter overwrite earlier ones, as separate writes in this order would
      local ki, win = st[k + 12], st[k + 6]
      local expires = (win + 2) * w
      sw[ki], sc[ki], sp[ki], sx[ki] = win, stored, prev, expires
      dirty[ki] = true
      -- a write in the stored window keeps the key's expiry (KEEPTTL), which the state already had;
      -- a write that starts a window sets it
      if not st[k + 3] then px[ki] = expires - now + slack end
    end
    local carried
    if small then
      carried = floor((prev * (w - el) + w - 1) / w)
    else
      bn = bn or bignum()
      carried = bn.ceildiv(bn.mul(prev, w - el), w)
    end
    local remaining = l - stored - carried
    if remaining < 0 then remaining = 0 end
    local retry = -1
    if not st[k + 5] and c <= l then
      if cur + c <= l then
        if small then
          retry = floor((prev * (w - el) - (l - cur - c) * w + prev - 1) / prev)
        else
          retry = bn.ceildiv(bn.sub(bn.mul(prev, w - el), bn.mul(l - cur - c, w)), prev)
        end
      else
        if small then
          retry = w - el + floor(((cur + c - l) * w + cur - 1) / cur)
        else
          retry = w - el + bn.ceildiv(bn.mul(cur + c - l, w), cur)
        end
      end
    end
    out[no + 1] = remaining
    out[no + 2] = retry
    no = no + 2
  end
end

for ki = 1, nk do
  if dirty[ki] then
    local value = struct.pack("<dddd", sw[ki], sc[ki], sp[ki], sx[ki])
    local ttl = px[ki]
    if ttl then
      redis.call("SET", KEYS[ki], value, "PX", string.format("%d", ttl))
    else
      redis.call("SET", KEYS[ki], value, "KEEPTTL")
    end
  end
end

-- the reply, as doubles (packed 64 at a time: unpack puts its values on Lua's bounded stack)
local parts = {}
for i = 1, no, 64 do
  local j = min(i + 63, no)
  parts[#parts + 1] = struct.pack("<" .. string.rep("d", j - i + 1), unpack(out, i, j))
end
return table.concat(parts)
`

/** A stored counter, read back (for tests and operators: `GET` returns these 32 bytes). */
export const decodeCounter = (
  raw: Buffer
): { window: number; current: number; previous: number; expiresAt: number } => ({
  window: raw.readDoubleLE(0),
  current: raw.readDoubleLE(8),
  previous: raw.readDoubleLE(16),
  expiresAt: raw.readDoubleLE(24)
})

/** The SHA-1 Redis files the script under, for EVALSHA. */
export const rateLimitSha = createHash("sha1").update(rateLimitLua).digest("hex")

/** One request of a batch: its limits and its time. */
export interface BatchRequest {
  readonly limits: ReadonlyArray<LimitRequest>
  readonly now: number
}

/**
 * The script's `KEYS` and `ARGV` for a batch (see {@link rateLimitLua}): each distinct counter
 * once, under `prefix`, then the one binary argument.
 */
export const encodeBatch = (
  prefix: string,
  slackMs: number,
  batch: ReadonlyArray<BatchRequest>
): Array<string | Buffer> => {
  let size = 16
  for (const { limits } of batch) size += 16 + 32 * limits.length
  const input = Buffer.allocUnsafe(size)
  let at = input.writeDoubleLE(slackMs, 0)
  at = input.writeDoubleLE(batch.length, at)
  const index = new Map<string, number>()
  const keysAndArgs: Array<string | Buffer> = []
  for (const { limits, now } of batch) {
    at = input.writeDoubleLE(now, at)
    at = input.writeDoubleLE(limits.length, at)
    for (const { cost, key, policy } of limits) {
      let k = index.get(key)
      if (k === undefined) {
        k = keysAndArgs.push(prefix + key)
        index.set(key, k)
      }
      at = input.writeDoubleLE(k, at)
      at = input.writeDoubleLE(policy.shadow ? -policy.limit : policy.limit, at)
      at = input.writeDoubleLE(policy.windowMs, at)
      at = input.writeDoubleLE(cost, at)
    }
  }
  keysAndArgs.push(input)
  return keysAndArgs
}

/** Each request's decision from the script's reply, or undefined when the reply does not fit the batch. */
export const decodeReply = (
  batch: ReadonlyArray<BatchRequest>,
  reply: unknown
): Array<RateLimitDecision> | undefined => {
  if (!Buffer.isBuffer(reply)) return undefined
  let expected = 0
  for (const { limits } of batch) expected += 8 + 16 * limits.length
  if (reply.length !== expected) return undefined
  const out = new Array<RateLimitDecision>(batch.length)
  let at = 0
  for (let b = 0; b < batch.length; b++) {
    const { limits, now } = batch[b]!
    const allowed = reply.readDoubleLE(at)
    at += 8
    const outcomes = new Array<RateLimitAlgorithm.LimitOutcome>(limits.length)
    for (let i = 0; i < limits.length; i++) {
      const remaining = reply.readDoubleLE(at)
      const retry = reply.readDoubleLE(at + 8)
      at += 16
      if (!Number.isSafeInteger(remaining) || !Number.isSafeInteger(retry)) return undefined
      const { cost, policy } = limits[i]!
      // the rest follows from the request: exceeded iff there is a retry time or no wait helps
      outcomes[i] = RateLimitAlgorithm.limitOutcome(
        policy,
        cost,
        retry >= 0 || cost > policy.limit,
        remaining,
        policy.windowMs - (now % policy.windowMs),
        retry < 0 ? undefined : retry
      )
    }
    out[b] = { allowed: allowed === 1, outcomes }
  }
  return out
}
